"""Signals Tessera sends. Session signals are sent with ``sender=Session``.

- ``session_created(session, request)``: a login on a device.
- ``session_refreshed(session)``: last-used and sliding expiry were written.
- ``session_revoked(session, reason)``: logout, logout-all, admin action, password
  change… ``reason`` is a :class:`tessera.models.RevokeReason` value.
- ``session_expired(session)``: the first use of a session after it expired.
- ``refresh_token_reused(session, request)``: a rotated JWT refresh token came back
  after the grace window; the session has been revoked. Likely theft: alert on it.

Account signals are sent with the user model as ``sender``:

- ``user_registered(user, request)``: a new account was created by ``register/``.
- ``email_verified(user, email, request)``: the user proved they read ``email``.
- ``email_changed(user, old_email, new_email, request)``: a verified change of address.
- ``password_changed(user, request)``: through ``password/change/``.
- ``password_reset(user, request)``: through ``password/reset/confirm/``.

Django's ``user_logged_in`` and ``user_logged_out`` are sent by the login and logout
endpoints too, so receivers written for Django's own login keep working.
"""

from django.dispatch import Signal

__all__ = [
    "email_changed",
    "email_verified",
    "password_changed",
    "password_reset",
    "refresh_token_reused",
    "session_created",
    "session_expired",
    "session_refreshed",
    "session_revoked",
    "user_registered",
]

session_created = Signal()
session_refreshed = Signal()
session_revoked = Signal()
session_expired = Signal()
user_registered = Signal()
email_verified = Signal()
email_changed = Signal()
password_changed = Signal()
password_reset = Signal()
refresh_token_reused = Signal()
