"""TOTP (RFC 6238) with pyotp: set up, confirm with a first code, verify, each code once.

Codes are the common kind every authenticator app reads: SHA-1, six digits, 30 seconds.
One step of clock drift either way is accepted. The step of every accepted code is
stored (``last_used_step``) and only a later step is accepted after it, with one
compare-and-set UPDATE, so a code cannot be used twice, even by concurrent requests.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

import pyotp
import segno
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound

from ... import signals
from ...conf import tessera_settings
from ...errors import SecondFactorRefused, ServiceUnavailable, TOTPAlreadyEnabled
from ...models import Authenticator, AuthenticatorType
from . import encryption

logger = logging.getLogger("tessera")
DIGITS = 6
DRIFT_STEPS = 1


@dataclass(frozen=True)
class Enrolment:
    """A TOTP set-up in progress: the secret exists in clear only here and in the answer."""

    authenticator: Authenticator
    secret: str
    otpauth_uri: str
    qr_svg: str


def looks_like_code(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def is_enrolled(user) -> bool:
    return Authenticator.objects.filter(
        user=user, type=AuthenticatorType.TOTP, confirmed_at__isnull=False
    ).exists()


def begin(request, user) -> Enrolment:
    """A new secret for the user to add to their app; confirmed by :func:`confirm`.

    A set-up left unconfirmed is replaced; a confirmed authenticator app is not
    (409 ``totp_already_enabled``): it must be removed first, which needs a recent
    authentication.
    """
    secret = pyotp.random_base32()
    with transaction.atomic():
        existing = (
            Authenticator.objects.select_for_update()
            .filter(user=user, type=AuthenticatorType.TOTP)
            .first()
        )
        if existing is not None and existing.confirmed_at is not None:
            raise TOTPAlreadyEnabled()
        if existing is not None:
            existing.delete()
        authenticator = Authenticator.objects.create(
            user=user, type=AuthenticatorType.TOTP, secret=encryption.encrypt(secret)
        )
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=user.get_username(),
        issuer_name=tessera_settings.MFA_TOTP_ISSUER or tessera_settings.SITE_NAME or None,
    )
    signals.mfa_factor_enrolled.send(
        sender=Authenticator, user=user, authenticator=authenticator, request=request
    )
    return Enrolment(authenticator, secret, uri, segno.make(uri, error="m").svg_inline(scale=4))


def pending_enrolment(user) -> Authenticator:
    try:
        return Authenticator.objects.get(
            user=user, type=AuthenticatorType.TOTP, confirmed_at__isnull=True
        )
    except Authenticator.DoesNotExist as exc:
        raise NotFound(_("No authenticator app is being set up; POST mfa/totp/ first.")) from exc


def confirm(pending: Authenticator, code: str, field: str) -> Authenticator:
    """Confirm a set-up with the first code the app shows; that code is then used up."""
    step = _matching_step(pending, code, field)
    now = timezone.now()
    written = (
        _unused_step(Authenticator.objects.filter(pk=pending.pk, confirmed_at__isnull=True), step)
    ).update(confirmed_at=now, last_used_step=step)
    if not written:
        raise _reused(field)
    pending.confirmed_at, pending.last_used_step = now, step
    return pending


def verify(user, code: str, field: str) -> Authenticator:
    """The user's authenticator app, if ``code`` is its current code and was never used."""
    authenticator = Authenticator.objects.filter(
        user=user, type=AuthenticatorType.TOTP, confirmed_at__isnull=False
    ).first()
    if authenticator is None:
        raise _incorrect(field)
    step = _matching_step(authenticator, code, field)
    now = timezone.now()
    written = _unused_step(Authenticator.objects.filter(pk=authenticator.pk), step).update(
        last_used_step=step, last_used_at=now
    )
    if not written:
        raise _reused(field)
    authenticator.last_used_step, authenticator.last_used_at = step, now
    return authenticator


def _unused_step(authenticators, step: int):
    return authenticators.filter(Q(last_used_step__isnull=True) | Q(last_used_step__lt=step))


def _matching_step(authenticator: Authenticator, code: str, field: str) -> int:
    """The time step ``code`` belongs to, within the drift allowed, or refusal.

    A code of a step at or before the last one used is ``code_reused`` whether or not it
    is a match for another step, so a replayed code is named as such.
    """
    code = code.replace(" ", "")
    if not looks_like_code(code):
        raise _incorrect(field)
    try:
        secret = encryption.decrypt(authenticator.secret)
    except encryption.InvalidToken as exc:
        logger.error(
            "The TOTP secret of authenticator %s opens with none of MFA_ENCRYPTION_KEYS.",
            authenticator.pk,
        )
        raise ServiceUnavailable() from exc
    totp = pyotp.TOTP(secret)
    current = totp.timecode(timezone.now())
    steps = [
        step
        for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1)
        if hmac.compare_digest(totp.generate_otp(step), code)
    ]
    if not steps:
        raise _incorrect(field)
    last = authenticator.last_used_step
    if last is not None and max(steps) <= last:
        raise _reused(field)
    return max(steps)


def _incorrect(field: str) -> SecondFactorRefused:
    return SecondFactorRefused(field, _("The code is not correct."), "invalid_code")


def _reused(field: str) -> SecondFactorRefused:
    return SecondFactorRefused(
        field, _("This code was used already; wait for the next one."), "code_reused"
    )
