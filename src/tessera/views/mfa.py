"""Second factors: the factor list, TOTP, recovery codes, the second step of a login,
and ``reauthenticate/``.

Only login sessions manage factors (a personal access token is refused), and sessions
waiting for MFA enrolment may use these endpoints: setting up a factor is what they wait
for. Removing a factor and replacing the recovery codes need a recent authentication.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from ..conf import tessera_settings
from ..csrf import enforce_csrf
from ..permissions import IsNotPersonalAccessToken
from ..schema import document, one_of
from ..serializers.mfa import (
    CodeSerializer,
    FactorListSerializer,
    FactorSerializer,
    ReauthenticateSerializer,
    RecoveryCodesLeftSerializer,
    RecoveryCodesSerializer,
    SecondFactorSerializer,
    TOTPConfirmedSerializer,
    TOTPEnrolmentSerializer,
)
from ..services import login as login_service
from ..services.mfa import factors, policy, recovery_codes, stepup, tickets, totp
from .base import TesseraAPIView, error_responses
from .login_responses import LOGIN_RESPONSE_SERIALIZERS, login_response

ERRORS = error_responses(401, 403, 503)
CODE_ERRORS = {**ERRORS, **error_responses(400, 429)}


class FactorView(TesseraAPIView):
    """Base of the endpoints that manage the signed-in user's factors."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    serializer_class = None
    open_during_mfa_enrolment = True


class FactorListView(FactorView):
    """The user's second factors, and whether MFA_REQUIRED asks them to have one."""

    @document(responses={200: FactorListSerializer, **ERRORS})
    def get(self, request):
        listed = factors.confirmed_factors(request.user).select_related("user")
        return Response(
            {
                "factors": FactorSerializer(listed, many=True).data,
                "required": policy.covers(request.user),
            }
        )


class TOTPView(FactorView):
    """POST: a new secret to add to an authenticator app (confirm it with a code).
    DELETE: remove the app. Both need a recent authentication: a stolen session must not
    put its own app in front of the account."""

    recent_auth_methods = ("POST", "DELETE")

    @document(
        request=None, responses={200: TOTPEnrolmentSerializer, **ERRORS, **error_responses(409)}
    )
    def post(self, request):
        enrolment = totp.begin(request, request.user)
        return Response(
            {
                "secret": enrolment.secret,
                "otpauth_uri": enrolment.otpauth_uri,
                "qr_svg": enrolment.qr_svg,
            }
        )

    @document(request=None, responses={204: None, **ERRORS, **error_responses(404)})
    def delete(self, request):
        factors.disable_totp(request, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TOTPConfirmView(FactorView):
    """Confirm the set-up with the app's current code. The first factor comes with a set
    of recovery codes, shown only in this answer."""

    serializer_class = CodeSerializer
    recent_auth_methods = ("POST",)

    @document(responses={200: TOTPConfirmedSerializer, **CODE_ERRORS, **error_responses(404)})
    def post(self, request):
        data = self.validated(request)
        confirmed, codes = factors.confirm_totp(request, request.user, data["code"])
        return Response({"factor": FactorSerializer(confirmed).data, "recovery_codes": codes})


class RecoveryCodesView(FactorView):
    """GET: how many recovery codes are left. POST: a new set, shown only in this answer
    (needs a recent authentication); the old set stops working."""

    recent_auth_methods = ("POST",)

    @document(responses={200: RecoveryCodesLeftSerializer, **ERRORS})
    def get(self, request):
        return Response({"remaining": recovery_codes.remaining(request.user)})

    @document(
        request=None, responses={200: RecoveryCodesSerializer, **ERRORS, **error_responses(409)}
    )
    def post(self, request):
        return Response({"codes": factors.regenerate_recovery_codes(request, request.user)})


class SecondFactorView(TesseraAPIView):
    """Finish a login that answered ``mfa_required``: its ticket and a second factor.

    The answer is what that login would have answered: a token, a JWT pair (with its
    cookies in cookie mode), a sliding token or a browser session. A browser login, and a
    JWT login in cookie mode, need the CSRF token here as they did at the login.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = SecondFactorSerializer

    @document(
        responses={
            200: one_of("SecondFactorLoginResponse", list(LOGIN_RESPONSE_SERIALIZERS.values())),
            **error_responses(400, 401, 403, 429, 503),
        }
    )
    def post(self, request):
        data = self.validated(request)
        ticket = tickets.find(request, data["ticket"])
        if ticket.credential == login_service.BROWSER or (
            ticket.credential == login_service.JWT and tessera_settings.JWT_COOKIES
        ):
            enforce_csrf(request)
        field = data["proof_field"]
        result = login_service.complete_second_factor(request, ticket, field, data[field])
        return login_response(self, ticket.credential, result)


class ReauthenticateView(TesseraAPIView):
    """Prove again who you are, with the password or a second factor: the session's
    ``auth_time`` becomes now, for RequiresRecentAuth."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    serializer_class = ReauthenticateSerializer
    open_during_mfa_enrolment = True

    @document(responses={204: None, **CODE_ERRORS})
    def post(self, request):
        data = self.validated(request)
        field = data["proof_field"]
        stepup.reauthenticate(request, field, data[field])
        return Response(status=status.HTTP_204_NO_CONTENT)
