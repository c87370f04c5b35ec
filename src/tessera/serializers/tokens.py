"""Personal access tokens: the creation body, the listing and the creation response."""

from __future__ import annotations

from datetime import timedelta

from rest_framework import serializers

from ..conf import tessera_settings
from ..models import Session
from ..services.scopes import declared_scopes
from .fields import PasswordField

# Past a century a lifetime stops meaning anything and date arithmetic overflows.
MAX_EXPIRES_IN = 100 * 365 * 24 * 3600
MIN_EXPIRES_IN = 60


class PersonalTokenSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="device_name", read_only=True)
    created = serializers.DateTimeField(source="created_at", read_only=True)
    last_used = serializers.DateTimeField(source="last_used_at", read_only=True)
    expiry = serializers.DateTimeField(read_only=True, allow_null=True)
    scopes = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Session
        fields = ["id", "name", "scopes", "created", "last_used", "expiry"]
        read_only_fields = fields


class PersonalTokenCreatedSerializer(PersonalTokenSerializer):
    """The creation response, declared for the schema."""

    token = serializers.CharField(read_only=True, help_text="Shown once; only a digest is kept.")

    class Meta(PersonalTokenSerializer.Meta):
        fields = ["token", *PersonalTokenSerializer.Meta.fields]
        read_only_fields = fields


class PersonalTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=True, max_length=100
    )
    expires_in = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=MIN_EXPIRES_IN,
        max_value=MAX_EXPIRES_IN,
        help_text="Seconds until the token expires; default PAT_DEFAULT_TTL, at most "
        "PAT_MAX_TTL; null (never) only when PAT_MAX_TTL is None.",
    )
    password = PasswordField(
        required=False,
        help_text="Needed when the current login is older than PAT_FRESH_LOGIN.",
    )

    def validate_scopes(self, scopes: list[str]) -> list[str]:
        unknown = sorted(set(scopes) - set(declared_scopes()))
        if unknown:
            raise serializers.ValidationError(
                [f"Unknown scope {scope!r}." for scope in unknown], code="invalid_choice"
            )
        return sorted(set(scopes))

    def validate_expires_in(self, seconds: int | None) -> int | None:
        maximum = tessera_settings.PAT_MAX_TTL
        if seconds is None and maximum is not None:
            raise serializers.ValidationError(
                "Personal access tokens must expire here; give a number of seconds.",
                code="null",
            )
        if seconds is not None and maximum is not None and seconds > maximum.total_seconds():
            raise serializers.ValidationError(
                f"At most {int(maximum.total_seconds())} seconds.", code="max_value"
            )
        return seconds

    def lifetime(self) -> timedelta | None:
        if "expires_in" not in self.validated_data:
            default, maximum = tessera_settings.PAT_DEFAULT_TTL, tessera_settings.PAT_MAX_TTL
            return min(default, maximum) if maximum is not None else default
        seconds = self.validated_data["expires_in"]
        return timedelta(seconds=seconds) if seconds is not None else None
