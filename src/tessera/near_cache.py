"""A per-process copy of recent session lookups, invalidated by Redis itself.

Each process keeps the values it read from the shared cache under Tessera's session
prefix for at most ``NEAR_CACHE_MAX_AGE``, and holds one connection to Redis with
server-assisted client tracking in broadcast mode (``CLIENT TRACKING … BCAST PREFIX``):
for every write, deletion, expiry or eviction of a key under that prefix, and for every
flush, Redis pushes an invalidation down that connection. The connection is read
without blocking by the request thread before any value is served, so a tombstone
written before a request arrived has been seen by the time it is answered.

Why tracking rather than publishing on a channel: the invalidation is produced by the
very write that puts a tombstone into Redis, so no code path can write one without the
other, and writes Tessera does not make (expiry, eviction under memory pressure,
``FLUSHDB``, an operator's ``DEL``) invalidate too. Broadcast mode needs Redis 6; one
RESP2 connection redirects its own tracking to itself and subscribes to the
invalidation channel, so tracking and its delivery live and die together.

Fail safe: the near cache answers only while that connection is known to be delivering.
A process that has not connected yet (a fresh worker after a fork), whose connection
failed, or that has not had a reply to its periodic ``PING`` within
``NEAR_CACHE_MAX_AGE`` serves nothing from it; on reconnect it starts empty, and
``on_reset`` tells the shared-cache layer that invalidations may have been missed. A
process that was merely idle is not reset: it serves nothing from the near cache until
the answer to a fresh ``PING`` proves the connection current again.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

logger = logging.getLogger("tessera")

INVALIDATION_CHANNEL = b"__redis__:invalidate"
CLIENT_NAME = "tessera-near-cache"
# A dead or unreachable Redis must cost a request little: connect attempts are short
# and spaced out.
CONNECT_TIMEOUT = 0.25
RECONNECT_INTERVAL = 1.0
SOCKET_TIMEOUT = 0.5
# Keys whose invalidation is remembered (to refuse racing stores) before a full reset.
INVALIDATED_KEYS_LIMIT = 100_000


class NearCache:
    """Values by key for one process, valid only while Redis confirms invalidations.

    ``lookup`` returns a value and a ticket; ``store`` accepts a value read from the
    shared cache only with the ticket taken before that read, and refuses it when an
    invalidation of its key (or a flush) has arrived since: the value may predate it.
    """

    def __init__(
        self,
        *,
        url: str,
        tracked_prefix: str,
        max_age: float,
        max_entries: int,
        options: dict[str, Any] | None = None,
        on_reset: Callable[[], None] = lambda: None,
    ) -> None:
        self.url = url
        self.options = options or {}
        self.tracked_prefix = tracked_prefix
        self.max_age = max_age
        self.max_entries = max_entries
        self.on_reset = on_reset
        self._lock = threading.Lock()
        # The process this cache belongs to: after a fork, the child must build its own
        # (the socket and a lock possibly held at the fork are the parent's).
        self.pid = os.getpid()
        self._connection: redis.Connection | None = None
        self.client_id: int | None = None  # Redis's id of the invalidation connection
        self._ever_connected = False
        self._next_connect_at = 0.0
        self._failing_since: float | None = None
        # Least recently used first: a hit moves its entry to the end.
        self._entries: dict[str, tuple[float, Any]] = {}
        self._applied = 0  # invalidations applied so far
        # Key → (number, time) of its latest invalidation, oldest first. A ticket older
        # than max_age is refused, so older invalidations can be forgotten.
        self._invalidated_at: dict[str, tuple[int, float]] = {}
        self._oldest_valid_ticket = 0
        self._confirmed_at = 0.0
        self._ping_sent_at: float | None = None

    # -- the two operations -------------------------------------------------------

    def lookup(self, key: str) -> tuple[Any, tuple[int, float] | None]:
        """``(value or None, ticket or None)``; no ticket means: do not store."""
        self._connect_if_due()
        with self._lock:
            if not self._ready():
                return None, None
            now = time.monotonic()
            ticket = (self._applied, now)
            entry = self._entries.pop(key, None)
            if entry is None or now - entry[0] > self.max_age:
                return None, ticket
            self._entries[key] = entry
            return entry[1], ticket

    def store(self, key: str, value: Any, ticket: tuple[int, float]) -> None:
        with self._lock:
            if not self._ready():
                return
            applied, taken_at = ticket
            if applied < self._oldest_valid_ticket or time.monotonic() - taken_at > self.max_age:
                return
            invalidated = self._invalidated_at.get(key)
            if invalidated is not None and invalidated[0] > applied:
                return
            if len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (time.monotonic(), value)

    @property
    def connected(self) -> bool:
        """Whether this process currently trusts its invalidation connection."""
        self._connect_if_due()
        with self._lock:
            return self._ready()

    def close(self) -> None:
        with self._lock:
            self._disconnect(reset=False)

    # -- keeping the connection honest --------------------------------------------

    def _ready(self) -> bool:
        """Apply every pending invalidation; True if entries may be used."""
        if self._connection is None:
            return False
        now = time.monotonic()
        try:
            self._drain()
            if self._ping_sent_at is None and now - self._confirmed_at >= self.max_age / 4:
                self._connection.send_command("PING")
                self._ping_sent_at = now
        except (redis.RedisError, OSError, ValueError):
            logger.warning("Near cache invalidation connection failed.", exc_info=True)
            self._disconnect(reset=True)
            return False
        if self._ping_sent_at is not None and now - self._ping_sent_at > self.max_age:
            logger.warning("Near cache invalidation connection is silent; reconnecting.")
            self._disconnect(reset=True)
            return False
        # After a quiet spell the last confirmation is old: wait for the PING just sent
        # (the next request will have its answer) rather than trust the connection blindly.
        return now - self._confirmed_at <= self.max_age

    def _connect_if_due(self) -> None:
        """Open the invalidation connection, at most once per RECONNECT_INTERVAL.

        Outside the lock: while one thread waits on a slow connect, the others go on
        without the near cache instead of queueing behind it.
        """
        if self._connection is not None:
            return
        now = time.monotonic()
        with self._lock:
            if self._connection is not None or now < self._next_connect_at:
                return
            self._next_connect_at = now + RECONNECT_INTERVAL
        opened = self._open()
        if opened is None:
            return
        connection, client_id, sent_at = opened
        with self._lock:
            if self._connection is not None:
                connection.disconnect()
                return
            self._readable = select.poll()
            self._readable.register(connection._sock, select.POLLIN)
            self._parser_may_hold_data = True
            self._connection, self.client_id = connection, client_id
            self._confirmed_at, self._ping_sent_at = sent_at, None
            if self._ever_connected:
                # Writes made while we were away reached nobody here.
                self.on_reset()
            self._ever_connected = True

    def _open(self) -> tuple[redis.Connection, int, float] | None:
        """A connection tracking the prefix and subscribed to its invalidations."""
        connection = None
        try:
            required = {
                "protocol": 2,
                "client_name": CLIENT_NAME,
                "socket_connect_timeout": CONNECT_TIMEOUT,
                "socket_timeout": SOCKET_TIMEOUT,
                "retry": Retry(NoBackoff(), 0),
            }
            # The URL parsed here rather than by ConnectionPool.from_url, where options in
            # its query string would win over the ones this connection relies on.
            pool = redis.ConnectionPool(**{**self.options, **parse_url(self.url), **required})
            connection = pool.make_connection()
            connection.connect()
            connection.send_command("CLIENT", "ID")
            client_id = connection.read_response()
            # Redirected to itself: tracking and its delivery live and die together.
            connection.send_command(
                "CLIENT",
                "TRACKING",
                "ON",
                "REDIRECT",
                client_id,
                "BCAST",
                "PREFIX",
                self.tracked_prefix,
            )
            connection.read_response()
            sent_at = time.monotonic()
            connection.send_command("SUBSCRIBE", INVALIDATION_CHANNEL)
            reply = connection.read_response()
            if not (isinstance(reply, list) and reply[:2] == [b"subscribe", INVALIDATION_CHANNEL]):
                raise redis.ResponseError(f"Unexpected reply to SUBSCRIBE: {reply!r}")
        except (redis.RedisError, OSError) as exc:
            if connection is not None:
                connection.disconnect()
            # Once per outage at WARNING: a retry a second would flood the log.
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                logger.warning("Near cache unavailable, requests go to Redis: %s", exc)
            else:
                logger.debug("Near cache still unavailable: %s", exc)
            return None
        if self._failing_since is not None:
            logger.warning("Near cache connected again.")
            self._failing_since = None
        return connection, client_id, sent_at

    def _disconnect(self, *, reset: bool) -> None:
        if self._connection is not None:
            try:
                self._connection.disconnect()
            except (redis.RedisError, OSError):
                pass
        self._connection, self.client_id = None, None
        self._flush()
        if reset:
            self.on_reset()

    def _drain(self) -> None:
        # One poll(2) answers "anything to read?" (data or a closed socket) in the usual
        # case of nothing; the parser's own check costs several calls more. Only the
        # replies read while connecting can leave bytes in the parser's buffer: the loop
        # below ends with it empty.
        if not self._parser_may_hold_data and not self._readable.poll(0):
            return
        connection = self._connection
        while connection.can_read(timeout=0):
            self._apply(connection.read_response())
        self._parser_may_hold_data = False

    def _apply(self, message: Any) -> None:
        if not isinstance(message, list) or not message:
            raise redis.ResponseError(f"Unexpected message: {message!r}")
        if message[0] == b"pong":
            if self._ping_sent_at is not None:
                self._confirmed_at, self._ping_sent_at = self._ping_sent_at, None
            return
        if message[0] != b"message" or message[1] != INVALIDATION_CHANNEL:
            raise redis.ResponseError(f"Unexpected message: {message!r}")
        keys = message[2]
        if keys is None:  # FLUSHDB, FLUSHALL, or tracking table overflow
            self._flush()
            return
        self._applied += 1
        now = time.monotonic()
        prefix_length = len(self.tracked_prefix)
        invalidated_at = self._invalidated_at
        for raw in keys:
            key = raw.decode("utf-8", "replace")[prefix_length:]
            self._entries.pop(key, None)
            invalidated_at.pop(key, None)
            invalidated_at[key] = (self._applied, now)
        while invalidated_at:
            oldest = next(iter(invalidated_at))
            if now - invalidated_at[oldest][1] <= self.max_age:
                break
            del invalidated_at[oldest]
        if len(invalidated_at) > INVALIDATED_KEYS_LIMIT:
            self._flush()

    def _flush(self) -> None:
        self._entries.clear()
        self._invalidated_at.clear()
        self._applied += 1
        # Any read started before now may hold a value the flush removed.
        self._oldest_valid_ticket = self._applied
