"""Signals Tessera sends. Session signals are sent with ``sender=Session``.

- ``session_created(session, request)``: a login on a device.
- ``session_refreshed(session)``: last-used and sliding expiry were written.
- ``session_revoked(session, reason)``: logout, logout-all, admin action, password
  change… ``reason`` is a :class:`tessera.models.RevokeReason` value.
- ``session_expired(session)``: the first use of a session after it expired.
- ``refresh_token_reused(session, request)``: a rotated JWT refresh token came back
  after the grace window; the session has been revoked. Likely theft: alert on it.
- ``new_device_login(session, request)``: a login from a device the account has not
  used before; the new-device e-mail (NEW_DEVICE_NOTICE) has been queued.
- ``login_reported(user, session, all_sessions, revoked, request)``: the link of a
  new-device e-mail said "this wasn't me": the session it names (None if its row was
  deleted since) and, with ``all_sessions``, every session of ``user`` have been
  revoked; ``revoked`` of them were live until then.

Account signals are sent with the user model as ``sender``:

- ``user_registered(user, request)``: a new account was created by ``register/``.
- ``email_verified(user, email, request)``: the user proved they read ``email``.
- ``email_changed(user, old_email, new_email, request)``: a verified change of address.
- ``password_changed(user, request)``: through ``password/change/``.
- ``password_reset(user, request)``: through ``password/reset/confirm/``.

Second-factor signals are sent with ``sender=Authenticator`` (``mfa_ticket_issued`` with
``sender=LoginTicket``); ``request`` is None when no request is behind the event:

- ``mfa_ticket_issued(user, ticket, request)``: a password login stopped at
  ``mfa_required`` and got a login ticket.
- ``mfa_factor_enrolled(user, authenticator, request)``: a set-up began (a TOTP secret
  was issued; it counts once confirmed).
- ``mfa_factor_confirmed(user, authenticator, request)``: a new factor counts from now.
- ``mfa_factor_disabled(user, authenticator, request)``: a factor was removed (by the
  user, with the last one its recovery codes, or by ``tessera_reset_mfa``).
- ``mfa_factor_used(user, authenticator, request)``: a second factor completed a login
  or a reauthentication.
- ``mfa_recovery_codes_generated(user, authenticator, request)``: a new set of recovery
  codes, with the first factor or on request; the old set stopped working.
- ``mfa_recovery_code_used(user, authenticator, remaining, request)``: sent besides
  ``mfa_factor_used``; ``remaining`` codes are left.
- ``mfa_failed(user, field, code, ticket, request)``: a wrong or reused proof (``code``
  is the field error's code, e.g. ``invalid_code``); ``ticket`` is None outside a login.
  Many in a row for one user mean someone else knows their password: alert on it.

Lockout signals are sent with the user model as ``sender`` (docs/lockout.md); ``user``
is None when the attempt named no account Tessera looked up:

- ``login_failed(user, identifier, stage, request)``: a password or second-factor proof
  was wrong, and the failure counts towards the lockout. ``stage`` is the body field
  that was wrong: ``"password"`` (a login, or a re-authentication), ``"current_password"``
  (a password or address change), or the proof's (e.g. ``"code"``). Django's
  ``user_login_failed`` is sent too for a login's password, by ``authenticate()``.
- ``locked_out(user, identifier, scope, retry_after, request)``: an attempt was refused
  unchecked because its ``scope`` (``"ip"``, ``"account"``, ``"account_ip"`` or
  ``"device"``) is locked for ``retry_after`` more seconds.

Django's ``user_logged_in`` and ``user_logged_out`` are sent by the login and logout
endpoints too, so receivers written for Django's own login keep working.
"""

from django.dispatch import Signal

__all__ = [
    "email_changed",
    "email_verified",
    "locked_out",
    "login_failed",
    "login_reported",
    "mfa_factor_confirmed",
    "mfa_factor_disabled",
    "mfa_factor_enrolled",
    "mfa_factor_used",
    "mfa_failed",
    "mfa_recovery_code_used",
    "mfa_recovery_codes_generated",
    "mfa_ticket_issued",
    "new_device_login",
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
new_device_login = Signal()
login_reported = Signal()
mfa_ticket_issued = Signal()
mfa_factor_enrolled = Signal()
mfa_factor_confirmed = Signal()
mfa_factor_disabled = Signal()
mfa_factor_used = Signal()
mfa_recovery_codes_generated = Signal()
mfa_recovery_code_used = Signal()
mfa_failed = Signal()
login_failed = Signal()
locked_out = Signal()
