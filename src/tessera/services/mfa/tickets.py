"""Login tickets: a login between its password and its second factor.

A ticket is 256 random bits; only its SHA-256 is stored. It names the login it belongs
to (user, credential kind, device name, the first factor's amr) and the client that
started it (user agent and IP: from anywhere else it is invalid). It is used once (one
UPDATE … WHERE used_at IS NULL AND expires_at > now), expires after
MFA_TICKET_LIFETIME, and dies after MFA_MAX_FAILURES wrong codes, counted with an atomic
increment. It authenticates nothing but ``mfa/authenticate/``: it is no bearer token.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db.models import F
from django.utils import timezone

from ... import signals
from ...conf import tessera_settings
from ...errors import InvalidTicket
from ...models import LoginTicket
from ..client import client_ip, user_agent

MAX_LENGTH = 128


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8", "surrogatepass")).hexdigest()


def issue(request, user, intent, amr) -> tuple[str, LoginTicket]:
    """A new ticket for the login ``intent`` (a LoginIntent) describes; the clear value
    exists only in the answer."""
    ticket = secrets.token_urlsafe(32)
    now = timezone.now()
    row = LoginTicket.objects.create(
        digest=_digest(ticket),
        user=user,
        credential=intent.credential,
        device_name=intent.device_name,
        provider=intent.provider,
        user_agent=user_agent(request),
        ip=client_ip(request),
        amr=list(amr),
        created_at=now,
        expires_at=now + tessera_settings.MFA_TICKET_LIFETIME,
    )
    signals.mfa_ticket_issued.send(sender=LoginTicket, user=user, ticket=row, request=request)
    return ticket, row


def find(request, ticket: str) -> LoginTicket:
    """The live ticket of this client, or 401 ``invalid_ticket`` (one answer for all)."""
    try:
        row = LoginTicket.objects.select_related("user").get(digest=_digest(ticket))
    except LoginTicket.DoesNotExist as exc:
        raise InvalidTicket() from exc
    if (
        row.used_at is not None
        or row.expires_at <= timezone.now()
        or row.failures >= tessera_settings.MFA_MAX_FAILURES
        or row.user_agent != user_agent(request)
        or row.ip != client_ip(request)
        or not row.user.is_active
    ):
        raise InvalidTicket()
    return row


def consume(row: LoginTicket) -> None:
    """Use the ticket up; of concurrent uses exactly one gets through."""
    used = LoginTicket.objects.filter(
        pk=row.pk,
        used_at__isnull=True,
        expires_at__gt=timezone.now(),
        failures__lt=tessera_settings.MFA_MAX_FAILURES,
    ).update(used_at=timezone.now())
    if not used:
        raise InvalidTicket()


def record_failure(row: LoginTicket) -> bool:
    """Count a wrong code against the ticket; whether it may still be used."""
    LoginTicket.objects.filter(pk=row.pk).update(failures=F("failures") + 1)
    failures = LoginTicket.objects.values_list("failures", flat=True).get(pk=row.pk)
    return failures < tessera_settings.MFA_MAX_FAILURES
