"""Account endpoints: register, me, password change and reset, e-mail verification."""

from __future__ import annotations

from django.utils.module_loading import import_string
from rest_framework import status
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticated
from rest_framework.response import Response

from ..authentication import BasicAuthentication
from ..conf import tessera_settings
from ..models import Session, SessionKind
from ..permissions import IsNotPersonalAccessToken, ReadOnlyForPersonalAccessTokens
from ..schema import document
from ..serializers.accounts import (
    AccountDeleteSerializer,
    EmailResendSerializer,
    EmailVerifySerializer,
    MeSerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
    RegisterResponseSerializer,
    RegisterSerializer,
)
from ..serializers.fields import DetailSerializer, ErrorSerializer
from ..services import passwords, profile, users, verification
from ..services import registration as registration_service
from .base import TesseraAPIView, error_responses

ERRORS = error_responses(400, 429, 503)
SIGNED_IN_ERRORS = {**ERRORS, **error_responses(401, 403)}
# Whatever credential the project's clients hold, including a browser session.
SIGNED_IN_AUTHENTICATION = [*TesseraAPIView.authentication_classes, BasicAuthentication]

SIGN_UP_ACCEPTED = "Check your inbox to finish signing up."
RESET_ACCEPTED = "If an account uses this address, a link to reset its password is on its way."
RESEND_ACCEPTED = "If an unverified account uses this address, a new link is on its way."


class RegisterView(TesseraAPIView):
    """Create an account. With PREVENT_ENUMERATION every sign-up gets the same answer."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = RegisterSerializer

    def get_serializer_class(self):
        return import_string(tessera_settings.REGISTER_SERIALIZER)

    @document(request=RegisterSerializer, responses={201: RegisterResponseSerializer, **ERRORS})
    def post(self, request):
        serializer = self.valid_serializer(request)
        registration = registration_service.register(
            request,
            serializer.account_fields(),
            serializer.validated_data["password"],
            device_name=serializer.validated_data.get("device_name", ""),
        )
        if tessera_settings.PREVENT_ENUMERATION:
            return Response({"detail": SIGN_UP_ACCEPTED}, status=status.HTTP_201_CREATED)
        body = {"user": self.user_data(registration.user)}
        if registration.issued is not None:
            body["token"] = registration.issued.token
        return Response(body, status=status.HTTP_201_CREATED)


class MeView(TesseraAPIView):
    """The signed-in user's profile (ME_SERIALIZER); DELETE closes the account.

    Closing the account, like changing the address, needs a recent authentication.
    """

    authentication_classes = SIGNED_IN_AUTHENTICATION
    permission_classes = [IsAuthenticated, ReadOnlyForPersonalAccessTokens]
    serializer_class = MeSerializer
    recent_auth_methods = ("DELETE",)

    @property
    def open_during_mfa_enrolment(self) -> bool:
        # A session waiting for MFA enrolment may read the profile, not change it.
        return self.request is not None and self.request.method in SAFE_METHODS

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "DELETE":
            return AccountDeleteSerializer
        return import_string(tessera_settings.ME_SERIALIZER)

    @document(responses={200: MeSerializer, 401: ErrorSerializer, 503: ErrorSerializer})
    def get(self, request):
        return Response(self.get_serializer(request.user).data)

    @document(request=MeSerializer, responses={200: MeSerializer, **SIGNED_IN_ERRORS})
    def patch(self, request):
        user = users.fresh_user(request.user)
        serializer = self.get_serializer(user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        profile.update_profile(request, serializer)
        return Response(self.get_serializer(users.fresh_user(user)).data)

    @document(request=AccountDeleteSerializer, responses={204: None, **SIGNED_IN_ERRORS})
    def delete(self, request):
        data = self.validated(request)
        profile.delete_account(request, data["password"])
        if isinstance(request.auth, Session) and request.auth.kind == SessionKind.BROWSER:
            request._request.session.flush()
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(TesseraAPIView):
    """Change the password; every other session is revoked, this one kept."""

    authentication_classes = SIGNED_IN_AUTHENTICATION
    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    serializer_class = PasswordChangeSerializer

    @document(responses={204: None, **SIGNED_IN_ERRORS})
    def post(self, request):
        data = self.validated(request)
        passwords.change_password(
            request,
            data["current_password"],
            data["new_password"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetView(TesseraAPIView):
    """Ask for a reset link: 202 and the same body, whether or not the account exists."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = PasswordResetSerializer

    @document(responses={202: DetailSerializer, **ERRORS})
    def post(self, request):
        data = self.validated(request)
        passwords.request_password_reset(request, data["email"])
        return Response({"detail": RESET_ACCEPTED}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(TesseraAPIView):
    """Set a new password with the link's ``uid`` and ``token``; all sessions end."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = PasswordResetConfirmSerializer

    @document(responses={204: None, **ERRORS})
    def post(self, request):
        data = self.validated(request)
        passwords.confirm_password_reset(
            request,
            data["uid"],
            data["token"],
            data["new_password"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyView(TesseraAPIView):
    """Submit the key from a verification e-mail (sign-up or change of address)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = EmailVerifySerializer

    @document(responses={204: None, **ERRORS})
    def post(self, request):
        data = self.validated(request)
        verification.consume(request, data["key"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyResendView(TesseraAPIView):
    """Send a new verification link: 202 whatever the address."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = EmailResendSerializer

    @document(responses={202: DetailSerializer, **ERRORS})
    def post(self, request):
        data = self.validated(request)
        verification.resend(request, data["email"])
        return Response({"detail": RESEND_ACCEPTED}, status=status.HTTP_202_ACCEPTED)
