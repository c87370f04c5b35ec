"""JWT sessions: login, access tokens, refresh rotation with reuse detection, sliding tokens.

A JWT login is one Session of kind ``jwt``. Its refresh tokens form a chain inside it
(:class:`tessera.models.RefreshToken`): every refresh rotates, and a rotated token that
comes back after the grace window revokes the whole session, because either the client
or a thief holds a copy it should not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions

from .. import session_cache, signals
from ..conf import tessera_settings
from ..errors import (
    InvalidToken,
    ServiceUnavailable,
    TokenExpired,
    TokenReused,
    TokenRevoked,
    UserInactive,
    WrongTokenType,
)
from ..models import RefreshToken, RevokeReason, Session, SessionKind
from ..tokens import jwt as codec
from . import sessions as session_service


@dataclass(frozen=True)
class TokenPair:
    session: Session
    access: str
    refresh: str


@dataclass(frozen=True)
class SlidingToken:
    session: Session
    token: str


# The codec's reasons, as the errors the client sees.
CODEC_ERRORS = {
    InvalidToken.default_code: InvalidToken,
    WrongTokenType.default_code: WrongTokenType,
    TokenExpired.default_code: TokenExpired,
}


def _invalid(error: codec.InvalidJWT) -> exceptions.AuthenticationFailed:
    return CODEC_ERRORS.get(error.code, InvalidToken)(str(error))


def decode(token: str, token_types: tuple[str, ...], *, verify_exp: bool = True) -> dict:
    try:
        return codec.decode(token, token_types=token_types, verify_exp=verify_exp)
    except codec.InvalidJWT as error:
        raise _invalid(error) from error


def _cap(session: Session, moment: datetime) -> datetime:
    """No token outlives its session's absolute expiry."""
    return min(moment, session.expires_at) if session.expires_at else moment


def _identity(session: Session) -> dict[str, str]:
    return {"sub": str(session.user_id), "sid": str(session.pk)}


# How the session was authenticated, in access and sliding tokens: a copy as of the
# token's issue. Step-up checks read the Session row, which reauthenticate/ renews.
AUTHENTICATION_CLAIMS = ("amr", "auth_time", "mfa_enrolment_required")


def _authentication(session: Session) -> dict:
    claims: dict = {"amr": list(session.amr or [])}
    if session.auth_time is not None:
        claims["auth_time"] = int(session.auth_time.timestamp())
    if session.mfa_enrolment_required:
        claims["mfa_enrolment_required"] = True
    return claims


def _custom_claims(session: Session) -> dict:
    hook = tessera_settings.JWT_CLAIMS_HOOK
    if not hook:
        return {}
    claims = import_string(hook)(session.user, session)
    reserved = (*codec.REGISTERED_CLAIMS, *AUTHENTICATION_CLAIMS)
    return {k: v for k, v in claims.items() if k not in reserved}


def issue_access(session: Session, now: datetime) -> str:
    return codec.encode(
        {**_custom_claims(session), **_authentication(session), **_identity(session)},
        token_type=codec.ACCESS,
        issued_at=now,
        expires_at=_cap(session, now + tessera_settings.JWT_ACCESS_LIFETIME),
    )


def _encode_refresh(session: Session, row: RefreshToken, jti: str) -> str:
    # Every claim comes from the stored row, so the same token can be issued again.
    return codec.encode(
        _identity(session),
        token_type=codec.REFRESH,
        issued_at=row.created_at,
        expires_at=row.expires_at,
        jti=jti,
    )


def open_pair_session(
    request,
    user,
    device_name: str = "",
    *,
    amr: Sequence[str] = ("pwd",),
    mfa_enrolment_required: bool = False,
    provider: str = "",
    device_key: str = "",
) -> TokenPair:
    """A JWT login: the session, its first refresh token and an access token, atomically.

    The claims hook runs inside the session's transaction: if it raises, no session and
    no refresh row are left for a pair the client never received. ``amr`` and
    ``mfa_enrolment_required`` are :func:`~tessera.services.sessions.open_session`'s.
    """

    def first_pair(session: Session, _token: str) -> TokenPair:
        now = session.created_at
        jti = codec.new_jti()
        row = RefreshToken.objects.create(
            session=session,
            jti_digest=codec.jti_digest(jti),
            created_at=now,
            expires_at=session.expiry(),
        )
        return TokenPair(session, issue_access(session, now), _encode_refresh(session, row, jti))

    return session_service.open_session(
        user,
        kind=SessionKind.JWT,
        request=request,
        device_name=device_name,
        issue=first_pair,
        amr=amr,
        mfa_enrolment_required=mfa_enrolment_required,
        provider=provider,
        device_key=device_key,
    )


def open_sliding_session(
    request,
    user,
    device_name: str = "",
    *,
    amr: Sequence[str] = ("pwd",),
    mfa_enrolment_required: bool = False,
    provider: str = "",
    device_key: str = "",
) -> SlidingToken:
    """A sliding-token login; the session ends when its token can no longer be refreshed."""

    def first_token(session: Session, _token: str) -> SlidingToken:
        return SlidingToken(
            session, _encode_sliding(session, session.created_at, session.idle_expires_at)
        )

    return session_service.open_session(
        user,
        kind=SessionKind.JWT,
        request=request,
        device_name=device_name,
        idle_lifetime=tessera_settings.JWT_SLIDING_REFRESH_LIFETIME,
        issue=first_token,
        amr=amr,
        mfa_enrolment_required=mfa_enrolment_required,
        provider=provider,
        device_key=device_key,
    )


def rotate(refresh_token: str, request=None) -> TokenPair:
    """Exchange a refresh token for a new pair; see the module docstring for reuse.

    The token's row is locked for the whole decision, so concurrent refreshes of one
    token queue: the first mints the successor, the others (inside the grace window)
    receive that same successor.
    """
    claims = decode(refresh_token, (codec.REFRESH,))
    try:
        with transaction.atomic():
            row, successor, successor_jti = _rotate_locked(claims)
    except DatabaseError as exc:
        raise ServiceUnavailable() from exc
    session = row.session
    if successor is None:
        # Nobody retries a reuse: the revocation commits even if the cache is down.
        with session_cache.failures_recorded():
            session_service.revoke_sessions([session], RevokeReason.TOKEN_REUSED)
        signals.refresh_token_reused.send(sender=Session, session=session, request=request)
        raise TokenReused()
    # The cached copy keeps its older idle expiry: harmless, because an expiry found in
    # a cached copy is checked against the row. Not evicting it also means a rotation can
    # never delete the tombstone of a logout that raced it.
    now = timezone.now()
    return TokenPair(
        session, issue_access(session, now), _encode_refresh(session, successor, successor_jti)
    )


def _rotate_locked(claims: dict) -> tuple[RefreshToken, RefreshToken | None, str]:
    try:
        row = (
            RefreshToken.objects.select_for_update(of=("self",))
            .select_related("session__user")
            .get(jti_digest=codec.jti_digest(claims["jti"]))
        )
    except RefreshToken.DoesNotExist as exc:
        raise InvalidToken() from exc
    session, now = row.session, timezone.now()
    if str(session.pk) != claims["sid"]:
        raise InvalidToken()
    if session.revoked_at is not None:
        raise TokenRevoked()
    if not session.is_live(now):
        raise TokenExpired()
    if not session.user.is_active:
        raise UserInactive()
    successor_jti = codec.successor_jti(claims["jti"])
    if row.rotated_at is None:
        successor = RefreshToken.objects.create(
            session=session,
            parent=row,
            jti_digest=codec.jti_digest(successor_jti),
            created_at=now,
            expires_at=_cap(session, now + tessera_settings.JWT_REFRESH_LIFETIME),
        )
        row.rotated_at = now
        row.save(update_fields=["rotated_at"])
        session_service.record_rotation(session, now, successor.expires_at)
        return row, successor, successor_jti
    if now - row.rotated_at <= tessera_settings.JWT_REUSE_GRACE:
        successor = RefreshToken.objects.filter(parent=row, rotated_at__isnull=True).first()
        return row, successor, successor_jti
    return row, None, successor_jti


def authenticate_access(token: str):
    """``(user, auth)`` for an access or sliding token.

    With the revocation check (the default) ``auth`` is the live Session, found through
    the same cache as opaque tokens: no query warm, one cold. Without it the signature
    and expiry are trusted, the user is loaded by id, and ``auth`` is the claims dict.
    """
    claims = decode(token, (codec.ACCESS, codec.SLIDING))
    if not tessera_settings.JWT_REVOCATION_CHECK:
        return _user_from_claims(claims), claims
    session = _live_session(claims)
    # For this request only (the instance is a fresh copy): JWT_ROLES_CLAIM reads it.
    session.jwt_claims = claims
    return session.user, session


def _live_session(claims: dict) -> Session:
    """The live JWT session a token names; a token naming another kind or user is invalid."""
    session = session_service.authenticate_digest(codec.session_lookup_digest(claims["sid"]))
    if session.kind != SessionKind.JWT or str(session.user_id) != claims["sub"]:
        raise InvalidToken()
    return session


def _user_from_claims(claims: dict):
    user_model = get_user_model()
    try:
        user = user_model._default_manager.get(pk=claims["sub"])
    except (user_model.DoesNotExist, ValueError) as exc:
        raise InvalidToken() from exc
    except DatabaseError as exc:
        raise ServiceUnavailable() from exc
    if not user.is_active:
        raise UserInactive()
    return user


def verify(token: str) -> None:
    """Raise unless ``token`` is valid now, its session live and, for refresh, unrotated."""
    claims = decode(token, (codec.ACCESS, codec.REFRESH, codec.SLIDING))
    _live_session(claims)
    if claims["token_type"] == codec.REFRESH:
        unrotated = RefreshToken.objects.filter(
            jti_digest=codec.jti_digest(claims["jti"]), rotated_at__isnull=True
        )
        if not unrotated.exists():
            raise TokenRevoked()


def refresh_sliding(token: str) -> SlidingToken:
    claims = decode(token, (codec.SLIDING,), verify_exp=False)
    refresh_until = claims.get("refresh_exp")
    now = timezone.now()
    if not isinstance(refresh_until, int) or refresh_until <= now.timestamp():
        raise TokenExpired(_("Token can no longer be refreshed."))
    session = _live_session(claims)
    refresh_at = datetime.fromtimestamp(refresh_until, tz=UTC)
    return SlidingToken(session, _encode_sliding(session, now, refresh_at))


def _encode_sliding(session: Session, now: datetime, refresh_until: datetime) -> str:
    return codec.encode(
        {
            **_custom_claims(session),
            **_authentication(session),
            **_identity(session),
            "refresh_exp": int(refresh_until.timestamp()),
        },
        token_type=codec.SLIDING,
        issued_at=now,
        expires_at=min(now + tessera_settings.JWT_SLIDING_LIFETIME, refresh_until),
    )
