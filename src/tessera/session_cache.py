"""The shared cache in front of the Session table, keyed by token digest.

An entry is the Session with its user attached, so a warm lookup costs no query.

- A read error is logged and answered as a miss: the database stays the authority, so
  a broken cache slows requests down but never lets one through that the database
  would refuse.
- Revocation writes a tombstone rather than deleting, and entries are only ever added
  with ``add`` (set-if-absent). A request that read the row just before the revocation
  committed therefore cannot put the live session back afterwards.
- A failed tombstone or eviction is never lost. It is recorded in the outbox
  (:class:`~tessera.models.PendingCacheInvalidation`) in the transaction of the change
  that needed it, and replayed once the cache answers again. An HTTP caller still gets
  503 so its client retries; code that cannot retry (signal receivers run by the admin,
  management commands, task workers) runs inside :func:`failures_recorded` and goes on.
- A process where a cache read or write failed, or an invalidation failed that no client
  will retry, or whose near cache lost its invalidation connection, does not trust a
  cache hit again until a replay has emptied the outbox: until then the database
  answers. Processes that saw no failure cannot know about it without a query per
  request; docs/caching.md says how long they may serve a stale entry.
- With Redis, each process also keeps what it read in a near cache
  (:mod:`tessera.near_cache`) that Redis invalidates on every change of an entry, so a
  warm lookup costs no round trip either.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.db import DatabaseError, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from .conf import tessera_settings
from .errors import ServiceUnavailable
from .models import CacheInvalidation, PendingCacheInvalidation, Session
from .near_cache import NearCache

logger = logging.getLogger("tessera")
KEY_PREFIX = "tessera:session:"
REVOKED = "revoked"
# A well-formed credential that matches no session, remembered so a repeat costs no query.
UNKNOWN = "unknown"
# A session whose user just changed: lookups go to the database while it lasts, and a
# reader still holding the row from before the change cannot add its copy back.
CHANGED = "changed"
CHANGED_TIMEOUT = 10
REPLAY_BATCH = 500

_raise_on_failure: ContextVar[bool] = ContextVar("tessera_cache_raise", default=True)


class FailureLog:
    """Whether this process may trust cache hits: none failed since the last full replay.

    A replay only counts for failures noted before it started: one that happens while it
    runs (in another thread) may belong to an outbox row the replay did not see.
    """

    def __init__(self, *, replay_due: bool = False) -> None:
        self._lock = threading.Lock()
        self._failures = 1 if replay_due else 0
        self._replayed_through = 0

    @property
    def replay_due(self) -> bool:
        return self._failures > self._replayed_through

    def note_failure(self) -> None:
        with self._lock:
            self._failures += 1

    def replay_started(self) -> int:
        return self._failures

    def replayed(self, started_at: int) -> None:
        with self._lock:
            self._replayed_through = max(self._replayed_through, started_at)


# A process starts as one that may have missed invalidations: those recorded in the
# outbox before it started, while Redis was away and came back with its saved entries.
# Its first lookup replays the outbox (one query when it is empty), and so does a forked
# child's.
_failure_log = FailureLog(replay_due=True)


def _start_after_fork() -> None:
    global _failure_log
    _failure_log = FailureLog(replay_due=True)


os.register_at_fork(after_in_child=_start_after_fork)


def _cache():
    return caches[tessera_settings.CACHE_ALIAS]


def _key(token_digest: str) -> str:
    return KEY_PREFIX + token_digest


@contextmanager
def failures_recorded() -> Iterator[None]:
    """Within this block a failed invalidation is recorded in the outbox, not raised.

    For callers with nobody to answer 503 to: the outbox makes the invalidation durable,
    and raising would only abort the caller's work (a ``user.save()`` in the admin).
    """
    token = _raise_on_failure.set(False)
    try:
        yield
    finally:
        _raise_on_failure.reset(token)


def get(token_digest: str) -> Session | str | None:
    """The cached Session, :data:`REVOKED`, :data:`UNKNOWN`, or None: ask the database.

    A Session is the caller's own copy: it may be changed without touching the cache.
    """
    near = near_cache()
    value, ticket = near.lookup(token_digest) if near is not None else (None, None)
    # After the lookup, which is where a dropped invalidation connection is noticed.
    if _failure_log.replay_due and not replay_pending():
        # An invalidation may still be missing from the cache.
        return None
    if value is not None:
        return _private_copy(value)
    try:
        value = _cache().get(_key(token_digest))
    except Exception:
        _failure_log.note_failure()
        logger.warning("Session cache read failed; using the database.", exc_info=True)
        return None
    if ticket is not None and value is not None:
        near.store(token_digest, value, ticket)
        return _private_copy(value)
    return value


def _private_copy(value):
    """A Session and its user that requests may change without changing the cached ones.

    Shallow copies of each instance's fields suffice: a cached session's field values
    are immutable (strings, numbers, datetimes, UUIDs) but for ``scopes``, which nothing
    mutates in place.
    """
    if not isinstance(value, Session):
        return value
    session = _copy_instance(value)
    session._state.fields_cache = {"user": _copy_instance(value.user)}
    return session


def _copy_instance(instance):
    state = ModelState.__new__(ModelState)
    state.__dict__ = {**instance._state.__dict__, "fields_cache": {}}
    clone = instance.__class__.__new__(instance.__class__)
    clone.__dict__ = {**instance.__dict__, "_state": state}
    return clone


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
        _failure_log.note_failure()
        logger.warning("Session cache write failed.", exc_info=True)


def remember_unknown(token_digest: str) -> None:
    timeout = int(tessera_settings.UNKNOWN_TOKEN_CACHE_TIMEOUT.total_seconds())
    if timeout < 1:
        return
    try:
        _cache().add(_key(token_digest), UNKNOWN, timeout)
    except Exception:
        _failure_log.note_failure()
        logger.warning("Session cache write failed.", exc_info=True)


def evict(token_digests: Iterable[str | None]) -> None:
    """Drop live entries whose data changed (last used, user fields); next use reloads."""
    digests = [d for d in token_digests if d]
    if not digests:
        return
    try:
        _write(CacheInvalidation.EVICT, digests)
    except Exception as exc:
        logger.error("Session cache delete failed; recorded for replay.", exc_info=True)
        _record_failure(CacheInvalidation.EVICT, digests, exc)


def tombstone(token_digests: Iterable[str | None]) -> None:
    """Mark sessions revoked in the cache so every process refuses them at once."""
    digests = [d for d in token_digests if d]
    if not digests:
        return
    try:
        _write(CacheInvalidation.TOMBSTONE, digests)
    except Exception as exc:
        logger.error("Session cache tombstone write failed; recorded for replay.", exc_info=True)
        _record_failure(CacheInvalidation.TOMBSTONE, digests, exc)


def tombstone_revoked(token_digests: Iterable[str | None]) -> None:
    """Tombstone those of these sessions revoked by now: after a deletion of their entries,
    which may have erased a racing revocation's tombstone."""
    digests = [d for d in token_digests if d]
    if digests:
        revoked = Session.objects.filter(token_digest__in=digests, revoked_at__isnull=False)
        tombstone(list(revoked.values_list("token_digest", flat=True)))


def tombstone_on_commit(token_digests: Iterable[str | None]) -> None:
    """Tombstone again once the caller's transaction commits, then replay the outbox.

    Again, because a reader that loaded the row before the commit may have cached it
    live meanwhile. A failure here is recorded, never raised: the revocation has
    committed, so there is nothing left for a retry to do.
    """
    digests = [d for d in token_digests if d]

    def settle() -> None:
        with failures_recorded():
            tombstone(digests)

    if digests:
        # robust: with the database failing too, the commit that has already happened
        # must not be reported as a failure of the caller's work.
        transaction.on_commit(settle, robust=True)
    replay_on_commit()


def settle_on_commit(token_digests: Iterable[str | None]) -> None:
    """Once the caller's transaction commits, mark these sessions :data:`CHANGED` for a moment.

    Deleting their entries before the commit is not enough: a request that read the old
    row meanwhile would add its stale copy after the commit, and nothing would remove it.
    The marker makes such an add fail (entries are only added if absent) for longer than a
    request takes between its read and its add. A session revoked by then is tombstoned
    instead. Failures are recorded, never raised: the change has committed.
    """
    digests = [d for d in token_digests if d]

    def settle() -> None:
        with failures_recorded():
            try:
                _cache().set_many({_key(d): CHANGED for d in digests}, CHANGED_TIMEOUT)
            except Exception as exc:
                logger.error("Session cache write failed; recorded for replay.", exc_info=True)
                _record_failure(CacheInvalidation.EVICT, digests, exc)
            tombstone_revoked(digests)

    if digests:
        transaction.on_commit(settle, robust=True)
    replay_on_commit()


def replay_on_commit() -> None:
    """After the caller's transaction, write what earlier failures left in the outbox.

    Called by the revocation paths: a process whose own cache writes succeed is the
    likeliest to find the cache back for a process that could not reach it.
    """
    transaction.on_commit(replay_pending)


def replay_pending() -> bool:
    """Write every recorded invalidation to the cache, then drop its row.

    True when the outbox was found empty or emptied; False (logged, never raised) when
    the database or the cache failed, in which case the rows stay for the next replay.
    """
    started_at = _failure_log.replay_started()
    try:
        while _replay_batch() == REPLAY_BATCH:
            pass
    except DatabaseError:
        logger.warning("Could not read the cache outbox; will retry.", exc_info=True)
        return False
    except Exception:
        _failure_log.note_failure()
        logger.warning("Session cache still failing; outbox kept for replay.", exc_info=True)
        return False
    _failure_log.replayed(started_at)
    return True


def _replay_batch() -> int:
    pending = list(PendingCacheInvalidation.objects.order_by("pk")[:REPLAY_BATCH])
    if not pending:
        return 0
    evicted = {p.token_digest for p in pending if p.action == CacheInvalidation.EVICT}
    revoked = {p.token_digest for p in pending if p.action == CacheInvalidation.TOMBSTONE}
    # Evictions first: an eviction written after a tombstone would erase it.
    _write(CacheInvalidation.EVICT, sorted(evicted - revoked))
    if evicted:
        # Read after the deletion, so a session revoked at any point before it (whose
        # tombstone the deletion may just have erased) ends up tombstoned.
        revoked |= set(
            Session.objects.filter(token_digest__in=evicted, revoked_at__isnull=False).values_list(
                "token_digest", flat=True
            )
        )
    _write(CacheInvalidation.TOMBSTONE, sorted(revoked))
    PendingCacheInvalidation.objects.filter(pk__in=[p.pk for p in pending]).delete()
    return len(pending)


def _write(action: str, digests: list[str]) -> None:
    if not digests:
        return
    if action == CacheInvalidation.EVICT:
        _cache().delete_many([_key(d) for d in digests])
    else:
        timeout = int(tessera_settings.CACHE_TIMEOUT.total_seconds())
        _cache().set_many({_key(d): REVOKED for d in digests}, timeout)


def _record_failure(action: str, digests: list[str], exc: Exception) -> None:
    """Keep the invalidation in the current transaction; raise 503 unless told otherwise.

    A client told 503 retries, and its retry (authenticated through the cached copy while
    reads still work) writes the invalidation itself: marking the process would refuse
    that retry. The outbox row covers the client that never retries. When nobody will
    retry, the process is marked at once and again on commit: a replay in another thread
    that ran before this transaction committed could not see the row.
    """
    PendingCacheInvalidation.objects.bulk_create(
        [PendingCacheInvalidation(token_digest=d, action=action) for d in digests]
    )
    if _raise_on_failure.get():
        raise ServiceUnavailable() from exc
    _failure_log.note_failure()
    transaction.on_commit(_failure_log.note_failure)


# -- The near cache of this process --------------------------------------------------


class _NearCacheSlot:
    """The process's near cache for the current settings, built on first use.

    A forked child starts without one (``os.register_at_fork``) and builds its own: the
    parent's socket, and a lock another thread may have held at the fork, are not its.
    Checking the pid instead would cost a system call per request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: NearCache | None = None
        self._decided = False

    def get(self) -> NearCache | None:
        if self._decided:
            return self._cache
        with self._lock:
            if not self._decided:
                self._cache = _build_near_cache()
                self._decided = True
        return self._cache

    def reset(self) -> None:
        with self._lock:
            if self._cache is not None and self._cache.pid == os.getpid():
                self._cache.close()
            self._cache, self._decided = None, False

    def forget_after_fork(self) -> None:
        # Only dropped, never closed: closing would shut the parent's socket down.
        self._lock = threading.Lock()
        self._cache, self._decided = None, False


_near_cache_slot = _NearCacheSlot()
os.register_at_fork(after_in_child=_near_cache_slot.forget_after_fork)


def near_cache() -> NearCache | None:
    """This process's near cache, or None when it is off (see ``NEAR_CACHE``)."""
    return _near_cache_slot.get()


def near_cache_problem() -> str | None:
    """Why the near cache cannot run on the configured cache, or None if it can."""
    alias = tessera_settings.CACHE_ALIAS
    if not isinstance(caches[alias], RedisCache):
        return f"the cache {alias!r} is not Django's Redis backend"
    if len(_servers(settings.CACHES[alias]["LOCATION"])) > 1:
        # Django reads from the replicas, whose own copies of a write are not tracked: a
        # read that beats replication would be kept with nothing left to invalidate it.
        return f"the cache {alias!r} reads from replicas (LOCATION lists several servers)"
    tracked = caches[alias].make_key(KEY_PREFIX)
    probe = "0" * 64
    if caches[alias].make_key(KEY_PREFIX + probe) != tracked + probe:
        # Invalidations are matched by key prefix: a key function that hashes or
        # reorders keys would leave stale entries that nothing ever invalidates.
        return f"the cache {alias!r} has a KEY_FUNCTION that does not keep key prefixes"
    return None


def _servers(location: str | list | tuple) -> list[str]:
    """The server URLs of a Redis LOCATION, as Django's backend splits them."""
    if isinstance(location, str):
        location = location.replace(";", ",").split(",")
    return [server.strip() for server in location if server.strip()]


def _build_near_cache() -> NearCache | None:
    wanted = tessera_settings.NEAR_CACHE
    if wanted is not None and wanted is not True:
        return None
    problem = near_cache_problem()
    if problem is not None:
        if wanted is True:
            # NEAR_CACHE=True on a cache that cannot support it is a system check error.
            logger.error("TESSERA['NEAR_CACHE'] is on, but %s: near cache off.", problem)
        return None
    alias = tessera_settings.CACHE_ALIAS
    configured = settings.CACHES[alias]
    return NearCache(
        url=_servers(configured["LOCATION"])[0],
        # The cache's own connection options (a password, TLS settings…), less those
        # that only concern its pool.
        options={
            name: value
            for name, value in configured.get("OPTIONS", {}).items()
            if name not in ("pool_class", "parser_class", "serializer", "max_connections")
        },
        tracked_prefix=caches[alias].make_key(KEY_PREFIX),
        max_age=tessera_settings.NEAR_CACHE_MAX_AGE.total_seconds(),
        max_entries=tessera_settings.NEAR_CACHE_MAX_ENTRIES,
        on_reset=_note_missed_invalidations,
    )


def _note_missed_invalidations() -> None:
    _failure_log.note_failure()


def _settings_changed(*, setting: str, **kwargs) -> None:
    if setting in ("TESSERA", "CACHES"):
        _near_cache_slot.reset()


setting_changed.connect(_settings_changed)
