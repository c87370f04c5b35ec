from __future__ import annotations

from rest_framework import serializers

from ..models import ExternalIdentity
from .fields import device_name_field

LOGIN_MODES = [
    ("token", "An opaque token, as login/ answers"),
    ("jwt", "A JWT pair, as jwt/ answers"),
    ("session", "A browser session, as session/login/ answers"),
]


class SocialAuthorizeSerializer(serializers.Serializer):
    """The query of ``social/<provider>/authorize/``."""

    mode = serializers.ChoiceField(
        choices=LOGIN_MODES,
        default="token",
        help_text="What social/exchange/ will answer. Linking starts with POST.",
    )
    device_name = device_name_field()


class SocialLinkStartSerializer(serializers.Serializer):
    """The body of POST ``social/<provider>/authorize/``: the start of a link."""

    mode = serializers.ChoiceField(
        choices=[("link", "Link the identity to the signed-in account")],
        help_text="'link': the identity is linked to the signed-in account.",
    )


class SocialExchangeSerializer(serializers.Serializer):
    code = serializers.CharField(
        max_length=128, help_text="The one-time code the social_callback page received."
    )


class SocialTokenSerializer(serializers.Serializer):
    """A token a native SDK got from the provider: an OpenID provider's ``id_token`` (with
    the ``nonce`` the app gave the SDK, if any), or GitHub's ``access_token``."""

    id_token = serializers.CharField(required=False, max_length=16 * 1024)
    access_token = serializers.CharField(required=False, max_length=1024)
    nonce = serializers.CharField(required=False, max_length=256)

    def validate(self, attrs):
        if ("id_token" in attrs) == ("access_token" in attrs):
            raise serializers.ValidationError(
                "Send either id_token or access_token.", code="token_required"
            )
        return attrs


class SocialTokenLoginSerializer(SocialTokenSerializer):
    mode = serializers.ChoiceField(choices=LOGIN_MODES, default="token")
    device_name = device_name_field()


class SocialIdentitySerializer(serializers.ModelSerializer):
    """An identity at a sign-in provider linked to the account."""

    created = serializers.DateTimeField(source="created_at", read_only=True)
    last_seen = serializers.DateTimeField(source="last_seen_at", read_only=True)

    class Meta:
        model = ExternalIdentity
        fields = ["id", "provider", "subject", "created", "last_seen"]
        read_only_fields = fields
