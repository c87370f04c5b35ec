"""Failure lockout: failed password and second-factor checks, counted per client IP, per
account, per (account, IP) and per (account, known device).

Reserve, then settle. Before a password hasher or a second-factor check runs,
:func:`reserve` takes one failure from each bucket of the attempt, all of them in one
atomic step (:mod:`tessera.services.buckets`); a bucket that is full refuses the attempt
unchecked (429 ``locked_out``) and, when full of settled failures, backs off in tiers;
full only of checks still in flight, it refuses for a few seconds and records no strike.
A check that passes gives its
reservation back (:meth:`Reservation.refund`), so only failures count: a user who
logs in many times a minute is never locked out by their own successes. Because the
reservation comes first, 50 concurrent wrong passwords against a limit of 5 run the
hasher exactly 5 times.

A known device of the account (:mod:`tessera.services.devices`) uses its own
(account, device) bucket instead of the account's: someone guessing a victim's password
from elsewhere cannot lock the victim's own devices out. Nor does it count in the
address's own bucket: 50 wrong passwords from one address (or from everyone behind a
proxy when NUM_PROXIES is unset) must not lock every account's known devices there. The
(account, IP) bucket still applies, and so does the attempt throttle per address.

Every password entry point shares these buckets: Tessera's logins call :func:`reserve`
in :func:`tessera.services.login.check_credentials`; Django's ``authenticate()`` callers
(the admin login) through :class:`tessera.backends.LockoutModelBackend`, which stands
aside while Tessera's login calls ``authenticate()`` (:func:`counted_by_caller`), so a
failure counts once.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model

from .. import signals
from ..conf import tessera_settings
from ..errors import LockedOut
from ..models import identity_key
from . import buckets, devices
from .buckets import Bucket, Rate
from .client import client_key
from .throttling import digest

PREFIX = "tessera:lockout"
PASSWORD = "password"

_counted_by_caller: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tessera_lockout_counted_by_caller", default=False
)


@dataclass
class Reservation:
    """The failure an attempt reserved, until its check says whether it was one."""

    identifier: str
    user: Any
    request: Any
    taken: list[Bucket] = field(default_factory=list)

    def refund(self) -> None:
        """The attempt does not count: its check passed, or could not run to its end (an
        outage must not lock out everyone who tried to log in during it)."""
        buckets.settle(self.taken, failed=False)

    def failed(self, stage: str = PASSWORD) -> None:
        """The check failed: the reservation stays counted."""
        buckets.settle(self.taken, failed=True)
        signals.login_failed.send(
            sender=get_user_model(),
            user=self.user,
            identifier=self.identifier,
            stage=stage,
            request=self.request,
        )


def reserve(request, identifier: str, *, user=None, device_key: str | None = None) -> Reservation:
    """Reserve one failure for an attempt on the account ``identifier`` names (its
    USERNAME_FIELD value when known), before checking anything; LockedOut if any of its
    buckets is full.

    ``user`` is the account when the caller knows it already (a second factor); else it
    is looked up only when the request presents a device identifier, to tell whether
    that device is one of the account's. ``device_key`` is the device the caller has
    established itself (a signed-in session), instead of the presented one.
    """
    account = digest(identity_key(identifier))
    address = digest(address_key(client_key(request))) if request is not None else None
    if device_key is None:
        presented = devices.presented_device(request) if request is not None else None
        if presented and user is None:
            user = _account_named(identifier)
        device_key = devices.request_device_key(request, user)
    wanted = _buckets(account, address, digest(device_key) if device_key else None)
    refusal = buckets.take(wanted, hold=True)
    if refusal is not None:
        signals.locked_out.send(
            sender=get_user_model(),
            user=user,
            identifier=identifier,
            scope=refusal.bucket.scope,
            retry_after=refusal.wait,
            request=request,
        )
        raise LockedOut(wait=refusal.wait, scope=refusal.bucket.scope)
    return Reservation(identifier, user, request, wanted)


def _buckets(account: str, address: str | None, device: str | None) -> list[Bucket]:
    """The buckets one attempt counts in: per (account, IP), and per account and per IP
    or, for a known device, per (account, device) only."""
    # Broadest first: of two refusals with the same wait, the first one is reported.
    keys = {
        "account": None if device else f"{PREFIX}:account:{account}",
        "device": f"{PREFIX}:device:{account}:{device}" if device else None,
        "ip": f"{PREFIX}:ip:{address}" if address and not device else None,
        "account_ip": f"{PREFIX}:account-ip:{account}:{address}" if address else None,
    }
    rates = tessera_settings.LOCKOUT_RATES
    backoff = tuple(tier.total_seconds() for tier in tessera_settings.LOCKOUT_BACKOFF)
    return [
        Bucket(key, Rate.parse(rates[scope]), backoff, scope)
        for scope, key in keys.items()
        if key is not None and rates.get(scope) is not None
    ]


def address_key(address: str) -> str:
    """What the lockout's per-IP buckets count by: an IPv4 address, or the /64 network of
    an IPv6 one (one subscriber's share, which they can spread across at will)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


def _account_named(identifier: str):
    user_model = get_user_model()
    return user_model._default_manager.filter(**{user_model.USERNAME_FIELD: identifier}).first()


@contextmanager
def counting_here() -> Iterator[None]:
    """Around an ``authenticate()`` call whose caller has reserved the failure itself."""
    token = _counted_by_caller.set(True)
    try:
        yield
    finally:
        _counted_by_caller.reset(token)


def counted_by_caller() -> bool:
    """Whether the ``authenticate()`` running now is counted by its caller already."""
    return _counted_by_caller.get()


def unlock(identifier: str, ip: str | None = None) -> int:
    """Forget the failures of the account ``identifier`` names: its own bucket, its known
    devices', and its (account, IP) buckets: every one, or with ``ip`` that address's only,
    together with the address's own bucket. How many buckets were cleared."""
    account = digest(identity_key(identifier))
    keys = [f"{PREFIX}:account:{account}"]
    prefixes = [f"{PREFIX}:device:{account}:"]
    if ip is None:
        prefixes.append(f"{PREFIX}:account-ip:{account}:")
    else:
        address = digest(address_key(ip))
        keys += [f"{PREFIX}:account-ip:{account}:{address}", f"{PREFIX}:ip:{address}"]
    return buckets.clear(keys, prefixes)
