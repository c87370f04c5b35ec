"""Known devices: a signed identifier a successful login hands to the client.

A later login that presents it (body field ``device``, or the device cookie in cookie
and browser modes) comes from a device that has logged in to that account before, so the
account's failure lockout does not stop it (see docs/lockout.md): someone hammering a
victim's password from elsewhere cannot keep the victim out of their own account.

The identifier is a :mod:`django.core.signing` token, salted for this use and signed with
Tessera's signing key. Its payload is the device's key (the id of the first session it
opened, recorded on every session it opens), a binding (an HMAC of the user's primary
key, so it names nobody in clear and is valid for that user only) and when it was
issued. A user forgets devices through :class:`~tessera.models.ForgottenDevice` rows:
one device when its login is reported as "this wasn't me", every device issued until
then when every session is reported, or when the password changes (but the device that
changed it; a hasher upgrade at login is no change, and forgets nothing).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.core import signing
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework.request import Empty, Request

from ..conf import tessera_settings
from ..models import ForgottenDevice

FIELD = "device"
SALT = "tessera.devices"
# Where a request keeps the device keys it was found to present, per user.
MEMO = "_tessera_known_devices"
# Longest identifier Tessera issues is far below this; longer input is not even decoded.
MAX_LENGTH = 512
# Session.device_key's length.
KEY_LENGTH = 64
# An identifier issued this soon after its devices were forgotten is forgotten too.
FORGET_MARGIN = timedelta(seconds=2)


def presented_device(request) -> str | None:
    """The device identifier this request presents: body field ``device``, else the cookie."""
    data = _parsed_body(request)
    candidate = data.get(FIELD) if hasattr(data, "get") else None
    if not isinstance(candidate, str) or not candidate:
        candidate = request.COOKIES.get(tessera_settings.DEVICE_COOKIE)
    if not candidate or len(candidate) > MAX_LENGTH:
        return None
    return candidate


def _parsed_body(request):
    if isinstance(request, Request):
        # Only a body the view has parsed already: parsing it here, during authentication
        # (HTTP Basic), would decide for the view how a bad body is answered.
        return request.data if request._full_data is not Empty else {}
    # A plain Django request: the admin's login form has read its POST already.
    return request.POST if request.method == "POST" else {}


def request_device_key(request, user) -> str | None:
    """:func:`known_device_key` of the identifier ``request`` presents, for ``user``;
    looked up once per request (the lockout asks before the check, the login after)."""
    if request is None or user is None:
        return None
    memo = getattr(request, "_request", request).__dict__.setdefault(MEMO, {})
    if user.pk not in memo:
        memo[user.pk] = known_device_key(user, presented_device(request))
    return memo[user.pk]


def known_device_key(user, presented: str | None) -> str | None:
    """The key of ``presented`` when it is a valid identifier issued to ``user`` (same
    account, not expired, not forgotten), else None."""
    if not presented or user is None:
        return None
    try:
        payload = signing.loads(
            presented,
            key=tessera_settings.signing_key,
            salt=SALT,
            max_age=tessera_settings.DEVICE_LIFETIME,
        )
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    key, binding, issued = payload.get("k"), payload.get("b"), payload.get("t")
    if not (isinstance(key, str) and isinstance(binding, str) and isinstance(issued, int)):
        return None
    if not key or len(key) > KEY_LENGTH:
        return None
    # Looked up before the binding is compared, so that a device of another account
    # costs the login the same work as one of this account's.
    forgotten = _forgotten(user, key, issued)
    if forgotten or not constant_time_compare(binding, _binding(user)):
        return None
    return key


def _forgotten(user, key: str, issued: int) -> bool:
    # Issued by one server, forgotten by another: FORGET_MARGIN absorbs their clocks'
    # disagreement, and a login answered while the devices were being forgotten.
    issued_at = datetime.fromtimestamp(issued / 1000, tz=UTC) - FORGET_MARGIN
    every_device = Q(device_key="", forgotten_at__gte=issued_at) & ~Q(kept_key=key)
    return ForgottenDevice.objects.filter(Q(device_key=key) | every_device, user=user).exists()


def issue_device(user, device_key: str) -> str:
    """A signed identifier for ``user`` on the device ``device_key`` names."""
    payload = {"k": device_key, "b": _binding(user), "t": int(time.time() * 1000)}
    return signing.dumps(payload, key=tessera_settings.signing_key, salt=SALT)


def forget_device(user, device_key: str) -> None:
    """Stop honouring the device ``device_key`` names for ``user``; its next login is a
    new device's (a notice, the account's lockout) and gets a new key."""
    if device_key:
        _forget(user, device_key, "")


def forget_all_devices(user, *, keep: str = "") -> None:
    """Stop honouring every identifier issued to ``user`` until now, but those of the
    device ``keep`` names (the one that has just proved it knows the new password)."""
    _forget(user, "", keep)


def _forget(user, device_key: str, kept_key: str) -> None:
    # One statement: concurrent forgetting of the same key cannot collide on the index.
    row = ForgottenDevice(
        user=user, device_key=device_key, kept_key=kept_key, forgotten_at=timezone.now()
    )
    ForgottenDevice.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["user", "device_key"],
        update_fields=["forgotten_at", "kept_key"],
    )


def _binding(user) -> str:
    return salted_hmac(
        SALT, str(user.pk), secret=tessera_settings.signing_key, algorithm="sha256"
    ).hexdigest()
