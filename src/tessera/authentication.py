"""DRF authentication classes.

Each follows DRF's pattern: ``authenticate`` returns ``None`` when the request carries no
credential of its kind (so the next class can try), ``(user, session)`` when it is
valid, and raises ``AuthenticationFailed`` when it is Tessera's but bad.
``request.auth`` is the :class:`tessera.models.Session`, except with HTTP Basic (None: no
session is opened), with stateless JWT (the token's claims) and with an external issuer's
token (a :class:`tessera.tokens.external.ExternalToken`, whose ``session`` is the
Session when the issuer's entry opens one).

A session opened while MFA_REQUIRED found no second factor for its user is refused (403
``mfa_enrolment_required``) by every class here except on views whose
``open_during_mfa_enrolment`` is true: Tessera's factor set-up, ``me/`` (read), logout.
The project's own views need nothing for that.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from django.conf import settings
from rest_framework import HTTP_HEADER_ENCODING
from rest_framework.authentication import BaseAuthentication
from rest_framework.settings import api_settings

from .conf import tessera_settings
from .csrf import enforce_csrf
from .errors import (
    HttpsRequired,
    InvalidCredentials,
    InvalidHeader,
    InvalidToken,
    MFAEnrolmentRequired,
)
from .legacy.digests import legacy_digests
from .models import Session
from .services import browser as browser_service
from .services import external_tokens
from .services import jwt as jwt_service
from .services.login import check_credentials, require_password_only_account
from .services.sessions import authenticate_digest, authenticate_token
from .tokens import external, opaque
from .tokens import jwt as jwt_codec

__all__ = [
    "BasicAuthentication",
    "ExternalJWTAuthentication",
    "ImportedTokenAuthentication",
    "JWTAuthentication",
    "SessionAuthentication",
    "TokenAuthentication",
]


def authorization_parts(request) -> list[bytes]:
    """The Authorization header split on white space, as bytes.

    Unlike DRF's helper this cannot raise on a header that is not Latin-1 text, which
    would otherwise become a 500.
    """
    header = request.META.get("HTTP_AUTHORIZATION", b"")
    if isinstance(header, str):
        header = header.encode(HTTP_HEADER_ENCODING, errors="replace")
    return header.split()


@lru_cache(maxsize=16)
def _header_keywords(keywords: tuple[str, ...]) -> frozenset[bytes]:
    """The keywords as the header's first word is compared with them: lower-case bytes."""
    return frozenset(keyword.lower().encode() for keyword in keywords)


def refuse_until_enrolled(request, result):
    """``result`` unless its session may only set up a second factor and the view is not
    open to such sessions (403 ``mfa_enrolment_required``)."""
    auth = result[1] if result is not None else None
    if isinstance(auth, Session):
        waiting = auth.mfa_enrolment_required
    else:
        waiting = isinstance(auth, dict) and auth.get("mfa_enrolment_required") is True
    if waiting:
        view = (getattr(request, "parser_context", None) or {}).get("view")
        if not getattr(view, "open_during_mfa_enrolment", False):
            raise MFAEnrolmentRequired()
    return result


class TokenAuthentication(BaseAuthentication):
    """Opaque per-device tokens: ``Authorization: Token tsr1_…`` (or ``Bearer``).

    ``keywords`` defaults to ``TESSERA['AUTH_HEADER_TYPES']``; subclass to change it.
    """

    keywords: tuple[str, ...] | None = None

    def get_keywords(self) -> tuple[str, ...]:
        return tuple(self.keywords or tessera_settings.AUTH_HEADER_TYPES)

    def authenticate(self, request):
        parts = authorization_parts(request)
        if not parts or parts[0].lower() not in _header_keywords(tuple(self.get_keywords())):
            return None
        if len(parts) == 1:
            raise InvalidHeader("Invalid token header. No credentials provided.")
        if len(parts) > 2:
            raise InvalidHeader("Invalid token header. Token string should not contain spaces.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeError as exc:
            raise InvalidHeader(
                "Invalid token header. Token string should not contain invalid characters."
            ) from exc
        if not self.handles(token):
            return None
        return refuse_until_enrolled(request, self.authenticate_credentials(token))

    def handles(self, token: str) -> bool:
        """Whether ``token`` looks like this class's; others go to the next class, unqueried."""
        return opaque.is_tessera_token(token)

    def authenticate_credentials(self, token: str):
        session = authenticate_token(token)
        return session.user, session

    def authenticate_header(self, request) -> str:
        return f'{self.get_keywords()[0]} realm="api"'


class JWTAuthentication(TokenAuthentication):
    """JWT access and sliding tokens: ``Authorization: Bearer <jwt>``.

    In cookie mode (``JWT_COOKIES``) the access token may come from its HttpOnly cookie
    instead; the browser sends that by itself, so unsafe requests authenticated by it
    must carry a CSRF token. ``request.auth`` is the Session (or, with
    ``JWT_REVOCATION_CHECK`` off, the token's claims).
    """

    def get_keywords(self) -> tuple[str, ...]:
        return tuple(self.keywords or tessera_settings.JWT_AUTH_HEADER_TYPES)

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None or authorization_parts(request):
            return result
        cookie = request.COOKIES.get(tessera_settings.JWT_ACCESS_COOKIE)
        if not tessera_settings.JWT_COOKIES or not cookie:
            return None
        result = self.authenticate_credentials(cookie)
        enforce_csrf(request)
        return refuse_until_enrolled(request, result)

    def handles(self, token: str) -> bool:
        return jwt_codec.looks_like_jwt(token)

    def authenticate_credentials(self, token: str):
        return jwt_service.authenticate_access(token)


class ExternalJWTAuthentication(TokenAuthentication):
    """Access tokens of the issuers in ``TESSERA['TRUSTED_ISSUERS']``: ``Bearer <jwt>``.

    A JWT whose ``iss`` is no trusted issuer's goes to the next class, so list this one
    before :class:`JWTAuthentication`. ``request.auth`` is an
    :class:`~tessera.tokens.external.ExternalToken`. By default no Tessera session is
    opened, so there is nothing to revoke here: the issuer's token lifetime bounds
    access. An entry with ``open_session`` opens one per token (its ``session``), which
    Tessera's logout and session views accept and end.
    """

    keywords = ("Bearer",)
    # True on Tessera's own session views: only the tokens of entries that open sessions.
    session_entries_only = False

    def authenticate(self, request):
        # The session a token opens records the request's client (user agent, address).
        self.request = request
        return super().authenticate(request)

    def handles(self, token: str) -> bool:
        entry = external.entry_for(token)
        if entry is None:
            return False
        return not self.session_entries_only or entry.get("open_session") is True

    def authenticate_credentials(self, token: str):
        entry = external.entry_for(token)
        return external_tokens.authenticate(getattr(self, "request", None), token, entry)


def external_session_authentication() -> ExternalJWTAuthentication | None:
    """For Tessera's session views: the project's ExternalJWTAuthentication, taking only
    the tokens of entries that open sessions; None when no entry does."""
    if not any(entry.get("open_session") is True for entry in tessera_settings.TRUSTED_ISSUERS):
        return None
    authentication_class = next(
        (
            cls
            for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES
            if issubclass(cls, ExternalJWTAuthentication)
        ),
        ExternalJWTAuthentication,
    )
    authenticator = authentication_class()
    authenticator.session_entries_only = True
    return authenticator


class SessionAuthentication(BaseAuthentication):
    """The browser session opened by ``session/login/``, with CSRF enforced as DRF does.

    The Django session holds only the digest of a Tessera browser session, checked on
    every request like a token (cache, revocation, expiry). A Django session whose
    Tessera session has ended is flushed, which logs the browser out.
    """

    def authenticate(self, request):
        session = browser_service.bound_session(getattr(request._request, "session", None))
        if session is None:
            return None
        enforce_csrf(request)
        return refuse_until_enrolled(request, (session.user, session))


# Longer passwords are refused before hashing, as the login endpoint refuses them.
BASIC_PASSWORD_MAX_BYTES = 4096


class BasicAuthentication(BaseAuthentication):
    """HTTP Basic, ``Authorization: Basic base64(identifier:password)``; off by default.

    For scripts and tools: every request runs the password hasher. Switched on with
    ``TESSERA['BASIC_AUTH']``; credentials go through the login checks (same throttle
    counters, the hasher run once for unknown users, inactive users refused), and a user
    with a second factor, or whom MFA_REQUIRED covers, is refused (403
    ``mfa_not_supported``: a personal access token is the way for scripts). Plain HTTP
    is refused unless DEBUG or ``BASIC_AUTH_ALLOW_HTTP``. No challenge is announced, so
    browsers never prompt for, cache and then replay these credentials cross-site.
    ``request.auth`` is None: no session is opened per request.
    """

    def authenticate(self, request):
        if not tessera_settings.BASIC_AUTH:
            return None
        parts = authorization_parts(request)
        if not parts or parts[0].lower() != b"basic":
            return None
        if len(parts) != 2:
            raise InvalidHeader("Invalid basic header. Credentials should be one base64 string.")
        if not (request.is_secure() or settings.DEBUG or tessera_settings.BASIC_AUTH_ALLOW_HTTP):
            raise HttpsRequired()
        try:
            decoded = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidHeader(
                "Invalid basic header. Credentials not correctly base64 encoded."
            ) from exc
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            text = decoded.decode("latin-1")
        identifier, separator, password = text.partition(":")
        if not separator:
            raise InvalidHeader("Invalid basic header. Expected identifier:password.")
        if len(password.encode("utf-8", "surrogatepass")) > BASIC_PASSWORD_MAX_BYTES:
            raise InvalidCredentials()
        user = check_credentials(request, identifier, password)
        require_password_only_account(user)
        return user, None


class ImportedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <old DRF key or knox token>`` for imported tokens.

    List it right after :class:`TokenAuthentication` and before
    any class of the old library (system check ``tessera.E030``). Once it is listed,
    Tessera's own endpoints accept imported tokens too, so old clients can log out.
    """

    def handles(self, token: str) -> bool:
        return bool(legacy_digests(token))

    def authenticate_credentials(self, token: str):
        for token_digest in legacy_digests(token):
            try:
                session = authenticate_digest(token_digest)
            except InvalidToken:
                continue
            return session.user, session
        return None


def imported_token_authentication() -> type[ImportedTokenAuthentication] | None:
    """The project's ImportedTokenAuthentication class, if its API accepts imported tokens."""
    for authentication_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authentication_class, ImportedTokenAuthentication):
            return authentication_class
    return None
