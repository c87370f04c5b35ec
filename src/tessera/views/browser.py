"""Browser (single-page app) login with a session cookie and CSRF protection.

The SPA first GETs ``csrf/`` to receive the CSRF cookie, then sends its value in the
``X-CSRFToken`` header on every unsafe request, the anonymous login POST included: a
login form without CSRF protection lets another site log the browser in to the
attacker's account.
"""

from __future__ import annotations

from django.middleware.csrf import get_token
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from ..authentication import SessionAuthentication
from ..csrf import enforce_csrf
from ..schema import document
from ..serializers.fields import ErrorSerializer
from ..serializers.sessions import (
    BrowserLoginResponseSerializer,
    LoginErrorSerializer,
    LoginSerializer,
)
from ..services import browser as browser_service
from ..services import login as login_service
from .base import TesseraAPIView, error_responses

ERRORS = {**error_responses(400, 403, 429, 503), 401: LoginErrorSerializer}


class CsrfView(TesseraAPIView):
    """Set the CSRF cookie (``CSRF_COOKIE_NAME``) for the SPA to echo in ``X-CSRFToken``."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = None

    @document(request=None, responses={204: None})
    def get(self, request):
        get_token(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionLoginView(TesseraAPIView):
    """Log the browser in: a new session key, a new CSRF token, a ``browser`` session."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = LoginSerializer

    @document(request=LoginSerializer, responses={200: BrowserLoginResponseSerializer, **ERRORS})
    def post(self, request):
        enforce_csrf(request)
        return self.password_login(request, login_service.BROWSER)


class SessionLogoutView(TesseraAPIView):
    """End the browser session: revoked in ``sessions/`` and the cookie emptied."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    serializer_class = None
    open_during_mfa_enrolment = True

    @document(request=None, responses={204: None, 401: ErrorSerializer, 403: ErrorSerializer})
    def post(self, request):
        browser_service.logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)
