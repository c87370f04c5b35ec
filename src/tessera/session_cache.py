"""The shared cache in front of the Session table, keyed by token digest.

An entry is the Session with its user attached, so a warm lookup costs no query.

- A read error is logged and answered as a miss: the database stays the authority, so
  a broken cache slows requests down but never lets one through that the database
  would refuse.
- Revocation writes a tombstone rather than deleting, and entries are only ever added
  with ``add`` (set-if-absent). A request that read the row just before the revocation
  committed therefore cannot put the live session back afterwards.
- A failed tombstone write is not passed over: the caller's change is in the database
  already, the client gets 503 and its retry writes the tombstone again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.cache import caches
from django.utils import timezone

from .conf import tessera_settings
from .errors import ServiceUnavailable
from .models import Session

logger = logging.getLogger("tessera")
KEY_PREFIX = "tessera:session:"
REVOKED = "revoked"


def _cache():
    return caches[tessera_settings.CACHE_ALIAS]


def _key(token_digest: str) -> str:
    return KEY_PREFIX + token_digest


def get(token_digest: str) -> Session | str | None:
    """The cached Session, :data:`REVOKED`, or None when the database must answer."""
    try:
        return _cache().get(_key(token_digest))
    except Exception:
        logger.warning("Session cache read failed; using the database.", exc_info=True)
        return None


def remember(session: Session) -> None:
    timeout = tessera_settings.CACHE_TIMEOUT.total_seconds()
    expiry = session.expiry()
    if expiry is not None:
        timeout = min(timeout, (expiry - timezone.now()).total_seconds())
    if timeout < 1 or not session.token_digest:
        return
    try:
        _cache().add(_key(session.token_digest), session, int(timeout))
    except Exception:
        logger.warning("Session cache write failed.", exc_info=True)


def evict(token_digests: Iterable[str | None]) -> None:
    """Drop live entries whose data changed (last used, user fields); next use reloads."""
    keys = [_key(d) for d in token_digests if d]
    if not keys:
        return
    try:
        _cache().delete_many(keys)
    except Exception as exc:
        logger.error("Session cache delete failed.", exc_info=True)
        raise ServiceUnavailable() from exc


def tombstone(token_digests: Iterable[str | None]) -> None:
    """Mark sessions revoked in the cache so every process refuses them at once."""
    entries = {_key(d): REVOKED for d in token_digests if d}
    if not entries:
        return
    try:
        _cache().set_many(entries, int(tessera_settings.CACHE_TIMEOUT.total_seconds()))
    except Exception as exc:
        logger.error("Session cache tombstone write failed; revocation may lag.", exc_info=True)
        raise ServiceUnavailable() from exc
