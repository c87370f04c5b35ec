"""GCRA buckets with tiered back-off, taken and given back atomically.

Every limit Tessera enforces on logins and account endpoints is a bucket here: the
attempt throttles (:mod:`tessera.services.throttling`) and the failure lockout
(:mod:`tessera.services.lockout`). A bucket is the generic cell rate algorithm: ``count``
takes per ``seconds``, each take moving the theoretical arrival time (TAT) forward by
``seconds / count``; a take is refused when it would put the TAT more than ``seconds``
ahead of now. There are no windows, so a burst straddling a boundary gets no second
allowance: whatever the timing, at most ``count`` takes pass in any ``seconds``, plus one
per emission interval elapsed.

A bucket with a back-off (the lockout's) also locks when it refuses: for the first
duration of its tiers, then the next each time it refuses again once that lock is over,
up to the last tier. Its strikes are forgotten once it has stayed empty for a full
period after its last lock. The longest lock is the last tier: back-off is bounded.

A take may be *held* (the lockout's reservations): it counts like any other, and the
bucket also knows it is still in flight until :func:`settle` says whether it was a
failure. A bucket that is full only because of takes in flight refuses for a few seconds
and locks nothing: concurrent correct logins must not earn a strike. Only a bucket full
of settled takes locks. A hold never settled (a worker that died mid-check) is forgotten
after ``HOLD_SECONDS``.

:func:`take` is all or nothing over several buckets, in one atomic step: a Lua script on
Redis, or rows locked with ``SELECT … FOR UPDATE`` in key order in the database. The
decision is made on the state that step read, so concurrent takes can never pass more
than the limit. Errors fail closed: 503, never a free take.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import DatabaseError, transaction

from ..conf import tessera_settings
from ..errors import ServiceUnavailable
from ..models import RateBucket

logger = logging.getLogger("tessera")
PERIODS = {"sec": 1, "min": 60, "hour": 3600, "day": 86400}
RATE_PATTERN = re.compile(r"^(?P<count>\d+)/(?P<multiple>\d*)(?P<period>sec|min|hour|day)$")
# Float seconds: a take that lands exactly on the limit passes.
EPSILON = 1e-6
# Longer than any password or second-factor check runs; a hold older than this was lost.
HOLD_SECONDS = 60.0
# The wait when a bucket is full only of takes in flight: they settle within moments.
IN_FLIGHT_WAIT = 2.0


@dataclass(frozen=True)
class Rate:
    """``count`` takes per ``seconds``; written ``'N/period'`` or ``'N/<k>period'``
    (``'5/15min'``)."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = RATE_PATTERN.match(text) if isinstance(text, str) else None
        if match is None or int(match["count"]) < 1 or match["multiple"] in ("0",):
            raise ValueError(
                f"Bad rate {text!r}; expected 'N/sec|min|hour|day', optionally "
                "'N/<k>min' and so on (e.g. '5/15min')."
            )
        return cls(int(match["count"]), int(match["multiple"] or 1) * PERIODS[match["period"]])

    @property
    def interval(self) -> float:
        return self.seconds / self.count


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: Rate
    # Lock durations in seconds, one per strike; empty: the bucket only refuses.
    backoff: tuple[float, ...] = ()
    # What the bucket limits, as refusals and signals name it ("account", "ip"…).
    scope: str = ""


@dataclass(frozen=True)
class Refusal:
    bucket: Bucket
    retry_after: float

    @property
    def wait(self) -> int:
        """Whole seconds for ``Retry-After``: never 0, which would invite a retry now."""
        return max(1, math.ceil(self.retry_after))


@dataclass
class State:
    tat: float
    locked_until: float = 0.0
    strikes: int = 0
    # Held takes not settled yet, and when the last one was taken.
    held: int = 0
    held_at: float = 0.0

    def lifetime(self, bucket: Bucket, now: float) -> float:
        """Seconds this state still means something: until it is forgiven (decide())."""
        return max(self.tat, self.locked_until) + bucket.rate.seconds - now


def decide(
    bucket: Bucket, state: State | None, now: float, hold: bool = False
) -> tuple[State, float | None]:
    """The bucket's state after one take at ``now`` (``hold``: one in flight until
    settled), and the seconds to wait if refused.

    The reference the Lua script mirrors; the database and in-process stores call it.
    """
    period, interval = bucket.rate.seconds, bucket.rate.interval
    if state is None:
        state = State(now)
    held = state.held if now < state.held_at + HOLD_SECONDS else 0
    if now >= max(state.tat, state.locked_until) + period:
        # Empty for a whole period after its last lock: past strikes are forgiven.
        state = State(now)
    state = State(state.tat, state.locked_until, state.strikes, held, state.held_at)
    tat = max(state.tat, now)
    if state.locked_until > now:
        return state, state.locked_until - now
    allowed_at = tat + interval - period
    if allowed_at > now + EPSILON:
        if held and allowed_at - held * interval <= now + EPSILON:
            # Full only of checks still running: they may all pass, so no strike.
            return state, min(IN_FLIGHT_WAIT, allowed_at - now)
        if bucket.backoff:
            tier = bucket.backoff[min(state.strikes, len(bucket.backoff) - 1)]
            locked = max(now + tier, allowed_at)
            state = State(tat, locked, state.strikes + 1, held, state.held_at)
            return state, state.locked_until - now
        return state, allowed_at - now
    if hold:
        return State(tat + interval, state.locked_until, state.strikes, held + 1, now), None
    return State(tat + interval, state.locked_until, state.strikes, held, state.held_at), None


def settled(bucket: Bucket, state: State, *, failed: bool) -> State:
    """The state once one held take settles: a failure stays counted, a success not."""
    tat = state.tat if failed else state.tat - bucket.rate.interval
    return State(tat, state.locked_until, state.strikes, max(0, state.held - 1), state.held_at)


def take(buckets: Sequence[Bucket], *, hold: bool = False) -> Refusal | None:
    """Take one from every bucket, or from none: the refusal that stopped it, if any.

    A refused bucket still records its back-off; the others are left as they were. With
    ``hold`` the take stays in flight until :func:`settle`.
    """
    if not buckets:
        return None
    return _store().take(list(buckets), time.time(), hold)


def settle(buckets: Sequence[Bucket], *, failed: bool) -> None:
    """Settle one held take of every bucket: a failure stays counted; a success is given
    back (a reservation that turned out not to count)."""
    if buckets:
        _store().settle(list(buckets), failed)


def clear(keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> int:
    """Forget the buckets named by ``keys`` or starting with one of ``prefixes``."""
    return _store().clear(list(keys), list(prefixes))


def clear_expired() -> int:
    """Delete the database rows that no longer mean anything (tessera_clearsessions)."""
    deleted, _ = RateBucket.objects.filter(expires_at__lt=_datetime(time.time())).delete()
    return deleted


def _datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def store_problem() -> str | None:
    """Why the configured store cannot hold buckets atomically, or None."""
    if tessera_settings.THROTTLE_BACKEND == "database":
        return None
    cache = caches[tessera_settings.CACHE_ALIAS]
    if isinstance(cache, RedisCache | LocMemCache):
        return None
    return (
        f"the cache {tessera_settings.CACHE_ALIAS!r} ({type(cache).__name__}) has no atomic "
        "script: THROTTLE_BACKEND='cache' needs Redis (or LocMemCache in development)"
    )


def _store():
    if tessera_settings.THROTTLE_BACKEND == "database":
        return DATABASE
    cache = caches[tessera_settings.CACHE_ALIAS]
    if isinstance(cache, RedisCache):
        return RedisStore(cache)
    if isinstance(cache, LocMemCache):
        return LocalStore(cache)
    logger.error("Throttle buckets cannot be kept: %s; refusing.", store_problem())
    raise ServiceUnavailable()


# The database keeps a bucket's held takes in a row of their own beside it: ``tat`` is
# how many are in flight, ``locked_until`` when the last one was taken.
HELD_SUFFIX = "#held"


class DatabaseStore:
    def take(self, buckets: list[Bucket], now: float, hold: bool = False) -> Refusal | None:
        try:
            with transaction.atomic():
                rows = self._locked_rows(buckets, now, hold)
                # The clock read before waiting for the locks may be older than the one a
                # take that held them applied, and an older now would see the burst spent.
                now = max(now, time.time())
                decisions = [
                    (bucket, *decide(bucket, _state_of(rows, bucket.key), now, hold))
                    for bucket in buckets
                ]
                refused = [(bucket, state, wait) for bucket, state, wait in decisions if wait]
                self._write(rows, [(b, state) for b, state, _wait in refused or decisions], now)
        except DatabaseError as exc:
            logger.error("Throttle buckets unavailable in the database; refusing.", exc_info=True)
            raise ServiceUnavailable() from exc
        return _first_refusal(refused)

    def settle(self, buckets: list[Bucket], failed: bool) -> None:
        try:
            with transaction.atomic():
                rows = self._locked_rows(buckets, time.time(), held=True)
                changed = [
                    (bucket, settled(bucket, state, failed=failed))
                    for bucket in buckets
                    if (state := _state_of(rows, bucket.key)) is not None
                ]
                self._write(rows, changed, time.time())
        except DatabaseError as exc:
            logger.error("Throttle buckets unavailable in the database.", exc_info=True)
            raise ServiceUnavailable() from exc

    def _locked_rows(self, buckets: list[Bucket], now: float, held: bool):
        """The buckets' rows, created if missing, locked; with ``held``, their held rows."""
        names = {bucket.key for bucket in buckets}
        keys = sorted(names | ({name + HELD_SUFFIX for name in names} if held else set()))
        RateBucket.objects.bulk_create(
            [RateBucket(key=key, tat=0, expires_at=_datetime(now)) for key in keys],
            ignore_conflicts=True,
        )
        # In key order, so two takes over overlapping buckets cannot deadlock.
        return {
            row.key: row
            for row in RateBucket.objects.select_for_update().filter(key__in=keys).order_by("key")
        }

    def _write(self, rows: dict[str, RateBucket], changed: list[tuple[Bucket, State]], now):
        updated = []
        for bucket, state in changed:
            row = rows[bucket.key]
            row.tat, row.locked_until, row.strikes = state.tat, state.locked_until, state.strikes
            row.expires_at = _datetime(now + state.lifetime(bucket, now))
            updated.append(row)
            if (held := rows.get(bucket.key + HELD_SUFFIX)) is not None:
                held.tat, held.locked_until = state.held, state.held_at
                held.expires_at = _datetime(max(now, state.held_at + HOLD_SECONDS))
                updated.append(held)
        RateBucket.objects.bulk_update(updated, ["tat", "locked_until", "strikes", "expires_at"])

    def clear(self, keys: list[str], prefixes: list[str]) -> int:
        RateBucket.objects.filter(key__in=[key + HELD_SUFFIX for key in keys]).delete()
        deleted, _ = RateBucket.objects.filter(key__in=keys).delete()
        for prefix in prefixes:
            RateBucket.objects.filter(key__startswith=prefix, key__endswith=HELD_SUFFIX).delete()
            more, _ = RateBucket.objects.filter(key__startswith=prefix).delete()
            deleted += more
        return deleted


def _state_of(rows: dict[str, RateBucket], key: str) -> State | None:
    row, held = rows[key], rows.get(key + HELD_SUFFIX)
    if not row.tat:
        return None
    if held is None:
        return State(row.tat, row.locked_until, row.strikes)
    return State(row.tat, row.locked_until, row.strikes, int(held.tat), held.locked_until)


def _first_refusal(refused: list[tuple[Bucket, State, float]]) -> Refusal | None:
    if not refused:
        return None
    # The longest wait: the client may not succeed before every refusing bucket allows.
    bucket, _state, wait = max(refused, key=lambda item: item[2])
    return Refusal(bucket, wait)


DATABASE = DatabaseStore()


# KEYS: the buckets. ARGV: now, hold ('1' or '0'), HOLD_SECONDS, IN_FLIGHT_WAIT, then per
# bucket its interval, period and back-off tiers (comma-separated seconds, empty for
# none). Returns 0 when every bucket was taken, or {index of the refusal with the longest
# wait, that wait as a string}. Mirrors decide().
TAKE_SCRIPT = """
local now = tonumber(ARGV[1])
-- A clock read before the caller queued here can be older than one already applied, and an
-- older now would see the burst as spent: time never runs backwards inside a bucket.
for _, key in ipairs(KEYS) do
  local seen = tonumber(redis.call('HGET', key, 'n'))
  if seen and seen > now then now = seen end
end
local hold = ARGV[2] == '1'
local hold_seconds, in_flight_wait = tonumber(ARGV[3]), tonumber(ARGV[4])
local states, refused, wait = {}, 0, 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i + 2])
  local period = tonumber(ARGV[3 * i + 3])
  local tiers = {}
  for tier in string.gmatch(ARGV[3 * i + 4], '[^,]+') do tiers[#tiers + 1] = tonumber(tier) end
  local saved = redis.call('HMGET', key, 't', 'l', 's', 'h', 'ha')
  local tat = tonumber(saved[1]) or now
  local locked = tonumber(saved[2]) or 0
  local strikes = tonumber(saved[3]) or 0
  local held = tonumber(saved[4]) or 0
  local held_at = tonumber(saved[5]) or 0
  if now >= held_at + hold_seconds then held = 0 end
  if now >= math.max(tat, locked) + period then tat, locked, strikes = now, 0, 0 end
  tat = math.max(tat, now)
  local this_wait = nil
  if locked > now then
    this_wait = locked - now
  else
    local allowed_at = tat + interval - period
    if allowed_at > now + 1e-6 then
      if held > 0 and allowed_at - held * interval <= now + 1e-6 then
        this_wait = math.min(in_flight_wait, allowed_at - now)
      elseif #tiers > 0 then
        locked = math.max(now + tiers[math.min(strikes + 1, #tiers)], allowed_at)
        strikes = strikes + 1
        this_wait = locked - now
      else
        this_wait = allowed_at - now
      end
    else
      tat = tat + interval
      if hold then held, held_at = held + 1, now end
    end
  end
  states[i] = {tat, locked, strikes, period, this_wait, held, held_at}
  if this_wait and this_wait > wait then refused, wait = i, this_wait end
end
for i, key in ipairs(KEYS) do
  local s = states[i]
  -- Refused: only the refusing buckets record their back-off. Taken: every bucket.
  if refused == 0 or s[5] then
    redis.call('HSET', key, 't', string.format('%.6f', s[1]), 'l', string.format('%.6f', s[2]),
      's', s[3], 'h', s[6], 'ha', string.format('%.6f', s[7]),
      'n', string.format('%.6f', now))
    redis.call('EXPIRE', key, math.ceil(math.max(s[1], s[2], s[7] + hold_seconds) + s[4] - now) + 1)
  end
end
if refused == 0 then return 0 end
return {refused, string.format('%.6f', wait)}
"""

# KEYS: the buckets; ARGV: failed ('1' or '0'), then their intervals. Mirrors settled().
# A bucket that expired meanwhile stays empty.
SETTLE_SCRIPT = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    local held = tonumber(redis.call('HGET', key, 'h')) or 0
    if held > 0 then redis.call('HSET', key, 'h', held - 1) end
    if ARGV[1] ~= '1' then redis.call('HINCRBYFLOAT', key, 't', -tonumber(ARGV[i + 1])) end
  end
end
return 0
"""

_scripts: dict[tuple[int, str], object] = {}


class RedisStore:
    def __init__(self, cache: RedisCache) -> None:
        self.cache = cache

    def _script(self, source: str):
        client = self.cache._cache.get_client(write=True)
        script = _scripts.get((id(client), source))
        if script is None:
            script = _scripts.setdefault((id(client), source), client.register_script(source))
        return script

    def take(self, buckets: list[Bucket], now: float, hold: bool = False) -> Refusal | None:
        arguments: list = [
            repr(now),
            "1" if hold else "0",
            repr(HOLD_SECONDS),
            repr(IN_FLIGHT_WAIT),
        ]
        for bucket in buckets:
            arguments += [
                repr(bucket.rate.interval),
                bucket.rate.seconds,
                ",".join(repr(tier) for tier in bucket.backoff),
            ]
        keys = [self.cache.make_and_validate_key(bucket.key) for bucket in buckets]
        try:
            answer = self._script(TAKE_SCRIPT)(keys=keys, args=arguments)
        except Exception as exc:
            logger.error("Throttle buckets unavailable in the cache; refusing.", exc_info=True)
            raise ServiceUnavailable() from exc
        if not answer:
            return None
        index, wait = answer
        return Refusal(buckets[int(index) - 1], float(wait))

    def settle(self, buckets: list[Bucket], failed: bool) -> None:
        keys = [self.cache.make_and_validate_key(bucket.key) for bucket in buckets]
        intervals = [repr(bucket.rate.interval) for bucket in buckets]
        try:
            self._script(SETTLE_SCRIPT)(keys=keys, args=["1" if failed else "0", *intervals])
        except Exception as exc:
            logger.error("Throttle buckets unavailable in the cache.", exc_info=True)
            raise ServiceUnavailable() from exc

    def clear(self, keys: list[str], prefixes: list[str]) -> int:
        client = self.cache._cache.get_client(write=True)
        names = [self.cache.make_and_validate_key(key) for key in keys]
        for prefix in prefixes:
            pattern = self.cache.make_and_validate_key(prefix) + "*"
            names += list(client.scan_iter(match=pattern, count=1000))
        return client.delete(*names) if names else 0


# Django's in-process cache shares one dict per LOCATION between threads; so does this lock.
_local_lock = threading.Lock()


class LocalStore:
    """For LocMemCache, which only one process ever sees: a lock makes each step atomic."""

    def __init__(self, cache: LocMemCache) -> None:
        self.cache = cache

    def take(self, buckets: list[Bucket], now: float, hold: bool = False) -> Refusal | None:
        try:
            with _local_lock:
                now = max(now, time.time())  # as in DatabaseStore.take
                decisions = [
                    (bucket, *decide(bucket, self.cache.get(bucket.key), now, hold))
                    for bucket in buckets
                ]
                refused = [(bucket, state, wait) for bucket, state, wait in decisions if wait]
                for bucket, state, _wait in refused or decisions:
                    self.cache.set(bucket.key, state, _local_lifetime(bucket, state, now))
        except Exception as exc:
            logger.error("Throttle buckets unavailable in the cache; refusing.", exc_info=True)
            raise ServiceUnavailable() from exc
        return _first_refusal(refused)

    def settle(self, buckets: list[Bucket], failed: bool) -> None:
        try:
            with _local_lock:
                for bucket in buckets:
                    state = self.cache.get(bucket.key)
                    if state is not None:
                        state = settled(bucket, state, failed=failed)
                        lifetime = _local_lifetime(bucket, state, time.time())
                        self.cache.set(bucket.key, state, lifetime)
        except Exception as exc:
            logger.error("Throttle buckets unavailable in the cache.", exc_info=True)
            raise ServiceUnavailable() from exc

    def clear(self, keys: list[str], prefixes: list[str]) -> int:
        made = [self.cache.make_and_validate_key(prefix) for prefix in prefixes]
        with _local_lock:
            names = [key for key in keys if self.cache.has_key(key)]
            self.cache.delete_many(names)
            # LocMemCache keeps its entries in one ordered dict of made keys.
            with self.cache._lock:
                doomed = [name for name in self.cache._cache if name.startswith(tuple(made))]
                for name in doomed:
                    del self.cache._cache[name]
                    self.cache._expire_info.pop(name, None)
        return len(names) + len(doomed)


def _local_lifetime(bucket: Bucket, state: State, now: float) -> int:
    """Seconds to keep ``state``: while it means something, holds included."""
    return max(
        1, math.ceil(max(state.lifetime(bucket, now), state.held_at + HOLD_SECONDS - now)) + 1
    )
