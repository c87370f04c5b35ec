"""The JWT endpoints' bodies and responses."""

from __future__ import annotations

from rest_framework import serializers

from ..tokens import jwt as codec
from .sessions import device_response_field


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenPairWithUserSerializer(TokenPairSerializer):
    user = serializers.DictField(help_text="The USER_SERIALIZER representation.")
    # Absent when JWT_COOKIES sets it as an HttpOnly cookie instead.
    device = device_response_field(required=False)


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(
        required=False,
        max_length=codec.MAX_TOKEN_LENGTH,
        help_text="Omit in cookie mode: the refresh cookie is read instead.",
    )


class VerifySerializer(serializers.Serializer):
    token = serializers.CharField(max_length=codec.MAX_TOKEN_LENGTH)


class SlidingTokenSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=codec.MAX_TOKEN_LENGTH)


class JWKSSerializer(serializers.Serializer):
    keys = serializers.ListField(child=serializers.DictField())
