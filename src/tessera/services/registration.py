"""Sign-up: create an account from the serializer's fields, without revealing taken ones.

With PREVENT_ENUMERATION a taken username or address answers exactly like a new account
(the same hasher work, the same response) and its owner is told by e-mail instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction

from .. import signals
from ..conf import tessera_settings
from ..errors import field_error
from ..models import EmailAddress, EmailKeyPurpose, identity_key
from . import emails, login, throttling
from .client import client_key
from .passwords import validate_new_password
from .sessions import IssuedToken
from .verification import (
    account_rate,
    email_of,
    send_key,
    users_with_identity,
)


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
        emails.notify_message("account_exists", email_of(owner), owner)
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
        record = EmailAddress.objects.select_related("user").filter(key=identity_key(email)).first()
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
        issued = login.complete_login(request, user, login.LoginIntent(login.TOKEN, device_name))
    return Registration(user=user, issued=issued)
