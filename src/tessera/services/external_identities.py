"""Which local user an external issuer's token stands for (the entry's ``user``).

- ``"link"``: only a user already linked to the token's ``iss`` + ``sub``.
- ``"create"``: that user, or on first sight a new user linked to them. With
  ``"link_verified_email": True`` an existing user whose e-mail equals the token's is
  linked instead, but only when the token asserts ``email_verified: true``: whoever
  controls the issuer's accounts then controls local accounts with the same address.
- a dotted path: ``callable(claims) -> user or None``, the project's own rule.

A request reads the link (one query); ``last_seen_at`` is written at most once per
``MIN_REFRESH_INTERVAL``. Inactive users are refused.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from ..conf import tessera_settings
from ..errors import ServiceUnavailable, UnknownExternalIdentity, UserInactive
from ..models import ExternalIdentity, identity_key
from ..tokens.external import storable_text
from .verification import address_in_use, is_verified, users_with_address

LINK, CREATE = "link", "create"
# Accounts opened for an identity are named by this prefix and a random suffix: a name
# derived from the identity could be computed (GitHub's ids are public) and registered
# first. Sign-up refuses the prefix, so such names stay Tessera's.
GENERATED_USERNAME_PREFIX = "ext-"
GENERATED_USERNAME_BYTES = 12
GENERATED_USERNAME_ATTEMPTS = 5


def user_for(entry: dict[str, Any], claims: dict[str, Any]):
    """The active local user the verified ``claims`` of ``entry``'s issuer stand for."""
    mode = entry["user"]
    try:
        if mode in (LINK, CREATE):
            user = linked_user(entry["issuer"], claims["sub"])
            if user is None and mode == CREATE:
                user = _link_on_first_sight(entry, claims)
        else:
            user = import_string(mode)(claims)
    except DatabaseError as exc:
        raise ServiceUnavailable() from exc
    if user is None:
        raise UnknownExternalIdentity()
    if not user.is_active:
        raise UserInactive()
    return user


def linked_user(issuer: str, subject: str):
    """The user linked to ``subject`` at ``issuer``, or None; one query, and a write of
    ``last_seen_at`` at most once per MIN_REFRESH_INTERVAL."""
    identity = (
        ExternalIdentity.objects.select_related("user")
        .filter(issuer=issuer, subject=subject)
        .first()
    )
    if identity is None:
        return None
    now = timezone.now()
    seen_before = now - tessera_settings.MIN_REFRESH_INTERVAL
    if identity.last_seen_at < seen_before:
        ExternalIdentity.objects.filter(pk=identity.pk, last_seen_at__lt=seen_before).update(
            last_seen_at=now
        )
    return identity.user


def verified_email(entry: dict[str, Any], claims: dict[str, Any]) -> str | None:
    """The token's e-mail address if the issuer asserts it is verified, else None.

    An address the user model could not store (too long, a control character) counts as
    none: writing it would fail the query, a 503 for a token that is valid.
    """
    email = claims.get(entry.get("email_claim", "email"))
    if claims.get("email_verified") is not True or not isinstance(email, str) or "@" not in email:
        return None
    model = get_user_model()
    max_length = model._meta.get_field(model.get_email_field_name()).max_length
    if (max_length is not None and len(email) > max_length) or not storable_text(email):
        return None
    return email


def _link_on_first_sight(entry: dict[str, Any], claims: dict[str, Any]):
    email = verified_email(entry, claims)
    try:
        with transaction.atomic():
            user = user_with_verified_email(email) if entry.get("link_verified_email") else None
            if user is None:
                # An address another account holds stays with it: two holders would
                # leave neither able to log in by address.
                unheld = None if email is None or address_in_use(email) else email
                user = new_user(unheld)
            if user is None:
                return None
            ExternalIdentity.objects.create(
                issuer=entry["issuer"], subject=claims["sub"], user=user
            )
    except IntegrityError:
        # A concurrent request linked this identity first.
        return linked_user(entry["issuer"], claims["sub"])
    return user


def user_with_verified_email(email: str | None):
    """The one local account an issuer's verified address may be linked to, or None.

    Only an account whose address Tessera itself verified (else anyone could sign up with
    a victim's address, wait, and be joined by the victim), matched as the project matches
    addresses without a password (ASCII case only: database case rules map look-alikes
    such as the dotless ``ı`` onto ``I``), active, and never staff or a superuser.
    """
    if email is None:
        return None
    users = [
        user
        for user in users_with_address(email)
        if is_verified(user)
        and not getattr(user, "is_staff", False)
        and not getattr(user, "is_superuser", False)
    ]
    return users[0] if len(users) == 1 else None


def new_user(email: str | None):
    """A new user without a password, named by a random ``ext-`` name (or by the verified
    e-mail when the user model is named by its e-mail); None when it cannot be named.

    The identity's link (its ExternalIdentity row) is what finds the account again, so
    the name need not say whose it is. A name already taken is drawn again.
    """
    model = get_user_model()
    email_field = model.get_email_field_name()
    fields: dict[str, Any] = {}
    if email is not None:
        fields[email_field] = model._default_manager.normalize_email(email)
    elif model.USERNAME_FIELD == email_field:
        return None
    if model.USERNAME_FIELD == email_field:
        return _saved(model(**fields))
    attempts_left = GENERATED_USERNAME_ATTEMPTS
    while True:
        name = random_username()
        try:
            with transaction.atomic():
                return _saved(model(**fields, **{model.USERNAME_FIELD: name}))
        except IntegrityError:
            # Only a name already taken is worth drawing again; another unique value
            # (a custom model's) fails the same way however often it is tried.
            attempts_left -= 1
            taken = model._default_manager.filter(**{model.USERNAME_FIELD: name}).exists()
            if not taken or attempts_left == 0:
                raise


def _saved(user):
    user.set_unusable_password()
    user.save()
    return user


def random_username() -> str:
    """An ``ext-`` name nobody can guess ahead of the account it names."""
    return GENERATED_USERNAME_PREFIX + secrets.token_hex(GENERATED_USERNAME_BYTES)


def is_generated_username(value: str) -> bool:
    """Whether ``value`` has the form of the names given to accounts opened for an
    identity (compared as usernames are: NFKC, case-folded), when the user model has a
    username apart from its address."""
    model = get_user_model()
    if model.USERNAME_FIELD == model.get_email_field_name():
        return False
    return identity_key(value).startswith(GENERATED_USERNAME_PREFIX)
