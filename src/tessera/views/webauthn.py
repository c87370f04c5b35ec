"""Passkeys: register and manage them, and log in with one instead of a password.

Each ceremony is two requests: ``…/begin/`` answers the options for the browser's
``navigator.credentials.create()`` or ``.get()``, and ``…/complete/`` takes what the
browser returned. See docs/passkeys.md.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from ..permissions import IsNotPersonalAccessToken
from ..schema import document
from ..serializers.fields import ErrorSerializer
from ..serializers.webauthn import (
    CreationOptionsSerializer,
    PasskeyRegisterBeginSerializer,
    PasskeyRegisteredSerializer,
    PasskeyRegisterSerializer,
    PasskeyRenameSerializer,
    PasskeySerializer,
    RequestOptionsSerializer,
)
from ..services.mfa import passwordless, webauthn
from .base import TesseraAPIView, error_responses

ERRORS = error_responses(400, 401, 403, 404, 503)


class PasskeyView(TesseraAPIView):
    """The account's own passkeys: only a login session manages them, never a personal
    access token, so a leaked script token cannot add a way in."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]


class PasskeyRegisterBeginView(PasskeyView):
    """Options to create a passkey; the challenge serves one ``complete/`` within its TTL."""

    serializer_class = PasskeyRegisterBeginSerializer

    @document(
        request=PasskeyRegisterBeginSerializer,
        responses={200: CreationOptionsSerializer, **ERRORS},
    )
    def post(self, request):
        data = self.validated(request)
        return Response(
            webauthn.registration_options(request.user, passwordless=data["passwordless"])
        )


class PasskeyRegisterCompleteView(PasskeyView):
    """Verify the browser's new credential and store it as one of the user's passkeys."""

    serializer_class = PasskeyRegisterSerializer

    @document(
        request=PasskeyRegisterSerializer,
        responses={201: PasskeyRegisteredSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request):
        data = self.validated(request)
        registered = webauthn.register(
            request,
            request.user,
            data["credential"],
            name=data["name"],
            passwordless=data["passwordless"],
        )
        body = PasskeySerializer(registered.passkey).data
        if registered.recovery_codes is not None:
            body["recovery_codes"] = registered.recovery_codes
        return Response(body, status=status.HTTP_201_CREATED)


class PasskeyListView(PasskeyView):
    """The user's passkeys, oldest first."""

    serializer_class = PasskeySerializer

    @document(responses={200: PasskeySerializer(many=True), **ERRORS})
    def get(self, request):
        return Response(PasskeySerializer(webauthn.user_passkeys(request.user), many=True).data)


class PasskeyDetailView(PasskeyView):
    """Rename or delete one of the user's passkeys; another user's id answers 404."""

    serializer_class = PasskeyRenameSerializer

    @document(request=PasskeyRenameSerializer, responses={200: PasskeySerializer, **ERRORS})
    def patch(self, request, passkey_id: str):
        data = self.validated(request)
        passkey = webauthn.rename_passkey(request.user, passkey_id, data["name"])
        return Response(PasskeySerializer(passkey).data)

    @document(request=None, responses={204: None, **ERRORS})
    def delete(self, request, passkey_id: str):
        webauthn.delete_passkey(request, request.user, passkey_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasskeyLoginBeginView(TesseraAPIView):
    """Options for a login that names no user: the authenticator offers its passkeys."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = None

    @document(
        request=None,
        responses={200: RequestOptionsSerializer, 404: ErrorSerializer, 429: ErrorSerializer},
    )
    def post(self, request):
        return Response(passwordless.options(request))


class ReauthenticateBeginView(PasskeyView):
    """Options for ``reauthenticate/`` with a passkey: one of the user's own keys."""

    serializer_class = None

    @document(request=None, responses={200: RequestOptionsSerializer, **ERRORS})
    def post(self, request):
        return Response(webauthn.reauthentication_options(request.user))
