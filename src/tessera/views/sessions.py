"""Login, logout and the user's list of sessions."""

from __future__ import annotations

from django.contrib.auth import user_logged_out
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from ..conf import tessera_settings
from ..cookies import delete_token_cookies
from ..models import RevokeReason, Session
from ..parsers import JSONParser
from ..permissions import IsNotPersonalAccessToken
from ..schema import document
from ..serializers.fields import ErrorSerializer
from ..serializers.sessions import (
    LoginErrorSerializer,
    LoginResponseSerializer,
    LoginSerializer,
    NotMeResponseSerializer,
    NotMeSerializer,
    ObtainAuthTokenSerializer,
    SessionSerializer,
    TokenOnlySerializer,
)
from ..services import device_notices
from ..services import login as login_service
from ..services import sessions as session_service
from .base import TesseraAPIView, error_responses

ERRORS = error_responses(400, 401, 429, 503)
# A login's 401 may be mfa_required, which carries the ticket for its second factor.
LOGIN_ERRORS = {**error_responses(400, 403, 429, 503), 401: LoginErrorSerializer}


def logged_out_response() -> Response:
    response = Response(status=status.HTTP_204_NO_CONTENT)
    if tessera_settings.JWT_COOKIES:
        delete_token_cookies(response)
    return response


class LoginView(TesseraAPIView):
    """Exchange credentials for a new device session and its opaque token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = LoginSerializer

    @document(request=LoginSerializer, responses={200: LoginResponseSerializer, **LOGIN_ERRORS})
    def post(self, request):
        return self.password_login(request, login_service.TOKEN)


class LogoutView(TesseraAPIView):
    """Revoke the session this request was authenticated with."""

    permission_classes = [IsAuthenticated]
    accepts_external_sessions = True
    serializer_class = None
    open_during_mfa_enrolment = True

    @document(request=None, responses={204: None, 401: ErrorSerializer})
    def post(self, request):
        session = session_service.session_of(request)
        if session is not None:
            session_service.revoke_sessions([session], RevokeReason.LOGOUT)
        user_logged_out.send(
            sender=request.user.__class__, request=request, user=request.user, tessera=True
        )
        return logged_out_response()


class LogoutAllView(TesseraAPIView):
    """Revoke every session of the user, on every device, whatever its kind.

    Session management needs a login: a personal access token, however scoped, must
    not be able to end or inspect the owner's other sessions.
    """

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    accepts_external_sessions = True
    serializer_class = None
    open_during_mfa_enrolment = True

    @document(request=None, responses={204: None, 401: ErrorSerializer})
    def post(self, request):
        session_service.revoke_user_sessions(request.user, RevokeReason.LOGOUT_ALL)
        user_logged_out.send(
            sender=request.user.__class__, request=request, user=request.user, tessera=True
        )
        return logged_out_response()


class SessionListView(TesseraAPIView):
    """The user's sessions, newest use first. ``?state=all`` includes ended ones."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    accepts_external_sessions = True
    serializer_class = SessionSerializer
    MAX_ROWS = 100

    # Every list view names its rows in get_queryset: DRF's browsable API asks for them.
    def get_queryset(self):
        sessions = Session.objects.filter(user=self.request.user)
        if self.request.query_params.get("state") != "all":
            sessions = sessions.live()
        return sessions.order_by("-last_used_at")[: self.MAX_ROWS]

    @document(responses={200: SessionSerializer(many=True), 401: ErrorSerializer})
    def get(self, request):
        return Response(self.get_serializer(self.get_queryset(), many=True).data)


class SessionDetailView(TesseraAPIView):
    """Revoke one of the user's sessions. Another user's session id answers 404."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    accepts_external_sessions = True
    serializer_class = None

    @document(request=None, responses={204: None, 401: ErrorSerializer, 404: ErrorSerializer})
    def delete(self, request, session_id: str):
        session_service.revoke_own_session(request.user, session_id, RevokeReason.USER)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotMeView(TesseraAPIView):
    """Report a login ("this wasn't me"): the link of a new-device e-mail ends the session
    it names, or with ``all`` every session of the account. No login needed (whoever
    reads the account's mail may end its sessions); each link works once and expires."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = NotMeSerializer

    @document(
        request=NotMeSerializer,
        responses={200: NotMeResponseSerializer, **error_responses(400, 429, 503)},
    )
    def post(self, request):
        data = self.validated(request)
        revoked = device_notices.report_login(request, data["token"], all_sessions=data["all"])
        return Response({"revoked": revoked})


class ObtainAuthTokenView(TesseraAPIView):
    """Drop-in for DRF's ``obtain_auth_token``: ``{username, password}`` → ``{token}``.

    Each call opens a new session, so two devices never share a token. Form posts are
    accepted as DRF's view accepts them. It cannot ask for a second factor: a user who
    has one (or must, under MFA_REQUIRED) is refused with 403 ``mfa_not_supported``.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    serializer_class = ObtainAuthTokenSerializer

    @document(responses={200: TokenOnlySerializer, **error_responses(400, 401, 403, 429, 503)})
    def post(self, request):
        data = self.validated(request)
        user = login_service.check_credentials(request, data["username"], data["password"])
        login_service.require_password_only_account(user)
        issued = login_service.complete_login(
            request, user, login_service.LoginIntent(login_service.TOKEN, "api-token-auth")
        )
        return Response({"token": issued.token})


obtain_auth_token = ObtainAuthTokenView.as_view()
