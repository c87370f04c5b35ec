"""Second factors: the factor list, TOTP set-up, recovery codes, the second step of a
login and ``reauthenticate/``."""

from __future__ import annotations

from rest_framework import serializers

from ..models import Authenticator, AuthenticatorType
from ..services.mfa import recovery_codes, tickets
from ..services.mfa.methods import PROOF_FIELDS
from .fields import PasswordField
from .sessions import device_field

CODE_MAX_LENGTH = 32


def _exactly_one(attrs: dict, fields: tuple[str, ...]) -> str:
    """The one field of ``fields`` that the body gives; refuse none or several."""
    given = [name for name in fields if attrs.get(name) is not None]
    if not given:
        raise serializers.ValidationError(
            {fields[0]: [f"Give one of: {', '.join(fields)}."]}, code="required"
        )
    if len(given) > 1:
        raise serializers.ValidationError(
            {"non_field_errors": [f"Give only one of: {', '.join(given)}."]}, code="invalid"
        )
    return given[0]


class ProofSerializer(serializers.Serializer):
    """The fields a second-factor proof can come in (PROOF_FIELDS); subclasses say which
    one a body must give."""

    code = serializers.CharField(
        required=False,
        max_length=CODE_MAX_LENGTH,
        help_text="The authenticator app's current code, or an unused recovery code.",
    )
    webauthn = serializers.DictField(
        required=False, help_text="A WebAuthn assertion (the PublicKeyCredential, as JSON)."
    )


class SecondFactorSerializer(ProofSerializer):
    """``mfa/authenticate/``: the login ticket and exactly one proof."""

    ticket = serializers.CharField(
        max_length=tickets.MAX_LENGTH, help_text="From the login's mfa_required answer."
    )
    device = device_field()

    def validate(self, attrs):
        attrs["proof_field"] = _exactly_one(attrs, PROOF_FIELDS)
        return attrs


class ReauthenticateSerializer(ProofSerializer):
    """Exactly one of the password or a second-factor proof."""

    password = PasswordField(required=False)

    def validate(self, attrs):
        attrs["proof_field"] = _exactly_one(attrs, ("password", *PROOF_FIELDS))
        return attrs


class FactorSerializer(serializers.ModelSerializer):
    """One factor of ``mfa/``; ``remaining`` counts unused recovery codes (null for the
    other types)."""

    created = serializers.DateTimeField(source="created_at", read_only=True)
    last_used = serializers.DateTimeField(source="last_used_at", read_only=True, allow_null=True)
    remaining = serializers.SerializerMethodField()

    class Meta:
        model = Authenticator
        fields = ["id", "type", "name", "created", "last_used", "remaining"]
        read_only_fields = fields

    def get_remaining(self, authenticator: Authenticator) -> int | None:
        if authenticator.type != AuthenticatorType.RECOVERY_CODES:
            return None
        return recovery_codes.remaining(authenticator.user)


class FactorListSerializer(serializers.Serializer):
    factors = FactorSerializer(many=True)
    required = serializers.BooleanField(help_text="MFA_REQUIRED covers this user.")


class TOTPEnrolmentSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="Base32, for apps that cannot scan the QR code.")
    otpauth_uri = serializers.CharField(help_text="The otpauth:// URI the QR code holds.")
    qr_svg = serializers.CharField(help_text="The QR code as an inline SVG element.")


class CodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=CODE_MAX_LENGTH)


class TOTPConfirmedSerializer(serializers.Serializer):
    factor = FactorSerializer()
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="With the first factor: a set of recovery codes, shown only now.",
    )


class RecoveryCodesLeftSerializer(serializers.Serializer):
    remaining = serializers.IntegerField()


class RecoveryCodesSerializer(serializers.Serializer):
    codes = serializers.ListField(
        child=serializers.CharField(), help_text="Shown only now; the old set stops working."
    )
