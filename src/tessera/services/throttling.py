"""Attempt throttles for login and account endpoints: one GCRA bucket per identity.

DRF's throttles read the history, decide, then write it back, so concurrent requests
all read the same count and most get through. Here every attempt takes from its bucket
first, in one atomic step (:mod:`tessera.services.buckets`), and the decision is made on
the state that step read. A sliding limit, not a fixed window: a burst straddling a
minute boundary does not get the rate twice. Errors fail closed: 503, never a free
attempt.
"""

from __future__ import annotations

import hashlib

from rest_framework.exceptions import Throttled

from . import buckets
from .buckets import Rate

__all__ = ["Rate", "digest", "hit"]


def digest(identity: str) -> str:
    """Identities (usernames, addresses) are hashed so keys never carry personal data."""
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def hit(scope: str, identity: str, rate: str | None) -> None:
    """Count one attempt for ``identity`` in ``scope``; raise Throttled past the rate."""
    if rate is None or not identity:
        return
    bucket = buckets.Bucket(f"tessera:throttle:{scope}:{digest(identity)}", Rate.parse(rate))
    refusal = buckets.take([bucket])
    if refusal is not None:
        raise Throttled(wait=refusal.wait)
