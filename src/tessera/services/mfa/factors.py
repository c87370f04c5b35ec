"""What adding or removing a second factor changes, whatever its type.

Every factor type calls :func:`factor_added` once a new factor is confirmed and
:func:`remove_factor` to take one away, so the rules below hold for all of them:

- The first factor comes with a set of recovery codes, shown once; removing the last
  factor takes the recovery codes with it (alone they would be a second factor nobody
  set up).
- Confirming a factor ends the wait of sessions opened while MFA_REQUIRED found none:
  the confirming session may do everything from then on, and the user's other waiting
  sessions are revoked, since they never showed a second factor.
- A user MFA_REQUIRED covers who removes their last factor is back to waiting: every
  live login session may again only set one up.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound

from ... import session_cache, signals
from ...errors import MFANotEnabled, SecondFactorRefused
from ...models import (
    Authenticator,
    AuthenticatorType,
    LoginTicket,
    RevokeReason,
    Session,
    SessionKind,
)
from .. import sessions as session_service
from . import methods, policy, recovery_codes, totp


def has_factor(user) -> bool:
    """Whether ``user`` has a confirmed second factor (recovery codes alone do not count)."""
    return (
        Authenticator.objects.filter(user=user, confirmed_at__isnull=False)
        .exclude(type=AuthenticatorType.RECOVERY_CODES)
        .exists()
    )


def confirmed_factors(user) -> QuerySet:
    return Authenticator.objects.filter(user=user, confirmed_at__isnull=False).order_by(
        "created_at"
    )


def own_factor(user, factor_id: str, factor_type: str | None = None) -> Authenticator:
    """One of ``user``'s confirmed factors by id; anything else, another user's included,
    is 404."""
    factors = confirmed_factors(user)
    if factor_type is not None:
        factors = factors.filter(type=factor_type)
    try:
        return factors.get(pk=uuid.UUID(str(factor_id)))
    except (ValueError, Authenticator.DoesNotExist) as exc:
        raise NotFound(_("No such second factor.")) from exc


def factor_added(request, authenticator: Authenticator) -> list[str] | None:
    """``authenticator`` was just confirmed; the recovery codes generated, if it is the
    user's first factor.

    Call it inside the transaction that confirmed the factor: if revoking the waiting
    sessions fails (the cache is down: 503), the confirmation rolls back with it.
    """
    user = authenticator.user
    first = not (
        confirmed_factors(user)
        .exclude(type=AuthenticatorType.RECOVERY_CODES)
        .exclude(pk=authenticator.pk)
        .exists()
    )
    codes = None
    if first:
        codes_authenticator, codes = recovery_codes.generate(user)
    _end_enrolment_wait(request, user)
    signals.mfa_factor_confirmed.send(
        sender=Authenticator, user=user, authenticator=authenticator, request=request
    )
    if codes is not None:
        signals.mfa_recovery_codes_generated.send(
            sender=Authenticator, user=user, authenticator=codes_authenticator, request=request
        )
    return codes


def confirm_totp(request, user, code: str) -> tuple[Authenticator, list[str] | None]:
    """Finish the user's TOTP set-up with the app's first code; see :func:`factor_added`."""
    methods.count_attempt(user)
    pending = totp.pending_enrolment(user)
    try:
        with transaction.atomic():
            confirmed = totp.confirm(pending, code, "code")
            return confirmed, factor_added(request, confirmed)
    except SecondFactorRefused as refusal:
        methods.announce_failure(request, user, "code", refusal)
        raise


def disable_totp(request, user) -> None:
    """Remove the user's authenticator app, or drop a set-up left unconfirmed."""
    authenticator = Authenticator.objects.filter(user=user, type=AuthenticatorType.TOTP).first()
    if authenticator is None:
        raise NotFound(_("No authenticator app is set up."))
    if authenticator.confirmed_at is None:
        authenticator.delete()
        return
    remove_factor(request, authenticator)


def regenerate_recovery_codes(request, user) -> list[str]:
    """A new set of recovery codes; the old set stops working. Needs a factor."""
    if not has_factor(user):
        raise MFANotEnabled()
    authenticator, codes = recovery_codes.generate(user)
    signals.mfa_recovery_codes_generated.send(
        sender=Authenticator, user=user, authenticator=authenticator, request=request
    )
    return codes


def remove_factor(request, authenticator: Authenticator) -> None:
    """Delete one factor, with the consequences in the module docstring.

    ``request`` is None when no request is behind the removal (a management command).
    """
    user = authenticator.user
    with transaction.atomic():
        authenticator.delete()
        removed = [authenticator]
        if not has_factor(user):
            codes = Authenticator.objects.filter(user=user, type=AuthenticatorType.RECOVERY_CODES)
            removed += list(codes)
            codes.delete()
            if policy.covers(user):
                session_service.update_live_sessions(
                    Session.objects.live()
                    .filter(user=user, mfa_enrolment_required=False)
                    .exclude(kind=SessionKind.PAT),
                    mfa_enrolment_required=True,
                )
    for gone in removed:
        signals.mfa_factor_disabled.send(
            sender=Authenticator, user=user, authenticator=gone, request=request
        )


def reset_factors(user) -> tuple[int, int]:
    """The support desk's reset: every factor and login ticket of ``user`` deleted and
    every session revoked; how many factors and sessions.

    No request is behind it and nobody retries: a cache outage leaves the revocations in
    the outbox instead of failing (see :mod:`tessera.session_cache`).
    """
    with session_cache.failures_recorded(), transaction.atomic():
        removed = list(confirmed_factors(user))
        Authenticator.objects.filter(user=user).delete()
        LoginTicket.objects.filter(user=user).delete()
        revoked = session_service.revoke_user_sessions(user, RevokeReason.MFA_RESET)
    for gone in removed:
        signals.mfa_factor_disabled.send(
            sender=Authenticator, user=user, authenticator=gone, request=None
        )
    return len(removed), revoked


def _end_enrolment_wait(request, user) -> None:
    current = session_service.session_of(request)
    waiting = Session.objects.live().filter(user=user, mfa_enrolment_required=True)
    if current is not None:
        waiting = waiting.exclude(pk=current.pk)
    session_service.revoke_sessions(waiting, RevokeReason.MFA_ENROLLED)
    if current is not None and current.mfa_enrolment_required:
        session_service.update_live_sessions([current], mfa_enrolment_required=False)
        current.mfa_enrolment_required = False
