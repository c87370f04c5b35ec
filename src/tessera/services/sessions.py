"""Sessions: open one per login, find one by token on every request, revoke them.

This module is the only code that writes Session rows. :func:`open_session` is the one
place a session is born, whatever its kind; the login flows decide whether and when to
call it (a second factor may stand between the password and the session).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.contrib.auth import get_user_model, user_logged_in
from django.db import DatabaseError, transaction
from django.utils import timezone
from rest_framework import exceptions

from .. import session_cache, signals
from ..conf import tessera_settings
from ..errors import (
    InvalidToken,
    ServiceUnavailable,
    SessionLimitReached,
    TokenExpired,
    TokenRevoked,
    UserInactive,
)
from ..models import LoginTicket, RevokeReason, Session, SessionKind
from ..tokens import jwt as jwt_codec
from ..tokens import opaque
from ..tokens.external import ExternalToken
from .client import client_ip, user_agent

SLIDING_ON_USE = (SessionKind.TOKEN, SessionKind.BROWSER)


@dataclass(frozen=True)
class IssuedToken:
    """A new session and its clear token, which exists only in this object.

    ``token`` is empty for JWT sessions: their credentials are the JWTs that
    :mod:`tessera.services.jwt` signs.
    """

    session: Session
    token: str


# The default of open_session's lifetimes: TOKEN_TTL, MAX_TTL and the kind decide.
LIFETIME_FROM_SETTINGS: Any = object()
# The default of open_session's auth_time: now for a login, None otherwise.
AUTH_TIME_OF_LOGIN: Any = object()

T = TypeVar("T")


def idle_ttl(kind: str) -> timedelta | None:
    """How long a session of ``kind`` may sit unused.

    A JWT session lives as long as its refresh token, which each rotation renews; a
    personal access token has only the absolute expiry its owner chose.
    """
    if kind == SessionKind.JWT:
        return tessera_settings.JWT_REFRESH_LIFETIME
    if kind == SessionKind.PAT:
        return None
    return tessera_settings.TOKEN_TTL


def _lifetime(
    now: datetime, kind: str, idle: timedelta | None, expires_at: datetime | None
) -> tuple[datetime | None, datetime | None]:
    if expires_at is LIFETIME_FROM_SETTINGS:
        max_ttl = tessera_settings.MAX_TTL
        expires_at = now + max_ttl if max_ttl else None
        default_idle = idle_ttl(kind)
    else:
        # A lifetime the user chose (personal access tokens) does not also idle out.
        default_idle = None
    if idle is LIFETIME_FROM_SETTINGS:
        idle = default_idle
    idle_expires_at = now + idle if idle else None
    if idle_expires_at and expires_at:
        idle_expires_at = min(idle_expires_at, expires_at)
    return idle_expires_at, expires_at


def issue_opaque_token(session: Session, token: str) -> IssuedToken:
    """The first credential of an opaque-token session: the token itself."""
    return IssuedToken(session=session, token=token)


def open_session(
    user,
    *,
    kind: str = SessionKind.TOKEN,
    request=None,
    device_name: str = "",
    scopes: list[str] | None = None,
    expires_at: datetime | None = LIFETIME_FROM_SETTINGS,
    idle_lifetime: timedelta | None = LIFETIME_FROM_SETTINGS,
    issue: Callable[[Session, str], T] = issue_opaque_token,
    is_login: bool = True,
    amr: Sequence[str] = ("pwd",),
    mfa_enrolment_required: bool = False,
    lookup_digest: str | None = None,
    auth_time: datetime | None = AUTH_TIME_OF_LOGIN,
    provider: str = "",
    device_key: str = "",
) -> T:
    """Open a session for ``user`` together with its first credential; the only birth of one.

    Everything happens in one transaction: the per-user limit, the row, ``issue`` (which
    writes and returns the credential the client gets, e.g. the first refresh token)
    and the signals. If any of them raises, no session and no credential remain, so a
    failed login never counts against TOKEN_LIMIT_PER_USER.

    ``issue`` receives the session and, for opaque kinds, the clear token (which exists
    only in memory); JWT sessions get ``""`` and sign their own tokens. ``expires_at``
    fixes the absolute expiry (None: never) for credentials whose lifetime the user
    chose; ``idle_lifetime`` replaces the kind's idle lifetime. ``is_login`` is False
    for credentials minted by an already signed-in user (personal access tokens): they
    send ``session_created`` but not Django's ``user_logged_in``, and have no
    ``auth_time``. ``amr`` says how the user proved who they are (RFC 8176 values);
    ``mfa_enrolment_required`` opens a session that may only set up a second factor
    (MFA_REQUIRED, see :mod:`tessera.services.mfa.factors`). An external issuer's
    token (kind ``external``) is its own credential: ``lookup_digest`` is where it finds
    its session, and ``auth_time`` None says Tessera cannot vouch for when its user
    last proved who they are. ``provider`` names the SOCIAL_PROVIDERS entry of a social
    sign-in. ``device_key`` is the key of the known device logging in (see
    :mod:`tessera.services.devices`); a login from any other device starts a device of
    its own, keyed by this session's id.
    """
    if (kind == SessionKind.EXTERNAL) != (lookup_digest is not None):
        raise ValueError("lookup_digest is given for, and only for, an external session.")
    now = timezone.now()
    if auth_time is AUTH_TIME_OF_LOGIN:
        auth_time = now if is_login else None
    session_id = uuid.uuid4()
    if kind == SessionKind.JWT:
        # The client gets signed JWTs instead (tessera.services.jwt); the session is
        # found through its id, under the same index and cache as opaque tokens.
        token, token_digest = "", jwt_codec.session_lookup_digest(session_id)
    elif kind == SessionKind.EXTERNAL:
        token, token_digest = "", lookup_digest
    else:
        token = opaque.generate()
        token_digest = opaque.digest(token)
    idle_expires_at, expires_at = _lifetime(now, kind, idle_lifetime, expires_at)
    with transaction.atomic():
        _enforce_session_limit(user, kind, now)
        session = Session.objects.create(
            id=session_id,
            user=user,
            kind=kind,
            token_digest=token_digest,
            device_name=device_name,
            user_agent=user_agent(request) if request is not None else "",
            ip=client_ip(request) if request is not None else None,
            scopes=scopes,
            created_at=now,
            last_used_at=now,
            idle_expires_at=idle_expires_at,
            expires_at=expires_at,
            amr=list(amr),
            auth_time=auth_time,
            mfa_enrolment_required=mfa_enrolment_required,
            provider=provider,
            device_key=device_key or (str(session_id) if is_login else ""),
        )
        issued = issue(session, token)
        signals.session_created.send(sender=Session, session=session, request=request)
        if is_login:
            # tessera=True: receivers of Django's own logins (services.django_logins)
            # know this login already has its session.
            user_logged_in.send(sender=user.__class__, request=request, user=user, tessera=True)
    return issued


def record_rotation(session: Session, now: datetime, idle_expires_at: datetime | None) -> None:
    """A JWT refresh rotated: the session was used now and idles out with the new token."""
    Session.objects.filter(pk=session.pk).update(last_used_at=now, idle_expires_at=idle_expires_at)
    session.last_used_at, session.idle_expires_at = now, idle_expires_at


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


def authenticate_digest(token_digest: str, *, remember_unknown: bool = True) -> Session:
    """The live Session stored under ``token_digest``; shared by every bearer credential.

    ``remember_unknown`` False for a credential that opens its session on first sight
    (an external issuer's token): an unknown digest remembered then would hide the
    session it is about to open.
    """
    try:
        return _check_and_touch(token_digest, remember_unknown)
    except DatabaseError as exc:
        raise ServiceUnavailable() from exc


def _check_and_touch(token_digest: str, remember_unknown: bool) -> Session:
    cached = session_cache.get(token_digest)
    if cached == session_cache.REVOKED:
        raise TokenRevoked()
    if cached == session_cache.UNKNOWN:
        raise InvalidToken()
    now = timezone.now()
    session = cached if isinstance(cached, Session) else None  # None, or CHANGED: reload
    if session is None or not session.is_live(now):
        # A cached copy can predate a rotation or a use that moved the expiry forward:
        # only the row may decide that a session has expired.
        session = _load(token_digest, remember_unknown)
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


def _load(token_digest: str, remember_unknown: bool) -> Session:
    try:
        # The password hash stays out of the shared cache; nothing on this path reads it.
        return (
            Session.objects.select_related("user")
            .defer("user__password")
            .get(token_digest=token_digest)
        )
    except Session.DoesNotExist as exc:
        if remember_unknown:
            session_cache.remember_unknown(token_digest)
        raise InvalidToken() from exc


def _touch(session: Session, now: datetime) -> None:
    """Record use and slide the idle expiry; compare-and-set so racing processes write once."""
    idle_expires_at = session.idle_expires_at
    ttl = tessera_settings.TOKEN_TTL
    # JWT sessions slide when their refresh token rotates, not when an access token is used.
    if tessera_settings.AUTO_REFRESH and ttl and session.kind in SLIDING_ON_USE:
        idle_expires_at = now + ttl
        if session.expires_at:
            idle_expires_at = min(idle_expires_at, session.expires_at)
    # The cached copy is stale from here on. Dropping it before the write matters: a
    # revocation that commits after the write tombstones after this, never before. With
    # the cache down the drop waits in the outbox: the request itself must not fail.
    with session_cache.failures_recorded():
        session_cache.evict([session.token_digest])
    written = Session.objects.filter(
        pk=session.pk, last_used_at=session.last_used_at, revoked_at__isnull=True
    ).update(last_used_at=now, idle_expires_at=idle_expires_at)
    if written:
        session.last_used_at, session.idle_expires_at = now, idle_expires_at
        signals.session_refreshed.send(sender=Session, session=session)
    elif Session.objects.filter(pk=session.pk, revoked_at__isnull=False).exists():
        # Revoked meanwhile: the eviction may have removed its tombstone; put it back.
        session_cache.tombstone([session.token_digest])


def _expire(session: Session, now: datetime) -> None:
    """Mark an expired session once, so ``session_expired`` fires exactly once."""
    written = Session.objects.filter(pk=session.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoke_reason=RevokeReason.EXPIRED
    )
    # The client is told its session expired either way: a failed write waits in the
    # outbox rather than turning that answer into a 503.
    with session_cache.failures_recorded():
        session_cache.tombstone([session.token_digest])
    if written:
        session.revoked_at, session.revoke_reason = now, RevokeReason.EXPIRED
        signals.session_expired.send(sender=Session, session=session)


def session_of(request) -> Session | None:
    """The Session behind this request's credential, whatever the credential kind.

    With ``JWT_REVOCATION_CHECK`` off, ``request.auth`` is the token's claims rather than
    the Session; logout must still find the session to end it. An external issuer's
    token names its session when its entry opened one.
    """
    auth = getattr(request, "auth", None)
    if isinstance(auth, ExternalToken):
        return auth.session
    if isinstance(auth, Session):
        return auth
    if isinstance(auth, dict) and isinstance(auth.get("sid"), str):
        try:
            return Session.objects.get(pk=uuid.UUID(auth["sid"]), user=request.user)
        except (ValueError, Session.DoesNotExist):
            return None
    return None


def revoke_sessions(sessions: Iterable[Session], reason: str) -> int:
    """Revoke the given sessions; returns how many were live until now.

    Tombstones are written before the revocation commits and again after. Before: if
    the cache cannot take them, an HTTP caller's revocation rolls back and answers 503,
    so a revocation never commits while caches anywhere may still hold the live session
    (callers with nobody to retry, inside :func:`session_cache.failures_recorded`,
    commit with the tombstones in the outbox instead). After: a concurrent reader that
    loaded the row before the commit cannot leave a live copy behind.
    """
    sessions = list(sessions)
    if not sessions:
        return 0
    now = timezone.now()
    ids = [s.pk for s in sessions]
    digests = [s.token_digest for s in sessions]
    with transaction.atomic():
        written = Session.objects.filter(pk__in=ids, revoked_at__isnull=True).update(
            revoked_at=now, revoke_reason=reason
        )
        session_cache.tombstone(digests)
        session_cache.tombstone_on_commit(digests)
        for session in sessions:
            if session.revoked_at is None:
                session.revoked_at, session.revoke_reason = now, reason
                signals.session_revoked.send(sender=Session, session=session, reason=reason)
    return written


def revoke_own_session(user, session_id: str, reason: str, *, kind: str | None = None) -> None:
    """Revoke one of ``user``'s sessions by id; an id that is not theirs is NotFound.

    Idempotent: a session already revoked is tombstoned again, so a retry after a failed
    cache write (503) finishes the revocation instead of answering 404.
    """
    sessions = Session.objects.filter(user=user)
    if kind is not None:
        sessions = sessions.filter(kind=kind)
    try:
        session = sessions.get(pk=uuid.UUID(session_id))
    except (ValueError, Session.DoesNotExist) as exc:
        raise exceptions.NotFound("No such session.") from exc
    revoke_sessions([session], reason)


def revoke_user_sessions(user, reason: str, *, keep: Session | None = None) -> int:
    """Revoke every live session of ``user`` (but ``keep``), whatever its kind.

    Logins waiting for their second factor end too: after a password change or reset,
    someone who had the old password must not finish one.
    """
    LoginTicket.objects.filter(user=user, used_at__isnull=True).update(used_at=timezone.now())
    sessions = Session.objects.live().filter(user=user)
    if keep is not None:
        sessions = sessions.exclude(pk=keep.pk)
    return revoke_sessions(sessions.only("pk", "token_digest", "user_id", "revoked_at"), reason)


def forget_deleted_user(user) -> None:
    """Tombstone a user's sessions before the rows go: a cached copy must not outlive them."""
    digests = Session.objects.filter(user=user).values_list("token_digest", flat=True)
    session_cache.tombstone(list(digests))
    session_cache.replay_on_commit()


def forget_cached_user(user) -> None:
    """Make the next request of each of the user's sessions reload the user row."""
    digests = list(Session.objects.live().filter(user=user).values_list("token_digest", flat=True))
    _forget_cached(digests)
    # Inside a transaction (the admin's, ATOMIC_REQUESTS) others still read the old row
    # until it commits; this keeps their copies out once it has.
    session_cache.settle_on_commit(digests)


def update_live_sessions(sessions: Iterable[Session], **fields: Any) -> int:
    """Change fields that cached copies carry (``auth_time``, ``amr``…) on live sessions.

    As with a revocation, the cached copies are dropped inside the caller's transaction
    (an HTTP caller's change rolls back with 503 when the cache cannot take it), and once
    it commits they are kept out for a moment, so a reader that loaded the row meanwhile
    leaves no stale copy (see :func:`session_cache.settle_on_commit`).
    """
    sessions = list(sessions)
    if not sessions:
        return 0
    digests = [session.token_digest for session in sessions]
    with transaction.atomic():
        written = Session.objects.filter(
            pk__in=[session.pk for session in sessions], revoked_at__isnull=True
        ).update(**fields)
        _forget_cached(digests)
        session_cache.settle_on_commit(digests)
    return written


def _forget_cached(digests: list[str]) -> None:
    session_cache.evict(digests)
    # A revocation that landed between the caller's query and the eviction lost its
    # tombstone.
    session_cache.tombstone_revoked(digests)


# Sessions carried over from other token libraries (see tessera.legacy).


def import_sessions(sessions: list[Session]) -> int:
    """Store sessions built for credentials another library issued; returns how many are new.

    A digest that is already stored is left as it is, live or revoked, so running an
    import twice creates no duplicates and never revives a session revoked meanwhile.
    No ``session_created`` signal: an import is not a login.
    """
    if not sessions:
        return 0
    Session.objects.bulk_create(sessions, ignore_conflicts=True)
    # The old clients may have presented these tokens already and had them remembered
    # as unknown.
    with session_cache.failures_recorded():
        session_cache.evict([session.token_digest for session in sessions])
    return Session.objects.filter(pk__in=[session.pk for session in sessions]).count()
