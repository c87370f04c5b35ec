"""Personal access tokens: create (shown once), list, revoke.

Only a login session may manage them: a personal access token is refused here
(403 ``personal_access_token_not_allowed``), so a leaked one cannot list, revoke or
multiply the others.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from ..permissions import IsNotPersonalAccessToken
from ..schema import document
from ..serializers.fields import ErrorSerializer
from ..serializers.tokens import (
    PersonalTokenCreatedSerializer,
    PersonalTokenCreateSerializer,
    PersonalTokenSerializer,
)
from ..services import personal_tokens
from .base import TesseraAPIView, error_responses

ERRORS = error_responses(401, 403, 503)


class PersonalTokenListView(TesseraAPIView):
    """List the user's live personal access tokens, or create one (its token shown once)."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    serializer_class = PersonalTokenCreateSerializer

    def get_queryset(self):
        return personal_tokens.list_personal_tokens(self.request.user)

    @document(responses={200: PersonalTokenSerializer(many=True), **ERRORS})
    def get(self, request):
        return Response(PersonalTokenSerializer(self.get_queryset(), many=True).data)

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
