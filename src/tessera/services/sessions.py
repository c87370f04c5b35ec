"""Sessions: create one per login, find one by token on every request, revoke them.

This module is the only place that changes a Session row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.utils import timezone
from rest_framework import exceptions

from .. import session_cache, signals
from ..conf import tessera_settings
from ..errors import ServiceUnavailable, SessionLimitReached
from ..models import RevokeReason, Session, SessionKind
from ..tokens import opaque
from .requests import client_ip, user_agent


class InvalidToken(exceptions.AuthenticationFailed):
    default_detail = "Invalid token."
    default_code = "invalid_token"


class TokenExpired(exceptions.AuthenticationFailed):
    default_detail = "Token has expired."
    default_code = "token_expired"


class TokenRevoked(exceptions.AuthenticationFailed):
    default_detail = "Token has been revoked."
    default_code = "token_revoked"


class UserInactive(exceptions.AuthenticationFailed):
    default_detail = "User inactive or deleted."
    default_code = "user_inactive"


@dataclass(frozen=True)
class IssuedToken:
    """A new session and its clear token, which exists only in this object."""

    session: Session
    token: str


def _lifetime(now: datetime) -> tuple[datetime | None, datetime | None]:
    ttl, max_ttl = tessera_settings.TOKEN_TTL, tessera_settings.MAX_TTL
    expires_at = now + max_ttl if max_ttl else None
    idle_expires_at = now + ttl if ttl else None
    if idle_expires_at and expires_at:
        idle_expires_at = min(idle_expires_at, expires_at)
    return idle_expires_at, expires_at


def create_session(
    user,
    *,
    kind: str = SessionKind.TOKEN,
    request=None,
    device_name: str = "",
    scopes: list[str] | None = None,
) -> IssuedToken:
    """Open a session for ``user`` and mint its opaque token.

    The per-user limit is enforced under a lock on the user's row, so concurrent
    logins queue up and the count cannot be read stale.
    """
    now = timezone.now()
    token = opaque.generate()
    idle_expires_at, expires_at = _lifetime(now)
    with transaction.atomic():
        _enforce_session_limit(user, kind, now)
        session = Session.objects.create(
            user=user,
            kind=kind,
            token_digest=opaque.digest(token),
            device_name=device_name,
            user_agent=user_agent(request) if request is not None else "",
            ip=client_ip(request) if request is not None else None,
            scopes=scopes,
            created_at=now,
            last_used_at=now,
            idle_expires_at=idle_expires_at,
            expires_at=expires_at,
        )
    signals.session_created.send(sender=Session, session=session, request=request)
    return IssuedToken(session=session, token=token)


def _enforce_session_limit(user, kind: str, now: datetime) -> None:
    limit = tessera_settings.TOKEN_LIMIT_PER_USER
    if limit is None or kind == SessionKind.PAT:
        return
    user_model = get_user_model()
    # The lock is what makes "count, then create" safe under concurrent logins.
    list(user_model._default_manager.select_for_update().filter(pk=user.pk).values_list("pk"))
    live = (
        Session.objects.live(now)
        .filter(user=user)
        .exclude(kind=SessionKind.PAT)
        .order_by("last_used_at")
    )
    excess = live.count() - limit + 1
    if excess <= 0:
        return
    if tessera_settings.TOKEN_LIMIT_POLICY == "reject":
        raise SessionLimitReached()
    revoke_sessions(list(live[:excess]), RevokeReason.LIMIT)


def authenticate_token(token: str) -> Session:
    """The hot path: the live Session for a presented opaque token, or an exception.

    Warm cache: no query. Cold: one indexed query. Writes happen only when the session
    is due a last-used update (at most once per MIN_REFRESH_INTERVAL) or is found
    expired for the first time.
    """
    try:
        token_digest = opaque.digest(token)
    except opaque.MalformedToken as exc:
        raise InvalidToken() from exc
    return authenticate_digest(token_digest)


def authenticate_digest(token_digest: str) -> Session:
    """The live Session stored under ``token_digest``; shared by every bearer credential."""
    try:
        return _check_and_touch(token_digest)
    except DatabaseError as exc:
        raise ServiceUnavailable() from exc


def _check_and_touch(token_digest: str) -> Session:
    cached = session_cache.get(token_digest)
    if cached == session_cache.REVOKED:
        raise TokenRevoked()
    session = cached if isinstance(cached, Session) else _load(token_digest)
    now = timezone.now()
    if session.revoked_at is not None:
        raise TokenRevoked()
    if not session.is_live(now):
        _expire(session, now)
        raise TokenExpired()
    if not session.user.is_active:
        raise UserInactive()
    if cached is None:
        session_cache.remember(session)
    if now - session.last_used_at >= tessera_settings.MIN_REFRESH_INTERVAL:
        _touch(session, now)
    return session


def _load(token_digest: str) -> Session:
    try:
        return Session.objects.select_related("user").get(token_digest=token_digest)
    except Session.DoesNotExist as exc:
        raise InvalidToken() from exc


def _touch(session: Session, now: datetime) -> None:
    """Record use and slide the idle expiry; compare-and-set so racing processes write once."""
    idle_expires_at = session.idle_expires_at
    ttl = tessera_settings.TOKEN_TTL
    if tessera_settings.AUTO_REFRESH and ttl and session.kind != SessionKind.PAT:
        idle_expires_at = now + ttl
        if session.expires_at:
            idle_expires_at = min(idle_expires_at, session.expires_at)
    written = Session.objects.filter(
        pk=session.pk, last_used_at=session.last_used_at, revoked_at__isnull=True
    ).update(last_used_at=now, idle_expires_at=idle_expires_at)
    # Written or not, the cached copy is stale now: drop it so the next use reloads.
    session_cache.evict([session.token_digest])
    if written:
        session.last_used_at, session.idle_expires_at = now, idle_expires_at
        signals.session_refreshed.send(sender=Session, session=session)


def _expire(session: Session, now: datetime) -> None:
    """Mark an expired session once, so ``session_expired`` fires exactly once."""
    written = Session.objects.filter(pk=session.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoke_reason=RevokeReason.EXPIRED
    )
    session_cache.tombstone([session.token_digest])
    if written:
        session.revoked_at, session.revoke_reason = now, RevokeReason.EXPIRED
        signals.session_expired.send(sender=Session, session=session)


def revoke_sessions(sessions: Iterable[Session], reason: str) -> int:
    """Revoke the given sessions; returns how many were live until now.

    Tombstones are written at once and again after commit: at once so the caller's own
    next request is refused, after commit so a concurrent reader that loaded the row
    before the commit cannot leave a live copy behind.
    """
    sessions = list(sessions)
    if not sessions:
        return 0
    now = timezone.now()
    ids = [s.pk for s in sessions]
    digests = [s.token_digest for s in sessions]
    written = Session.objects.filter(pk__in=ids, revoked_at__isnull=True).update(
        revoked_at=now, revoke_reason=reason
    )
    session_cache.tombstone(digests)
    transaction.on_commit(lambda: session_cache.tombstone(digests))
    for session in sessions:
        if session.revoked_at is None:
            session.revoked_at, session.revoke_reason = now, reason
            signals.session_revoked.send(sender=Session, session=session, reason=reason)
    return written


def revoke_user_sessions(user, reason: str, *, keep: Session | None = None) -> int:
    """Revoke every live session of ``user`` (but ``keep``), whatever its kind."""
    sessions = Session.objects.live().filter(user=user)
    if keep is not None:
        sessions = sessions.exclude(pk=keep.pk)
    return revoke_sessions(sessions.only("pk", "token_digest", "user_id", "revoked_at"), reason)


def forget_cached_user(user) -> None:
    """Make the next request of each of the user's sessions reload the user row."""
    digests = Session.objects.live().filter(user=user).values_list("token_digest", flat=True)
    session_cache.evict(list(digests))
