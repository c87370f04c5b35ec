"""Password login, the session list, and the responses of the login endpoints."""

from __future__ import annotations

from rest_framework import serializers

from ..models import RevokeReason, Session
from ..services.devices import MAX_LENGTH as DEVICE_MAX_LENGTH
from ..tokens import jwt as codec
from ..tokens.external import ExternalToken
from .fields import ErrorSerializer, PasswordField, device_name_field

DEVICE_HELP = (
    "Known-device identifier of this account, kept by the client after a login (in "
    "cookie and browser modes an HttpOnly cookie instead, never in the body). Keep it "
    "and send it back in "
    "the next login's `device` field: a known device is not stopped by its account's "
    "failure lockout."
)


def device_field():
    """The optional ``device`` a login body may carry (the one its last login answered)."""
    return serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=DEVICE_MAX_LENGTH,
        help_text="The `device` a previous login of this account answered with.",
    )


def device_response_field(**options):
    return serializers.CharField(help_text=DEVICE_HELP, **options)


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, max_length=254, trim_whitespace=False)
    email = serializers.CharField(required=False, max_length=254, trim_whitespace=False)
    password = PasswordField()
    device_name = device_name_field()
    device = device_field()

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
    ``revoke_reason: ""``; one without any expiry has ``expiry: null``. ``amr`` and
    ``auth_time`` say how and when its user last proved who they are (null: before Tessera
    recorded it, or a personal access token)."""

    created = serializers.DateTimeField(source="created_at", read_only=True)
    last_used = serializers.DateTimeField(source="last_used_at", read_only=True)
    expiry = serializers.DateTimeField(read_only=True, allow_null=True)
    revoked = serializers.DateTimeField(source="revoked_at", read_only=True, allow_null=True)
    revoke_reason = serializers.ChoiceField(
        choices=RevokeReason.choices, read_only=True, allow_blank=True
    )
    current = serializers.SerializerMethodField()
    amr = serializers.ListField(child=serializers.CharField(), read_only=True)
    auth_time = serializers.DateTimeField(read_only=True, allow_null=True)
    mfa_enrolment_required = serializers.BooleanField(
        read_only=True, help_text="The session may only set up a second factor (MFA_REQUIRED)."
    )
    provider = serializers.CharField(
        read_only=True, help_text='The social sign-in provider of the login; "" for others.'
    )

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
            "amr",
            "auth_time",
            "mfa_enrolment_required",
            "provider",
        ]
        read_only_fields = fields

    def get_current(self, session: Session) -> bool:
        request = self.context.get("request")
        current = getattr(request, "auth", None)
        if isinstance(current, ExternalToken):
            current = current.session
        return isinstance(current, Session) and current.pk == session.pk


class LoginResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once. Send as `Authorization: Token …`.")
    expiry = serializers.DateTimeField(allow_null=True)
    user = serializers.DictField(help_text="The USER_SERIALIZER representation.")
    session = SessionSerializer()
    device = device_response_field()


class LoginErrorSerializer(ErrorSerializer):
    """A login's error; with ``mfa_required`` it holds what ``mfa/authenticate/`` needs."""

    ticket = serializers.CharField(required=False, help_text="Single use, short-lived.")
    methods = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="The second factors the user can answer with (totp, recovery_codes…).",
    )
    options = serializers.DictField(
        required=False,
        help_text="Per method, what the client needs to answer it (e.g. WebAuthn options).",
    )


class BrowserLoginResponseSerializer(serializers.Serializer):
    user = serializers.DictField(help_text="The USER_SERIALIZER representation.")
    session = SessionSerializer(help_text="The browser session, as listed in sessions/.")


class SlidingLoginResponseSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=codec.MAX_TOKEN_LENGTH)
    device = device_response_field()


class ObtainAuthTokenSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254, trim_whitespace=False)
    password = PasswordField()


class TokenOnlySerializer(serializers.Serializer):
    token = serializers.CharField()


class NotMeSerializer(serializers.Serializer):
    token = serializers.CharField(
        max_length=512, help_text="The token of the link in a new-device e-mail."
    )
    all = serializers.BooleanField(
        default=False, help_text="End every session of the account, not only the one named."
    )


class NotMeResponseSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(
        help_text="How many sessions were live until now (0: the one named had ended already)."
    )
