"""Personal access tokens: create (shown once), list, revoke.

Only a login session may manage them: a personal access token is refused here
(403 ``personal_access_token_not_allowed``), so a leaked one cannot list, revoke or
multiply the others.
"""

from __future__ import annotations

from datetime import timedelta

from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from ..conf import tessera_settings
from ..models import Session
from ..permissions import IsNotPersonalAccessToken
from ..schema import document
from ..serializers import PASSWORD_MAX_LENGTH, ErrorSerializer
from ..services import personal_tokens
from ..services.scopes import declared_scopes
from .base import TesseraAPIView, error_responses

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
    password = serializers.CharField(
        required=False,
        write_only=True,
        max_length=PASSWORD_MAX_LENGTH,
        trim_whitespace=False,
        style={"input_type": "password"},
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


ERRORS = error_responses(401, 403, 503)


class PersonalTokenListView(TesseraAPIView):
    """List the user's live personal access tokens, or create one (its token shown once)."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    serializer_class = PersonalTokenCreateSerializer

    @document(responses={200: PersonalTokenSerializer(many=True), **ERRORS})
    def get(self, request):
        tokens = personal_tokens.list_personal_tokens(request.user)
        return Response(PersonalTokenSerializer(tokens, many=True).data)

    @document(
        request=PersonalTokenCreateSerializer,
        responses={
            201: PersonalTokenCreatedSerializer,
            400: ErrorSerializer,
            429: ErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request):
        serializer = self.valid_serializer(request)
        issued = personal_tokens.create_personal_token(
            request,
            name=serializer.validated_data["name"],
            scopes=serializer.validated_data["scopes"],
            lifetime=serializer.lifetime(),
            password=serializer.validated_data.get("password"),
        )
        body = {"token": issued.token, **PersonalTokenSerializer(issued.session).data}
        return Response(body, status=status.HTTP_201_CREATED)


class PersonalTokenDetailView(TesseraAPIView):
    """Revoke one of the user's personal access tokens; another user's id answers 404."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    serializer_class = None

    @document(request=None, responses={204: None, 404: ErrorSerializer, **ERRORS})
    def delete(self, request, token_id: str):
        personal_tokens.revoke_personal_token(request.user, token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
