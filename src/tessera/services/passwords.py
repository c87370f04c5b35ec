"""Passwords: validation, the current-password check, change, and reset by e-mail.

Changing or resetting a password revokes sessions (all of them on reset, all but the
current one on change) and cancels pending e-mail keys, in the same transaction as the
new hash. :func:`end_sessions_for_new_password` is that rule, for Tessera's endpoints
here and for every other way a password is set (the admin, ``changepassword``,
``set_password()`` and ``save()`` in code: see :mod:`tessera.receivers`).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.encoding import force_bytes, force_str
from django.utils.http import base36_to_int, urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework import exceptions
from rest_framework.fields import get_error_detail

from .. import signals
from ..conf import tessera_settings
from ..errors import InvalidResetToken, field_error
from ..models import RevokeReason, Session
from . import devices, emails, lockout, throttling
from .client import client_key
from .sessions import revoke_user_sessions, session_of
from .users import fresh_user
from .verification import (
    account_rate,
    cancel_pending_keys,
    email_of,
    fold_case,
    users_with_address,
)


class ResetTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset tokens, keyed with Tessera's key and bounded by its lifetime.

    A token hashes the user's password hash, last login and address, so it dies when
    any of them changes: setting the new password is what makes it single use.
    """

    # The module's old name: a new salt would void every reset link already sent.
    key_salt = "tessera.services.accounts.ResetTokenGenerator"

    @property
    def secret(self) -> bytes:
        return tessera_settings.signing_key

    @property
    def secret_fallbacks(self) -> list:
        return [] if tessera_settings.SIGNING_KEY else list(settings.SECRET_KEY_FALLBACKS)

    def check_token(self, user, token: str | None) -> bool:
        if not super().check_token(user, token):
            return False
        issued = base36_to_int(token.split("-")[0])
        age = self._num_seconds(self._now()) - issued
        return age <= tessera_settings.PASSWORD_RESET_TOKEN_TTL.total_seconds()


reset_tokens = ResetTokenGenerator()


# Set on a user whose new password Tessera's own endpoints save: they end the sessions
# themselves (keeping the caller's on a change), so the save receiver must not.
SESSIONS_HANDLED = "_tessera_password_sessions_handled"


def end_sessions_for_new_password(user, reason: str, *, keep: Session | None = None) -> None:
    """What a new password ends: every session of ``user`` but ``keep``, logins waiting
    for a second factor, pending e-mail keys, and every known device but ``keep``'s
    (whoever knew the old password may have made theirs known)."""
    revoke_user_sessions(user, reason, keep=keep)
    cancel_pending_keys(user)
    if _may_hold_devices(user):
        devices.forget_all_devices(user, keep=keep.device_key if keep is not None else "")


def _may_hold_devices(user) -> bool:
    # Every identifier came with a login; an account created with its password has none
    # (queried only when last_login says "never": the project may not update it).
    if getattr(user, "last_login", None) is not None:
        return True
    return Session.objects.filter(user=user).exists()


def _save_new_password(user, new_password: str, reason: str, *, keep: Session | None) -> None:
    user.set_password(new_password)
    setattr(user, SESSIONS_HANDLED, True)
    try:
        user.save(update_fields=["password"])
    finally:
        user.__dict__.pop(SESSIONS_HANDLED, None)
    end_sessions_for_new_password(user, reason, keep=keep)


def validate_new_password(password: str, user, field: str) -> None:
    """Run the project's AUTH_PASSWORD_VALIDATORS; errors keep the validators' codes."""
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError({field: get_error_detail(exc)}) from exc


def check_current_password(request, user, password: str, field: str) -> None:
    """The signed-in ``user``'s password, checked again before a sensitive change.

    A stolen session must not become a password oracle: the check is counted per user,
    and a failure reserved in the lockout's buckets before the hasher runs, like a
    login's. A signed-in caller counts as a device of its own, the session: its
    failures fill that session's bucket and the (account, IP) one, never the account's
    nor its devices' login buckets, so a stolen session can lock out neither its
    victim's logins nor the device it was stolen from. Only a caller without a session
    (HTTP Basic, which sent the password anyway) counts as a login does.
    """
    throttling.hit("current-password-user", str(user.pk), account_rate("current_password_user"))
    session = session_of(request)
    reservation = lockout.reserve(
        request,
        user.get_username(),
        user=user,
        device_key=f"session:{session.pk}" if session is not None else None,
    )
    try:
        correct = user.check_password(password)
    except Exception:
        reservation.refund()
        raise
    if not correct:
        reservation.failed(field)
        raise field_error(field, "The password is not correct.", "wrong_password")
    reservation.refund()


def request_password_reset(request, email: str) -> None:
    """Count the attempt, then leave a notice: the same work whoever holds ``email``.

    Which accounts get a link is decided when the notice is delivered, after the
    response (see :func:`deliver_reset_links`).
    """
    throttling.hit("password-reset-ip", client_key(request), account_rate("password_reset_ip"))
    throttling.hit("password-reset-email", fold_case(email), account_rate("password_reset_email"))
    emails.require_database()
    emails.notify("password_reset", email=email)


def deliver_reset_links(email: str) -> None:
    """E-mail a reset link to every active account whose stored address is ``email``.

    The link goes to the stored address, never to the submitted spelling of it.
    """
    for user in users_with_address(email):
        if not user.has_usable_password():
            continue
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = reset_tokens.make_token(user)
        emails.send(
            "password_reset",
            email_of(user),
            {
                "user": user,
                "uid": uid,
                "token": token,
                "url": emails.frontend_url("password_reset", uid=uid, token=token),
                "expires_in": emails.duration_text(tessera_settings.PASSWORD_RESET_TOKEN_TTL),
            },
        )


def confirm_password_reset(request, uid: str, token: str, new_password: str):
    """Set a new password with a reset token, once, and revoke every session.

    The user's row is locked while the token is checked and the password replaced, so
    of concurrent confirmations exactly one sees a valid token: the others wait, then
    find the password (part of the token's hash) changed.
    """
    throttling.hit(
        "password-reset-confirm-ip",
        client_key(request),
        account_rate("password_reset_confirm_ip"),
    )
    pk = _decode_uid(uid)
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model._default_manager.select_for_update().filter(pk=pk).first()
        if user is None or not user.is_active or not reset_tokens.check_token(user, token):
            raise InvalidResetToken()
        validate_new_password(new_password, user, "new_password")
        _save_new_password(user, new_password, RevokeReason.PASSWORD_RESET, keep=None)
    signals.password_reset.send(sender=user.__class__, user=user, request=request)
    emails.notify_message("password_changed", email_of(user), user, reset=True)
    return user


def _decode_uid(uid: str):
    try:
        return get_user_model()._meta.pk.to_python(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, OverflowError, DjangoValidationError) as exc:
        raise InvalidResetToken() from exc


def change_password(request, current_password: str, new_password: str) -> None:
    """Replace the password; every session but the current one is revoked."""
    user = fresh_user(request.user)
    check_current_password(request, user, current_password, "current_password")
    validate_new_password(new_password, user, "new_password")
    current = session_of(request)
    with transaction.atomic():
        _save_new_password(user, new_password, RevokeReason.PASSWORD_CHANGED, keep=current)
    signals.password_changed.send(sender=user.__class__, user=user, request=request)
    emails.notify_message("password_changed", email_of(user), user, reset=False)
