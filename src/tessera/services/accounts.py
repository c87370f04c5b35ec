"""Account flows: register, password reset and change, profile changes, deletion.

Each flow counts its attempt against its throttle first, then does the costly or
state-changing work. Flows that must not reveal whether an account exists (register,
password reset, resend) do the same work and give the same answer either way, and
tell the account's owner by e-mail instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation, user_logged_in
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.encoding import force_bytes, force_str
from django.utils.http import base36_to_int, urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework import exceptions, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import get_error_detail

from .. import signals
from ..conf import tessera_settings
from ..models import (
    EmailAddress,
    EmailKeyPurpose,
    RevokeReason,
    Session,
    SessionKind,
    identity_key,
)
from . import emails, throttling
from .requests import client_key
from .sessions import IssuedToken, create_session, revoke_user_sessions
from .verification import (
    account_rate,
    address_in_use,
    cancel_pending_keys,
    email_of,
    fold_case,
    same_address,
    send_key,
    users_with_address,
    users_with_identity,
)


class InvalidResetToken(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "This password reset link is invalid, expired or already used."
    default_code = "invalid_reset_token"


def field_error(field: str, message: str, code: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [ErrorDetail(message, code=code)]})


class ResetTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset tokens, keyed with Tessera's key and bounded by its lifetime.

    A token hashes the user's password hash, last login and address, so it dies when
    any of them changes: setting the new password is what makes it single use.
    """

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


def validate_new_password(password: str, user, field: str) -> None:
    """Run the project's AUTH_PASSWORD_VALIDATORS; errors keep the validators' codes."""
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError({field: get_error_detail(exc)}) from exc


def check_current_password(user, password: str, field: str) -> None:
    """Counted per user first: a stolen session must not become a password oracle."""
    throttling.hit("current-password-user", str(user.pk), account_rate("current_password_user"))
    if not user.check_password(password):
        raise field_error(field, "The password is not correct.", "wrong_password")


# Registration


@dataclass(frozen=True)
class Registration:
    """The outcome of a sign-up. ``user`` is None when the identity was already taken
    and PREVENT_ENUMERATION hid it; ``issued`` is set when REGISTER_AUTO_LOGIN is on."""

    user: Any | None
    issued: IssuedToken | None = None


def register(
    request, fields: dict[str, Any], password: str, *, device_name: str = ""
) -> Registration:
    """Create an account from the serializer's fields (never more: no mass assignment)."""
    throttling.hit("register-ip", client_key(request), account_rate("register_ip"))
    user_model = get_user_model()
    validate_new_password(password, user_model(**fields), "password")
    existing = _account_holding(fields)
    hashed = False
    if existing is None:
        try:
            user = _create_account(fields, password)
        except IntegrityError:
            # A concurrent sign-up took the name or address first.
            existing = _account_holding(fields)
            if existing is None:
                # A unique field Tessera does not look up: the one answer still hides it,
                # and without that protection the 409 conflict says so.
                if not tessera_settings.PREVENT_ENUMERATION:
                    raise
                return Registration(user=None)
            hashed = True
        else:
            return _welcome(request, user, device_name)
    if not tessera_settings.PREVENT_ENUMERATION:
        field = existing[1]
        raise field_error(field, f"An account with this {field} already exists.", "unique")
    if not hashed:
        # The same hasher work as a real sign-up, so timing does not tell them apart.
        make_password(password)
    owner = existing[0]
    if email_of(owner):
        emails.send("account_exists", email_of(owner), {"user": owner})
    return Registration(user=None)


def _account_holding(fields: dict[str, Any]) -> tuple[Any, str] | None:
    """The account that already uses the submitted username or address, and which field.

    Both are compared by their identity key (NFKC, then case-folded), the rule of the
    unique index on Tessera's address records, so a look-alike spelling is taken exactly
    when the genuine one is.
    """
    user_model = get_user_model()
    username_field = user_model.USERNAME_FIELD
    email_field = user_model.get_email_field_name()
    for field in dict.fromkeys((username_field, email_field)):
        value = fields.get(field)
        holders = users_with_identity(field, value) if value else []
        if holders:
            return holders[0], field
    email = fields.get(email_field)
    if email:
        record = (
            EmailAddress.objects.select_related("user").filter(key=identity_key(email)).first()
        )
        if record is not None:
            return record.user, email_field
    return None


def _create_account(fields: dict[str, Any], password: str):
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model._default_manager.create_user(**fields, password=password)
        EmailAddress.objects.create(user=user, email=email_of(user))
    return user


def _welcome(request, user, device_name: str) -> Registration:
    signals.user_registered.send(sender=user.__class__, user=user, request=request)
    if tessera_settings.EMAIL_VERIFICATION != "none":
        send_key(user, email_of(user), EmailKeyPurpose.VERIFY)
    issued = None
    if tessera_settings.REGISTER_AUTO_LOGIN and not tessera_settings.PREVENT_ENUMERATION:
        issued = create_session(
            user, kind=SessionKind.TOKEN, request=request, device_name=device_name
        )
        user_logged_in.send(sender=user.__class__, request=request, user=user)
    return Registration(user=user, issued=issued)


# Password reset


def request_password_reset(request, email: str) -> None:
    """E-mail a reset link to every active account whose stored address is ``email``.

    The link goes to the stored address, never to the submitted spelling of it.
    """
    throttling.hit("password-reset-ip", client_key(request), account_rate("password_reset_ip"))
    throttling.hit("password-reset-email", fold_case(email), account_rate("password_reset_email"))
    for user in users_with_address(email):
        if not user.has_usable_password():
            continue
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = reset_tokens.make_token(user)
        emails.send("password_reset", email_of(user), {
            "user": user,
            "uid": uid,
            "token": token,
            "url": emails.frontend_url("password_reset", uid=uid, token=token),
            "expires_in": emails.duration_text(tessera_settings.PASSWORD_RESET_TOKEN_TTL),
        })


def confirm_password_reset(request, uid: str, token: str, new_password: str):
    """Set a new password with a reset token, once, and revoke every session.

    The user's row is locked while the token is checked and the password replaced, so
    of concurrent confirmations exactly one sees a valid token: the others wait, then
    find the password (part of the token's hash) changed.
    """
    throttling.hit(
        "password-reset-confirm-ip", client_key(request),
        account_rate("password_reset_confirm_ip"),
    )
    pk = _decode_uid(uid)
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model._default_manager.select_for_update().filter(pk=pk).first()
        if user is None or not user.is_active or not reset_tokens.check_token(user, token):
            raise InvalidResetToken()
        validate_new_password(new_password, user, "new_password")
        user.set_password(new_password)
        user.save(update_fields=["password"])
        revoke_user_sessions(user, RevokeReason.PASSWORD_RESET)
        cancel_pending_keys(user)
    signals.password_reset.send(sender=user.__class__, user=user, request=request)
    emails.send("password_changed", email_of(user), {"user": user, "reset": True})
    return user


def _decode_uid(uid: str):
    try:
        return get_user_model()._meta.pk.to_python(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, OverflowError, DjangoValidationError) as exc:
        raise InvalidResetToken() from exc


# Signed-in changes


def _current_session(request) -> Session | None:
    return request.auth if isinstance(request.auth, Session) else None


def change_password(request, current_password: str, new_password: str) -> None:
    """Replace the password; every session but the current one is revoked."""
    user = fresh_user(request.user)
    check_current_password(user, current_password, "current_password")
    validate_new_password(new_password, user, "new_password")
    current = _current_session(request)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        revoke_user_sessions(user, RevokeReason.PASSWORD_CHANGED, keep=current)
        cancel_pending_keys(user)
    signals.password_changed.send(sender=user.__class__, user=user, request=request)
    emails.send("password_changed", email_of(user), {"user": user, "reset": False})


def update_profile(request, serializer) -> Any:
    """Save a validated ``me/`` serializer; a new address waits for its verification.

    The address is not changed here: a key is e-mailed to the new address and the change
    happens when it comes back (see :func:`tessera.services.verification.consume`).
    """
    user = serializer.instance
    data = serializer.validated_data
    email_field = user.get_email_field_name()
    new_email = data.pop(email_field, None)
    current_password = data.pop("current_password", None)
    if new_email is not None and not same_address(email_of(user), new_email):
        if not current_password:
            raise field_error(
                "current_password",
                "Give your current password to change your e-mail address.",
                "required",
            )
        check_current_password(user, current_password, "current_password")
        _request_email_change(user, new_email)
    if data:
        serializer.save()
    return user


def _request_email_change(user, new_email: str) -> None:
    if address_in_use(new_email, exclude=user):
        if not tessera_settings.PREVENT_ENUMERATION:
            raise field_error(
                user.get_email_field_name(), "An account with this e-mail already exists.",
                "unique",
            )
        emails.send("account_exists", new_email, {"user": None})
        return
    send_key(user, new_email, EmailKeyPurpose.CHANGE)


def delete_account(request, password: str) -> None:
    """Deactivate or delete the account (ACCOUNT_DELETION); every session ends at once."""
    user = fresh_user(request.user)
    check_current_password(user, password, "password")
    if tessera_settings.ACCOUNT_DELETION == "delete":
        with transaction.atomic():
            # Tombstones first: deleting the rows alone would leave cached copies alive.
            revoke_user_sessions(user, RevokeReason.DEACTIVATED)
            user.delete()
    else:
        user.is_active = False
        # tessera.receivers revokes every session of a user saved inactive.
        user.save(update_fields=["is_active"])


def fresh_user(user):
    """The user row as stored now, not the copy cached with the session."""
    return get_user_model()._default_manager.get(pk=user.pk)

