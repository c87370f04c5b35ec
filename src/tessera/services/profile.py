"""Signed-in changes to the account: profile fields, a new address, deletion."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ..conf import tessera_settings
from ..errors import field_error
from ..models import EmailKeyPurpose, RevokeReason
from . import emails
from .mfa.stepup import require_recent_authentication
from .passwords import check_current_password
from .sessions import revoke_user_sessions
from .users import fresh_user
from .verification import (
    address_in_use,
    email_of,
    same_address,
    send_key,
)


def update_profile(request, serializer) -> Any:
    """Save a validated ``me/`` serializer; a new address waits for its verification.

    The address is not changed here: a key is e-mailed to the new address and the change
    happens when it comes back (see :func:`tessera.services.verification.consume`).
    Asking for a new address needs a recent authentication and the current password.
    """
    user = serializer.instance
    data = serializer.validated_data
    email_field = user.get_email_field_name()
    new_email = data.pop(email_field, None)
    current_password = data.pop("current_password", None)
    if new_email is not None and not same_address(email_of(user), new_email):
        require_recent_authentication(request)
        if not current_password:
            raise field_error(
                "current_password",
                "Give your current password to change your e-mail address.",
                "required",
            )
        check_current_password(request, user, current_password, "current_password")
        _request_email_change(user, new_email)
    if data:
        serializer.save()
    return user


def _request_email_change(user, new_email: str) -> None:
    if address_in_use(new_email, exclude=user):
        if not tessera_settings.PREVENT_ENUMERATION:
            raise field_error(
                user.get_email_field_name(),
                "An account with this e-mail already exists.",
                "unique",
            )
        emails.notify_message("account_exists", new_email)
        return
    send_key(user, new_email, EmailKeyPurpose.CHANGE)


def delete_account(request, password: str) -> None:
    """Deactivate or delete the account (ACCOUNT_DELETION); every session ends at once."""
    user = fresh_user(request.user)
    check_current_password(request, user, password, "password")
    if tessera_settings.ACCOUNT_DELETION == "delete":
        with transaction.atomic():
            # Tombstones first: deleting the rows alone would leave cached copies alive.
            revoke_user_sessions(user, RevokeReason.DEACTIVATED)
            user.delete()
    else:
        user.is_active = False
        # tessera.receivers revokes every session of a user saved inactive.
        user.save(update_fields=["is_active"])
