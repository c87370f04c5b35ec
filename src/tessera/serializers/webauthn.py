"""Passkeys: registration, the key list, passwordless login."""

from __future__ import annotations

from rest_framework import serializers

from ..models import Authenticator
from ..services.login import BROWSER, JWT, SLIDING, TOKEN
from .fields import device_name_field
from .sessions import device_field

NAME_MAX_LENGTH = Authenticator._meta.get_field("name").max_length


def credential_field(**kwargs) -> serializers.DictField:
    return serializers.DictField(
        help_text="The PublicKeyCredential, as its toJSON() gives it (binary fields in base64url).",
        **kwargs,
    )


# The options, as py_webauthn renders them: the JSON form of the WebAuthn dictionaries
# (camelCase, binary fields in base64url), which the browser's
# PublicKeyCredential.parseCreationOptionsFromJSON() and …RequestOptionsFromJSON() read.


class RelyingPartySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class UserEntitySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The user handle, base64url.")
    name = serializers.CharField()
    displayName = serializers.CharField()


class CredentialParameterSerializer(serializers.Serializer):
    type = serializers.CharField()
    alg = serializers.IntegerField(help_text="A COSE algorithm: -7 ES256, -8 EdDSA, -257 RS256.")


class CredentialDescriptorSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The credential id, base64url.")
    type = serializers.CharField()
    transports = serializers.ListField(child=serializers.CharField(), required=False)


class AuthenticatorSelectionSerializer(serializers.Serializer):
    residentKey = serializers.CharField()
    requireResidentKey = serializers.BooleanField()
    userVerification = serializers.CharField()


class RegistrationExtensionsSerializer(serializers.Serializer):
    credProps = serializers.BooleanField()


class CreationOptionsSerializer(serializers.Serializer):
    """PublicKeyCredentialCreationOptions for navigator.credentials.create()."""

    rp = RelyingPartySerializer()
    user = UserEntitySerializer()
    challenge = serializers.CharField(help_text="base64url.")
    pubKeyCredParams = CredentialParameterSerializer(many=True)
    timeout = serializers.IntegerField(help_text="Milliseconds: the challenge's lifetime.")
    excludeCredentials = CredentialDescriptorSerializer(many=True)
    authenticatorSelection = AuthenticatorSelectionSerializer()
    attestation = serializers.CharField()
    extensions = RegistrationExtensionsSerializer()


class RequestOptionsSerializer(serializers.Serializer):
    """PublicKeyCredentialRequestOptions for navigator.credentials.get()."""

    challenge = serializers.CharField(help_text="base64url.")
    timeout = serializers.IntegerField(help_text="Milliseconds: the challenge's lifetime.")
    rpId = serializers.CharField()
    allowCredentials = CredentialDescriptorSerializer(
        many=True, help_text="The account's passkeys; empty for a passwordless login."
    )
    userVerification = serializers.CharField()


class PasskeyRegisterBeginSerializer(serializers.Serializer):
    passwordless = serializers.BooleanField(
        default=False,
        help_text="Ask for a discoverable key that verifies the user, so it can log in "
        "without a password (passkey/login/).",
    )


class PasskeyRegisterSerializer(serializers.Serializer):
    credential = credential_field()
    name = serializers.CharField(
        max_length=NAME_MAX_LENGTH, allow_blank=True, default="", help_text="e.g. 'Laptop'."
    )
    passwordless = serializers.BooleanField(default=False, help_text="As given to register/begin/.")


class PasskeySerializer(serializers.ModelSerializer):
    """A passkey as its owner sees it: no key material, only what tells keys apart."""

    created = serializers.DateTimeField(source="created_at", read_only=True)
    last_used = serializers.DateTimeField(source="last_used_at", read_only=True, allow_null=True)

    class Meta:
        model = Authenticator
        fields = ["id", "type", "name", "created", "last_used", "passwordless", "transports"]
        read_only_fields = fields


class PasskeyRegisteredSerializer(PasskeySerializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Only when this passkey is the account's first second factor: the new "
        "recovery codes, shown this once.",
    )

    class Meta(PasskeySerializer.Meta):
        fields = [*PasskeySerializer.Meta.fields, "recovery_codes"]
        read_only_fields = fields


class PasskeyRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)


class PasskeyLoginSerializer(serializers.Serializer):
    credential = credential_field()
    kind = serializers.ChoiceField(
        choices=[TOKEN, JWT, SLIDING, BROWSER],
        default=TOKEN,
        help_text="What the login ends in, as the password logins: an opaque token "
        "(login/), a JWT pair (jwt/), a sliding JWT (jwt/sliding/) or a browser session "
        "(session/login/).",
    )
    device_name = device_name_field()
    device = device_field()
