"""Password login, the session list, and the responses of the login endpoints."""

from __future__ import annotations

from rest_framework import serializers

from ..models import RevokeReason, Session
from .fields import PasswordField


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, max_length=254, trim_whitespace=False)
    email = serializers.CharField(required=False, max_length=254, trim_whitespace=False)
    password = PasswordField()
    device_name = serializers.CharField(
        required=False, allow_blank=True, max_length=100, default=""
    )

    def validate(self, attrs):
        identifier = attrs.get("username") or attrs.get("email")
        if not identifier:
            raise serializers.ValidationError(
                {"username": ["Give a username or an e-mail address."]}, code="required"
            )
        attrs["identifier"] = identifier
        return attrs


class SessionSerializer(serializers.ModelSerializer):
    """A session as listed in ``sessions/``. A live one has ``revoked: null`` and
    ``revoke_reason: ""``; one without any expiry has ``expiry: null``."""

    created = serializers.DateTimeField(source="created_at", read_only=True)
    last_used = serializers.DateTimeField(source="last_used_at", read_only=True)
    expiry = serializers.DateTimeField(read_only=True, allow_null=True)
    revoked = serializers.DateTimeField(source="revoked_at", read_only=True, allow_null=True)
    revoke_reason = serializers.ChoiceField(
        choices=RevokeReason.choices, read_only=True, allow_blank=True
    )
    current = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = [
            "id",
            "kind",
            "device_name",
            "user_agent",
            "ip",
            "created",
            "last_used",
            "expiry",
            "revoked",
            "revoke_reason",
            "current",
        ]
        read_only_fields = fields

    def get_current(self, session: Session) -> bool:
        request = self.context.get("request")
        current = getattr(request, "auth", None)
        return isinstance(current, Session) and current.pk == session.pk


class LoginResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once. Send as `Authorization: Token …`.")
    expiry = serializers.DateTimeField(allow_null=True)
    user = serializers.DictField(help_text="The USER_SERIALIZER representation.")
    session = SessionSerializer()


class BrowserLoginResponseSerializer(serializers.Serializer):
    user = serializers.DictField(help_text="The USER_SERIALIZER representation.")
    session = SessionSerializer(help_text="The browser session, as listed in sessions/.")


class ObtainAuthTokenSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254, trim_whitespace=False)
    password = PasswordField()


class TokenOnlySerializer(serializers.Serializer):
    token = serializers.CharField()
