"""Passkeys: register and manage them, and log in with one instead of a password.

Each ceremony is two requests: ``…/begin/`` answers the options for the browser's
``navigator.credentials.create()`` or ``.get()``, and ``…/complete/`` takes what the
browser returned. As a second factor a passkey answers through ``mfa/authenticate/`` and
``reauthenticate/`` (the ``webauthn`` field). See docs/passkeys.md.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from ..conf import tessera_settings
from ..csrf import enforce_csrf
from ..schema import document, one_of
from ..serializers.fields import ErrorSerializer
from ..serializers.webauthn import (
    CreationOptionsSerializer,
    PasskeyLoginSerializer,
    PasskeyRegisterBeginSerializer,
    PasskeyRegisteredSerializer,
    PasskeyRegisterSerializer,
    PasskeyRenameSerializer,
    PasskeySerializer,
    RequestOptionsSerializer,
)
from ..services import login as login_service
from ..services.mfa import passwordless, webauthn
from .base import TesseraAPIView, error_responses
from .login_responses import LOGIN_RESPONSE_SERIALIZERS, login_response
from .mfa import FactorView

ERRORS = error_responses(400, 401, 403, 404, 503)


class PasskeyRegisterBeginView(FactorView):
    """Options to create a passkey; the challenge serves one ``complete/`` within its TTL.

    Needs a recent authentication: a passkey is a way into the account that outlives
    the session (and, passwordless, a password change), so a stolen session must not be
    able to add one.
    """

    serializer_class = PasskeyRegisterBeginSerializer
    recent_auth_methods = ("POST",)

    @document(
        request=PasskeyRegisterBeginSerializer,
        responses={200: CreationOptionsSerializer, **ERRORS},
    )
    def post(self, request):
        data = self.validated(request)
        return Response(
            webauthn.registration_options(request.user, passwordless=data["passwordless"])
        )


class PasskeyRegisterCompleteView(FactorView):
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


class PasskeyListView(FactorView):
    """The user's passkeys, oldest first."""

    serializer_class = PasskeySerializer

    def get_queryset(self):
        return webauthn.user_passkeys(self.request.user)

    @document(responses={200: PasskeySerializer(many=True), **ERRORS})
    def get(self, request):
        return Response(PasskeySerializer(self.get_queryset(), many=True).data)


class PasskeyDetailView(FactorView):
    """Rename or delete one of the user's passkeys; another user's id answers 404.

    Deleting needs a recent authentication, as removing any factor does.
    """

    serializer_class = PasskeyRenameSerializer
    recent_auth_methods = ("DELETE",)

    @document(request=PasskeyRenameSerializer, responses={200: PasskeySerializer, **ERRORS})
    def patch(self, request, passkey_id: str):
        data = self.validated(request)
        passkey = webauthn.rename_passkey(request.user, passkey_id, data["name"])
        return Response(PasskeySerializer(passkey).data)

    @document(request=None, responses={204: None, **ERRORS})
    def delete(self, request, passkey_id: str):
        webauthn.delete_passkey(request, request.user, passkey_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReauthenticateBeginView(FactorView):
    """Options for ``reauthenticate/`` with a passkey: one of the user's own keys."""

    @document(request=None, responses={200: RequestOptionsSerializer, **ERRORS})
    def post(self, request):
        return Response(webauthn.reauthentication_options(request.user))


class PasskeyLoginBeginView(TesseraAPIView):
    """Options for a login that names no user: the authenticator offers its passkeys."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = None

    @document(
        request=None,
        responses={200: RequestOptionsSerializer, **error_responses(404, 429, 503)},
    )
    def post(self, request):
        return Response(passwordless.options(request))


class PasskeyLoginCompleteView(TesseraAPIView):
    """Log in with a passkey alone; the answer is the password login's for ``kind``.

    A browser session, and JWTs in cookie mode, need the CSRF token here as they do at
    the password login: otherwise another site could log the browser in to its account.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = PasskeyLoginSerializer

    @document(
        request=PasskeyLoginSerializer,
        responses={
            200: one_of("PasskeyLoginResponse", list(LOGIN_RESPONSE_SERIALIZERS.values())),
            **error_responses(400, 403, 404, 429, 503),
        },
    )
    def post(self, request):
        data = self.validated(request)
        kind = data["kind"]
        if kind == login_service.BROWSER or (
            kind == login_service.JWT and tessera_settings.JWT_COOKIES
        ):
            enforce_csrf(request)
        intent = login_service.LoginIntent(kind, data["device_name"])
        result = passwordless.log_in(request, data["credential"], intent)
        return login_response(self, kind, result)
