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
from django.db.models import Q

from .. import signals
from ..conf import tessera_settings
from ..errors import field_error
from ..models import EmailAddress, EmailKeyPurpose
from . import emails, login, throttling
from .client import client_key
from .passwords import validate_new_password
from .sessions import IssuedToken
from .verification import (
    account_rate,
    email_of,
    send_key,
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
                raise
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
    """The account that already uses the submitted username or address, and which field."""
    user_model = get_user_model()
    username_field = user_model.USERNAME_FIELD
    email_field = user_model.get_email_field_name()
    username, email = fields.get(username_field), fields.get(email_field)
    query = Q()
    if username:
        query |= Q(**{f"{username_field}__iexact": username})
    if email:
        query |= Q(**{f"{email_field}__iexact": email})
    if query:
        holders = list(user_model._default_manager.filter(query)[:2])
        for user in holders:
            if username and str(getattr(user, username_field)).lower() == str(username).lower():
                return user, username_field
        if holders:
            return holders[0], email_field
    if email:
        record = EmailAddress.objects.select_related("user").filter(email__iexact=email).first()
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
