"""E-mail verification: one-time keys, the verified state, and the login rule.

A key is 256 random bits from :mod:`secrets`; only its SHA-256 digest is stored, for
the same reason as session tokens (see :mod:`tessera.tokens.opaque`). A key is consumed
by one conditional ``UPDATE … WHERE used_at IS NULL``, so of any number of concurrent
submissions exactly one succeeds.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import unicodedata
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .. import signals
from ..conf import tessera_settings
from ..errors import AddressTaken, EmailNotVerified, InvalidKey, ServiceUnavailable
from ..models import EmailAddress, EmailKeyPurpose, EmailVerificationKey, identity_key
from . import emails, throttling
from .client import client_key

KEY_BYTES = 32
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@dataclass(frozen=True)
class Verified:
    user: object
    email: str
    previous_email: str | None  # set when the key changed the account's address


def users_with_identity(field: str, value: str) -> list:
    """Users whose ``field`` (a username or an address) has the :func:`identity_key` of
    ``value``: who holds this name, for sign-up, an e-mail change and login.

    The user model is the project's, so there is no key column to look up: the database
    finds the candidates with its case-insensitive comparison, by the typed spelling's
    NFKC form (the form Django stores) and by its key (which finds stored ASCII
    spellings of ``ß``-like folds), and only a candidate whose key is equal counts.
    """
    key = identity_key(value)
    spellings = {unicodedata.normalize("NFKC", value), key}
    query = reduce(or_, (Q(**{f"{field}__iexact": spelling}) for spelling in spellings))
    candidates = get_user_model()._default_manager.filter(query)
    return [user for user in candidates if identity_key(str(getattr(user, field) or "")) == key]


def fold_case(email: str) -> str:
    """Lower-case ASCII letters only; see :func:`same_address`."""
    return email.translate(_ASCII_LOWER)


def same_address(stored: str, submitted: str) -> bool:
    """Whether two addresses are the same, ignoring the case of ASCII letters only.

    Unicode case folding and normalisation map look-alikes onto each other (``ß`` and
    ``ss``, the Kelvin sign and ``k``), so they are not applied: only a byte-identical
    address, up to ASCII case, matches. This is the rule for acting on an address without
    a password (reset, resend, verification); whether an address is *taken* is decided by
    :func:`address_in_use`, on the normal form.
    """
    return fold_case(stored) == fold_case(submitted)


def users_with_address(email: str):
    """Active users whose stored address is ``email`` (see :func:`same_address`)."""
    user_model = get_user_model()
    field = user_model.get_email_field_name()
    candidates = user_model._default_manager.filter(**{f"{field}__iexact": email})
    return [
        user
        for user in candidates
        if user.is_active and same_address(getattr(user, field) or "", email)
    ]


def email_of(user) -> str:
    return getattr(user, user.get_email_field_name(), "") or ""


def is_verified(user) -> bool:
    """True when the user's current address is the one Tessera verified."""
    record = EmailAddress.objects.filter(user=user, verified_at__isnull=False).first()
    return record is not None and same_address(record.email, email_of(user))


def require_verified(user) -> None:
    """The login rule for EMAIL_VERIFICATION='mandatory'; call only after the password."""
    if tessera_settings.EMAIL_VERIFICATION != "mandatory":
        return
    try:
        verified = is_verified(user)
    except DatabaseError as exc:
        raise ServiceUnavailable() from exc
    if not verified:
        raise EmailNotVerified()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def create_key(user, email: str, purpose: str) -> str:
    """Store a new key for ``email`` and return it in clear (for the e-mail only)."""
    key = secrets.token_urlsafe(KEY_BYTES)
    now = timezone.now()
    EmailVerificationKey.objects.create(
        user=user,
        email=email,
        purpose=purpose,
        key_digest=_digest(key),
        created_at=now,
        expires_at=now + tessera_settings.EMAIL_VERIFICATION_KEY_TTL,
    )
    return key


def cancel_pending_keys(user) -> int:
    """Void every unused key of ``user``.

    Called when the password changes or is reset and when the account is deactivated:
    a key requested by whoever held the account before (say, an e-mail change to the
    attacker's address) must not outlive the owner taking the account back.
    """
    return EmailVerificationKey.objects.filter(user=user, used_at__isnull=True).update(
        used_at=timezone.now()
    )


def send_key(user, email: str, purpose: str) -> None:
    """E-mail a new key's link to ``email``; the key is minted when the notice is delivered."""
    emails.notify("verification_key", user=str(user.pk), email=email, purpose=purpose)


def deliver_key(user: str, email: str, purpose: str) -> None:
    """Mint a key and e-mail its link (the notice of :func:`send_key`)."""
    account = emails.user_by_pk(user)
    # A key for an account that cannot use it would only wait to expire.
    if account is not None and account.is_active:
        _mail_new_key(account, email, purpose)


def _mail_new_key(account, email: str, purpose: str) -> None:
    key = create_key(account, email, purpose)
    name = "verify_email" if purpose == EmailKeyPurpose.VERIFY else "email_change"
    emails.send(
        name,
        email,
        {
            "user": account,
            "email": email,
            "key": key,
            "url": emails.frontend_url("verify_email", key=key),
            "expires_in": emails.duration_text(tessera_settings.EMAIL_VERIFICATION_KEY_TTL),
        },
    )


def consume(request, key: str) -> Verified:
    """Use a key once: mark the address verified, or switch the account to it."""
    throttling.hit("verify-ip", client_key(request), account_rate("verify_ip"))
    if not _KEY_PATTERN.match(key):
        raise InvalidKey()
    digest = _digest(key)
    now = timezone.now()
    try:
        with transaction.atomic():
            claimed = EmailVerificationKey.objects.filter(
                key_digest=digest, used_at__isnull=True, expires_at__gt=now
            ).update(used_at=now)
            if not claimed:
                raise InvalidKey()
            record = EmailVerificationKey.objects.select_related("user").get(key_digest=digest)
            verified = _apply(record, now)
    except IntegrityError as exc:
        # Another account claimed the address between the e-mail and this click.
        raise AddressTaken() from exc
    sender = verified.user.__class__
    signals.email_verified.send(
        sender=sender, user=verified.user, email=verified.email, request=request
    )
    if verified.previous_email is not None:
        signals.email_changed.send(
            sender=sender,
            user=verified.user,
            old_email=verified.previous_email,
            new_email=verified.email,
            request=request,
        )
        if verified.previous_email:
            emails.notify_message(
                "email_changed",
                verified.previous_email,
                verified.user,
                old_email=verified.previous_email,
                new_email=verified.email,
            )
    return verified


def _apply(record: EmailVerificationKey, now) -> Verified:
    user = record.user
    if not user.is_active:
        raise InvalidKey()
    current = email_of(user)
    previous = None
    if record.purpose == EmailKeyPurpose.CHANGE:
        if not same_address(current, record.email):
            if address_in_use(record.email, exclude=user):
                raise AddressTaken()
            previous = current
            setattr(user, user.get_email_field_name(), record.email)
            user.save(update_fields=[user.get_email_field_name()])
    elif not same_address(current, record.email):
        # A key for an address the account no longer has proves nothing about it.
        raise InvalidKey()
    EmailAddress.objects.update_or_create(
        user=user, defaults={"email": record.email, "verified_at": now}
    )
    # Other keys of this account are moot now: an older pending change must not undo this.
    EmailVerificationKey.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
    return Verified(user=user, email=record.email, previous_email=previous)


def address_in_use(email: str, *, exclude=None) -> bool:
    """Whether another account holds ``email`` or a look-alike of it (the unique index's
    rule: see :class:`~tessera.models.EmailAddress`)."""
    field = get_user_model().get_email_field_name()
    users = users_with_identity(field, email)
    records = EmailAddress.objects.filter(key=identity_key(email))
    if exclude is not None:
        users = [user for user in users if user.pk != exclude.pk]
        records = records.exclude(user=exclude)
    return bool(users) or records.exists()


def resend(request, email: str) -> None:
    """Count the attempt, then leave a notice: the same work whoever holds ``email``."""
    rates = (account_rate("resend_ip"), account_rate("resend_email"))
    throttling.hit("resend-ip", client_key(request), rates[0])
    throttling.hit("resend-email", fold_case(email), rates[1])
    if tessera_settings.EMAIL_VERIFICATION == "none":
        return
    emails.require_database()
    emails.notify("verification_resend", email=email)


def deliver_resend(email: str) -> None:
    """E-mail a fresh key to each unverified account with this address; nothing otherwise."""
    for user in users_with_address(email):
        if not is_verified(user):
            _mail_new_key(user, email_of(user), EmailKeyPurpose.VERIFY)


def account_rate(name: str) -> str | None:
    """One account throttle rate, the default standing in for keys left out."""
    return tessera_settings.ACCOUNT_THROTTLE_RATES.get(name)
