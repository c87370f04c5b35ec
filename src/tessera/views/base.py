from __future__ import annotations

from django.db import transaction
from django.utils.module_loading import import_string
from rest_framework import generics
from rest_framework.exceptions import ParseError
from rest_framework.response import Response

from ..authentication import (
    JWTAuthentication,
    SessionAuthentication,
    TokenAuthentication,
    external_session_authentication,
    imported_token_authentication,
)
from ..conf import tessera_settings
from ..errors import RequestTooLarge, exception_handler
from ..parsers import JSONParser
from ..permissions import RequiresRecentAuth
from ..schema import TesseraAutoSchema
from ..serializers.fields import EmptySerializer, ErrorSerializer
from ..services import audit
from ..services import login as login_service
from .login_responses import login_response


def error_responses(*statuses: int) -> dict[int, type]:
    """The schema entries of the error statuses an operation can answer: one shape for all."""
    return {status: ErrorSerializer for status in statuses}


class TesseraAPIView(generics.GenericAPIView):
    """Base of every Tessera endpoint.

    Whatever the project's DRF settings, Tessera's endpoints answer errors in Tessera's
    shape, read bounded JSON, and keep 401 a 401 (DRF turns it into 403 when no
    authentication class announces a ``WWW-Authenticate`` challenge).
    """

    # Every credential kind Tessera issues, so any session can log out and manage
    # the account's sessions. HTTP Basic is left to the views that opt in.
    authentication_classes = [TokenAuthentication, JWTAuthentication, SessionAuthentication]
    parser_classes = [JSONParser]
    throttle_classes: list = []
    # The project's filter backends are for its own lists: Tessera's answer what they say.
    filter_backends: tuple = ()
    if TesseraAutoSchema is not None:
        schema = TesseraAutoSchema()

    # Announced in WWW-Authenticate when no authentication class of the view does.
    challenge_class: type = TokenAuthentication
    # Methods that need a recent authentication (RequiresRecentAuth), e.g. ("DELETE",).
    recent_auth_methods: tuple[str, ...] = ()
    # Whether a session waiting for MFA enrolment may call this view (see
    # tessera.authentication.refuse_until_enrolled).
    open_during_mfa_enrolment = False
    # Whether an external issuer's token that opened a Tessera session (an entry with
    # open_session) may call this view: logout and the session views, so that session
    # can be seen and ended, and nothing else of the account.
    accepts_external_sessions = False

    @classmethod
    def as_view(cls, **initkwargs):
        # Under ATOMIC_REQUESTS an error response would roll back the writes that must
        # outlive it: a revoked token family, a throttle counter. Services open their
        # own transactions where they need them.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    def dispatch(self, request, *args, **kwargs):
        # Events recorded deep in a service (a revocation) carry this client's address.
        bound = audit.current_request.set(request)
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            audit.current_request.reset(bound)

    def initial(self, request, *args, **kwargs):
        # Refuse by the declared length before anything reads the body into memory.
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError as exc:
            raise ParseError("Invalid Content-Length header.") from exc
        if declared > tessera_settings.MAX_BODY_BYTES:
            raise RequestTooLarge()
        super().initial(request, *args, **kwargs)

    def get_serializer_class(self):
        # A view that reads no body declares no serializer; DRF's OPTIONS answer still
        # asks for one to describe the POST fields, and would fail with a 500.
        return self.serializer_class or EmptySerializer

    def valid_serializer(self, request):
        """The view's serializer over the request body, validated (400 ``invalid`` if not)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer

    def validated(self, request) -> dict:
        """The request body as the view's serializer validated it."""
        return self.valid_serializer(request).validated_data

    def get_permissions(self):
        permissions = super().get_permissions()
        if self.request is not None and self.request.method in self.recent_auth_methods:
            permissions.append(RequiresRecentAuth())
        return permissions

    def password_login(self, request, credential: str) -> Response:
        """Log in with the body's identifier and password, ending in ``credential``; the
        login's answer (or 401 ``mfa_required`` with a ticket for a second factor).

        For the views whose serializer is :class:`~tessera.serializers.sessions.LoginSerializer`.
        """
        data = self.validated(request)
        intent = login_service.LoginIntent(credential, data["device_name"])
        result = login_service.login(request, data["identifier"], data["password"], intent)
        return login_response(self, credential, result)

    def get_exception_handler(self):
        return exception_handler

    def get_authenticators(self):
        authenticators = super().get_authenticators()
        # Tokens imported from DRF or knox work here once the project's API accepts them,
        # so an old client can log out and see its sessions like any other.
        imported = imported_token_authentication()
        if authenticators and imported is not None:
            authenticators.append(imported())
        external = external_session_authentication() if self.accepts_external_sessions else None
        if authenticators and external is not None:
            # Before JWTAuthentication, which would refuse the issuer's JWT as not its own.
            position = next(
                (i for i, a in enumerate(authenticators) if isinstance(a, JWTAuthentication)),
                len(authenticators),
            )
            authenticators.insert(position, external)
        return authenticators

    def get_authenticate_header(self, request):
        fallback = self.challenge_class().authenticate_header(request)
        return super().get_authenticate_header(request) or fallback

    def user_data(self, user) -> dict:
        serializer_class = import_string(tessera_settings.USER_SERIALIZER)
        return serializer_class(user, context=self.get_serializer_context()).data
