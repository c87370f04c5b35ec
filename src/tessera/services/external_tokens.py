"""What an external issuer's access token stands for: its user and, if asked, a session.

By default such a token is stateless: each request verifies it and reads the user's link
(:mod:`tessera.services.external_identities`); nothing is stored per token and nothing
can be revoked here. An entry with ``"open_session": True`` instead opens one Tessera
session per token, on first sight, through
:func:`~tessera.services.sessions.open_session`: it is listed in ``sessions/`` with
``amr`` ``["fed"]``, ends with logout, logout-all or ``DELETE sessions/<id>/`` (the same
token is refused from its next request on, though the issuer's signature stays valid),
and expires with the token. Later requests with the token find the session by digest
like any other credential: near cache, shared cache, one indexed query cold, and a write
at most once per ``MIN_REFRESH_INTERVAL``; the link is not read again.

The session's ``auth_time`` is unknown (the user proved who they are to the issuer, at a
time Tessera cannot vouch for), so ``RequiresRecentAuth`` and ``RequiresMFA`` refuse it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import DatabaseError, IntegrityError
from django.utils import timezone

from ..errors import InvalidToken, IssuerUnavailable, ServiceUnavailable, TokenExpired
from ..models import Session, SessionKind
from ..tokens import external
from ..tokens import jwt as jwt_codec
from . import external_identities, issuer_keys
from . import sessions as session_service
from .jwt import CODEC_ERRORS

# RFC 8176: the user authenticated with a federated identity provider.
FEDERATED = "fed"


def authenticate(request, token: str, entry: dict[str, Any]) -> tuple[Any, external.ExternalToken]:
    """``(user, ExternalToken)`` for a token of ``entry``'s issuer, or the 401/503 error."""
    held = issuer_keys.issuer_keys(entry)
    try:
        claims = external.decode(token, entry, held.key)
    except issuer_keys.IssuerUnreachable as exc:
        raise IssuerUnavailable() from exc
    except jwt_codec.InvalidJWT as exc:
        raise CODEC_ERRORS.get(exc.code, InvalidToken)(str(exc)) from exc
    session = None
    if entry.get("open_session") is True:
        session = _session(request, token, entry, claims)
        user = session.user
    else:
        user = external_identities.user_for(entry, claims)
    return user, external.ExternalToken(
        issuer=entry["issuer"],
        claims=claims,
        roles=external.claimed_names(claims, entry.get("roles_claim")),
        scopes=external.claimed_names(claims, entry.get("scopes_claim")),
        session=session,
    )


def _session(request, token: str, entry: dict[str, Any], claims: dict[str, Any]) -> Session:
    """The token's live session, opened now if this is its first request."""
    token_digest = external.session_digest(token, claims)
    try:
        return session_service.authenticate_digest(token_digest, remember_unknown=False)
    except InvalidToken:
        pass  # never seen: open it
    expires_at = external.expiry_of(claims)
    if expires_at <= timezone.now():
        # Inside JWT_LEEWAY: a session would be born expired. Refusing also means a row
        # deleted after the token's expiry can never be opened again.
        raise TokenExpired()
    user = external_identities.user_for(entry, claims)
    try:
        return session_service.open_session(
            user,
            kind=SessionKind.EXTERNAL,
            lookup_digest=token_digest,
            request=request,
            device_name=(urlsplit(entry["issuer"]).hostname or "")[:100],
            expires_at=expires_at,
            idle_lifetime=None,
            amr=(FEDERATED,),
            auth_time=None,
            issue=lambda session, _token: session,
        )
    except IntegrityError:
        # A concurrent request with the same token opened it first.
        return session_service.authenticate_digest(token_digest, remember_unknown=False)
    except DatabaseError as exc:
        raise ServiceUnavailable() from exc
