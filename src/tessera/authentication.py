"""DRF authentication classes.

Each follows DRF's pattern: ``authenticate`` returns ``None`` when the request carries no
credential of its kind (so the next class can try), ``(user, session)`` when it is
valid, and raises ``AuthenticationFailed`` when it is Tessera's but bad.
``request.auth`` is always the :class:`tessera.models.Session`.
"""

from __future__ import annotations

from rest_framework import HTTP_HEADER_ENCODING, exceptions
from rest_framework.authentication import BaseAuthentication

from .conf import tessera_settings
from .services.sessions import authenticate_token
from .tokens import opaque


def authorization_parts(request) -> list[bytes]:
    """The Authorization header split on white space, as bytes.

    Unlike DRF's helper this cannot raise on a header that is not Latin-1 text, which
    would otherwise become a 500.
    """
    header = request.META.get("HTTP_AUTHORIZATION", b"")
    if isinstance(header, str):
        header = header.encode(HTTP_HEADER_ENCODING, errors="replace")
    return header.split()


class TokenAuthentication(BaseAuthentication):
    """Opaque per-device tokens: ``Authorization: Token tsr1_…`` (or ``Bearer``).

    ``keywords`` defaults to ``TESSERA['AUTH_HEADER_TYPES']``; subclass to change it.
    """

    keywords: tuple[str, ...] | None = None

    def get_keywords(self) -> tuple[str, ...]:
        return tuple(self.keywords or tessera_settings.AUTH_HEADER_TYPES)

    def authenticate(self, request):
        parts = authorization_parts(request)
        keywords = {k.lower().encode() for k in self.get_keywords()}
        if not parts or parts[0].lower() not in keywords:
            return None
        if len(parts) == 1:
            raise exceptions.AuthenticationFailed(
                "Invalid token header. No credentials provided.", code="invalid_header"
            )
        if len(parts) > 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header. Token string should not contain spaces.",
                code="invalid_header",
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed(
                "Invalid token header. Token string should not contain invalid characters.",
                code="invalid_header",
            ) from exc
        if not opaque.is_tessera_token(token):
            return None
        return self.authenticate_credentials(token)

    def authenticate_credentials(self, token: str):
        session = authenticate_token(token)
        return session.user, session

    def authenticate_header(self, request) -> str:
        return f'{self.get_keywords()[0]} realm="api"'
