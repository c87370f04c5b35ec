"""Signals Tessera sends. Every one is sent with ``sender=Session``.

- ``session_created(session, request)``: a login on a device.
- ``session_refreshed(session)``: last-used and sliding expiry were written.
- ``session_revoked(session, reason)``: logout, logout-all, admin action, password
  change… ``reason`` is a :class:`tessera.models.RevokeReason` value.
- ``session_expired(session)``: the first use of a session after it expired.

Django's ``user_logged_in`` and ``user_logged_out`` are sent by the login and logout
endpoints too, so receivers written for Django's own login keep working.
"""

from django.dispatch import Signal

session_created = Signal()
session_refreshed = Signal()
session_revoked = Signal()
session_expired = Signal()
