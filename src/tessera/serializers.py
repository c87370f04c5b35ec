"""Request and response shapes of Tessera's endpoints."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from .models import RevokeReason, Session

PASSWORD_MAX_LENGTH = 4096


def _identity_fields(user_model) -> list[str]:
    present = {f.name for f in user_model._meta.get_fields()}
    wanted = [
        user_model.USERNAME_FIELD,
        user_model.get_email_field_name(),
        "first_name",
        "last_name",
        "date_joined",
    ]
    return ["id"] + [name for name in dict.fromkeys(wanted) if name in present]


class PrimaryKeyField(serializers.ReadOnlyField):
    """The object's primary key, whatever the model calls it.

    The schema gives it the type of the model's primary key (see schema_extensions); a
    plain ``ReadOnlyField(source="pk")`` is documented as a string, which an integer
    key contradicts.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("source", "pk")
        super().__init__(**kwargs)


class UserSerializer(serializers.ModelSerializer):
    """The default ``user`` in responses: identity fields the user model actually has."""

    id = PrimaryKeyField()

    class Meta:
        model = get_user_model()
        fields = _identity_fields(model)
        read_only_fields = fields


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, max_length=254, trim_whitespace=False)
    email = serializers.CharField(required=False, max_length=254, trim_whitespace=False)
    password = serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, style={"input_type": "password"}
    )
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


class ObtainAuthTokenSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254, trim_whitespace=False)
    password = serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, style={"input_type": "password"}
    )


class TokenOnlySerializer(serializers.Serializer):
    token = serializers.CharField()


class EmptySerializer(serializers.Serializer):
    """No fields: the input of a view that reads no body (logout)."""


class ErrorSerializer(serializers.Serializer):
    """The one error shape (see :mod:`tessera.errors`), declared for the schema."""

    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()), required=False
    )
