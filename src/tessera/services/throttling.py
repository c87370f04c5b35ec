"""Atomic fixed-window counters for login and account endpoints.

DRF's throttles read the history, decide, then write it back, so concurrent requests
all read the same count and most get through. Here every attempt is counted first, in
one atomic step (Redis ``INCR``, or an ``UPDATE`` under a row lock), and the decision is
made on the count that step returned. Errors fail closed: 503, never a free attempt.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import caches
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import Throttled

from ..conf import tessera_settings
from ..errors import ServiceUnavailable
from ..models import ThrottleCounter

logger = logging.getLogger("tessera")
PERIODS = {"sec": 1, "min": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^(?P<count>\d+)/(?P<period>sec|min|hour|day)$")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"Bad throttle rate {text!r}; expected 'N/sec|min|hour|day'.")
        return cls(int(match["count"]), PERIODS[match["period"]])


def hit(scope: str, identity: str, rate: str | None) -> None:
    """Count one attempt for ``identity`` in ``scope``; raise Throttled past the rate."""
    if rate is None or not identity:
        return
    limit = Rate.parse(rate)
    now = time.time()
    window = int(now // limit.seconds)
    # Identities (usernames, addresses) are hashed so keys never carry personal data.
    hashed = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    key = f"tessera:throttle:{scope}:{hashed}:{window}"
    window_ends = (window + 1) * limit.seconds
    if tessera_settings.THROTTLE_BACKEND == "database":
        count = _count_in_database(key, window_ends)
    else:
        count = _count_in_cache(key, limit.seconds)
    if count > limit.count:
        raise Throttled(wait=max(1, math.ceil(window_ends - now)))


def _count_in_cache(key: str, period: int) -> int:
    cache = caches[tessera_settings.CACHE_ALIAS]
    try:
        for _attempt in range(2):
            cache.add(key, 0, period + 1)
            try:
                return cache.incr(key)
            except ValueError:
                # The key expired between add and incr; start the window again.
                continue
        raise ServiceUnavailable()
    except ServiceUnavailable:
        raise
    except Exception as exc:
        logger.error("Throttle counter unavailable in the cache; refusing.", exc_info=True)
        raise ServiceUnavailable() from exc


def _count_in_database(key: str, window_ends: float) -> int:
    ends_at = timezone.now().replace(microsecond=0) + timedelta(
        seconds=max(0.0, window_ends - time.time())
    )
    try:
        with transaction.atomic():
            if not ThrottleCounter.objects.filter(key=key).update(count=F("count") + 1):
                try:
                    with transaction.atomic():
                        ThrottleCounter.objects.create(key=key, window_ends_at=ends_at, count=1)
                    return 1
                except IntegrityError:
                    ThrottleCounter.objects.filter(key=key).update(count=F("count") + 1)
            # Same transaction: the row lock taken by the UPDATE makes this our own count.
            return ThrottleCounter.objects.values_list("count", flat=True).get(key=key)
    except DatabaseError as exc:
        logger.error("Throttle counter unavailable in the database; refusing.", exc_info=True)
        raise ServiceUnavailable() from exc


def clear_expired_counters() -> int:
    deleted, _ = ThrottleCounter.objects.filter(window_ends_at__lt=timezone.now()).delete()
    return deleted
