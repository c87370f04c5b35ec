"""JWT endpoints: obtain, refresh, verify, sliding tokens, and the public key set."""

from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from ..authentication import JWTAuthentication
from ..conf import tessera_settings
from ..csrf import enforce_csrf
from ..schema import EMPTY_OBJECT, document
from ..serializers.jwt import (
    JWKSSerializer,
    RefreshSerializer,
    SlidingTokenSerializer,
    TokenPairSerializer,
    TokenPairWithUserSerializer,
    VerifySerializer,
)
from ..serializers.sessions import (
    LoginErrorSerializer,
    LoginSerializer,
    SlidingLoginResponseSerializer,
)
from ..services import jwt as jwt_service
from ..services import login as login_service
from ..tokens import jwt as codec
from .base import TesseraAPIView, error_responses
from .login_responses import token_pair_response

ERRORS = error_responses(400, 401, 403, 429, 503)
LOGIN_ERRORS = {**ERRORS, 401: LoginErrorSerializer}


class JWTEndpoint(TesseraAPIView):
    """The JWT endpoints take their credential in the body, not from an authenticator."""

    authentication_classes: list = []
    challenge_class = JWTAuthentication
    permission_classes = [AllowAny]


class CookieCSRFMixin:
    """In cookie mode the browser itself holds the credential: demand a CSRF token."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if tessera_settings.JWT_COOKIES:
            enforce_csrf(request)


class JWTObtainView(CookieCSRFMixin, JWTEndpoint):
    """Log in and receive an access and a refresh token (and cookies in cookie mode)."""

    serializer_class = LoginSerializer

    @document(request=LoginSerializer, responses={200: TokenPairWithUserSerializer, **LOGIN_ERRORS})
    def post(self, request):
        return self.password_login(request, login_service.JWT)


class JWTRefreshView(CookieCSRFMixin, JWTEndpoint):
    """Rotate a refresh token. A rotated token used again revokes its session."""

    serializer_class = RefreshSerializer

    @document(request=RefreshSerializer, responses={200: TokenPairSerializer, **ERRORS})
    def post(self, request):
        data = self.validated(request)
        token = data.get("refresh")
        if not token and tessera_settings.JWT_COOKIES:
            token = request.COOKIES.get(tessera_settings.JWT_REFRESH_COOKIE)
        if not token:
            raise NotAuthenticated("No refresh token was provided.")
        return token_pair_response(jwt_service.rotate(token, request))


class JWTVerifyView(JWTEndpoint):
    """200 when the token is valid and its session live; 401 otherwise."""

    serializer_class = VerifySerializer

    @document(request=VerifySerializer, responses={200: EMPTY_OBJECT, **ERRORS})
    def post(self, request):
        data = self.validated(request)
        jwt_service.verify(data["token"])
        return Response({})


class SlidingObtainView(JWTEndpoint):
    """Log in and receive one sliding token, refreshable until its refresh limit."""

    serializer_class = LoginSerializer

    @document(
        request=LoginSerializer, responses={200: SlidingLoginResponseSerializer, **LOGIN_ERRORS}
    )
    def post(self, request):
        return self.password_login(request, login_service.SLIDING)


class SlidingRefreshView(JWTEndpoint):
    """Exchange a sliding token (expired or not) for a fresh one, within its limit."""

    serializer_class = SlidingTokenSerializer

    @document(request=SlidingTokenSerializer, responses={200: SlidingTokenSerializer, **ERRORS})
    def post(self, request):
        data = self.validated(request)
        sliding = jwt_service.refresh_sliding(data["token"])
        return Response({"token": sliding.token})


class JWKSView(JWTEndpoint):
    """The public keys that verify this project's tokens. HMAC secrets never appear."""

    serializer_class = JWKSSerializer

    @document(responses={200: JWKSSerializer})
    def get(self, request):
        keys = [key.public_jwk() for key in codec.key_ring().keys.values() if key.is_asymmetric]
        return Response({"keys": keys})
