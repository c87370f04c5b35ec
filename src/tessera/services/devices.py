"""Known devices: a signed identifier a successful login hands to the client.

A later login that presents it (body field ``device``, or the device cookie in cookie
and browser modes) comes from a device that has logged in to that account before, so the
account's failure lockout does not stop it (see docs/lockout.md): someone hammering a
victim's password from elsewhere cannot keep the victim out of their own account.

The identifier is a :mod:`django.core.signing` token, salted for this use and signed with
Tessera's signing key. Its payload is a random device key and a binding: an HMAC of the
user's primary key and password hash. Nothing in it names the user in clear, it is valid
for that user only, and a password change (or reset) forgets every device at once.
"""

from __future__ import annotations

import secrets

from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework.request import Empty, Request

from ..conf import tessera_settings

FIELD = "device"
SALT = "tessera.devices"
# Longest identifier Tessera issues is far below this; longer input is not even decoded.
MAX_LENGTH = 512


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


def known_device_key(user, presented: str | None) -> str | None:
    """The stable key of ``presented`` when it is a valid identifier issued to ``user``
    (same account, same password, not expired), else None."""
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
    key, binding = payload.get("k"), payload.get("b")
    if not isinstance(key, str) or not isinstance(binding, str):
        return None
    if not constant_time_compare(binding, _binding(user)):
        return None
    return key


def issue_device(user, device_key: str | None = None) -> str:
    """A signed identifier for ``user`` on this device; ``device_key`` (a known device's,
    from :func:`known_device_key`) is kept, so the device stays the same device."""
    payload = {"k": device_key or secrets.token_urlsafe(16), "b": _binding(user)}
    return signing.dumps(payload, key=tessera_settings.signing_key, salt=SALT)


def device_for_login(request, user) -> str:
    """The identifier a successful login of ``user`` answers with: the presented device's
    key kept when it is one of theirs, a new key otherwise."""
    return issue_device(user, known_device_key(user, presented_device(request)))


def _binding(user) -> str:
    # The password hash is itself secret: only its HMAC leaves the server.
    return salted_hmac(
        SALT, f"{user.pk}:{user.password}", secret=tessera_settings.signing_key, algorithm="sha256"
    ).hexdigest()
