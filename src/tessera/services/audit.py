"""The audit trail: :func:`record` writes every :class:`~tessera.models.SecurityEvent`.

Events come from the receivers in :mod:`tessera.audit_receivers`, so services send their
signals and never call this module for the sake of the trail. Three rules hold here:

- Nothing secret is stored: each type has a short list of ``detail`` keys, anything
  else is dropped, and values are cut to a few hundred characters. An identifier that
  names no account is kept only as a keyed hash.
- A success is written in the caller's transaction, so a rolled-back logout leaves no
  "session ended". A failure (a wrong password, a refused code) must survive the
  rollback of the request that reports it, so inside a transaction it is written once
  that transaction commits or, failing that, once the response has been sent.
- The trail never decides the outcome of a request: an event that cannot be written is
  logged and dropped.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.signals import request_finished
from django.db import DatabaseError, transaction
from django.utils import timezone

from ..conf import tessera_settings
from ..models import EventOutcome, EventType, SecurityEvent, identity_key
from .client import client_ip, user_agent

logger = logging.getLogger("tessera")

_METHOD = {"method"}
ALLOWED_DETAIL: dict[str, frozenset[str]] = {
    EventType.LOGIN_SUCCEEDED: frozenset({"kind", "amr", "device_name", "provider"}),
    EventType.LOGIN_FAILED: frozenset({"reason"}),
    EventType.LOCKED_OUT: frozenset({"scope", "retry_after"}),
    EventType.MFA_CHALLENGED: frozenset(),
    EventType.MFA_FAILED: frozenset({"method", "error"}),
    EventType.MFA_USED: frozenset(_METHOD | {"name"}),
    EventType.MFA_ENROLMENT_STARTED: frozenset(_METHOD | {"name"}),
    EventType.MFA_ADDED: frozenset(_METHOD | {"name"}),
    EventType.MFA_REMOVED: frozenset(_METHOD | {"name"}),
    EventType.RECOVERY_CODES_GENERATED: frozenset(),
    EventType.RECOVERY_CODE_USED: frozenset({"remaining"}),
    EventType.SESSION_REVOKED: frozenset({"reason", "kind", "device_name"}),
    EventType.REFRESH_TOKEN_REUSED: frozenset({"kind"}),
    EventType.PASSWORD_CHANGED: frozenset(),
    EventType.PASSWORD_RESET: frozenset(),
    EventType.EMAIL_CHANGED: frozenset({"old_email", "new_email"}),
    EventType.EMAIL_VERIFIED: frozenset({"email"}),
    EventType.REGISTERED: frozenset(),
    EventType.TOKEN_CREATED: frozenset({"name", "scopes"}),
    EventType.SOCIAL_LINKED: frozenset({"provider"}),
    EventType.SOCIAL_UNLINKED: frozenset({"provider"}),
    EventType.ADMIN_ACTION: frozenset({"action", "admin", "count"}),
    EventType.LOGIN_REPORTED: frozenset({"all_sessions", "revoked"}),
}
MAX_TEXT = 200
MAX_ITEMS = 20

# The Django request of the Tessera view being served, so that events sent from deep in
# a service (a revocation) still carry the client's address and user agent.
current_request: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "tessera_audit_request", default=None
)
_deferred = threading.local()


def record(
    event_type: str,
    *,
    user=None,
    identifier: str | None = None,
    session=None,
    request=None,
    outcome: str = EventOutcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record one event, unless AUDIT_EVENTS is off.

    ``identifier`` is what someone typed to name an account; it is stored only as
    :func:`identifier_digest`. ``request`` defaults to the request being served.
    """
    if not tessera_settings.AUDIT_EVENTS:
        return
    request = request if request is not None else current_request.get()
    event = SecurityEvent(
        user=user,
        identifier_digest=identifier_digest(identifier) if identifier else "",
        type=event_type,
        outcome=outcome,
        session_id=getattr(session, "pk", None),
        ip=client_ip(request) if request is not None else None,
        user_agent=user_agent(request) if request is not None else "",
        created_at=timezone.now(),
        detail=clean_detail(event_type, detail or {}),
    )
    if outcome == EventOutcome.FAILURE and transaction.get_connection().in_atomic_block:
        _defer(event)
    else:
        _save([event])


def identifier_digest(identifier: str) -> str:
    """A keyed hash of ``identifier`` in its compared form: an administrator who types
    the identifier finds its events, a copy of the table does not reveal it."""
    return hmac.new(
        tessera_settings.signing_key,
        b"tessera.audit.identifier:" + identity_key(identifier).encode("utf-8", "surrogatepass"),
        "sha256",
    ).hexdigest()


def clean_detail(event_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The part of ``detail`` the type allows, with every value small and plain."""
    allowed = ALLOWED_DETAIL.get(event_type, frozenset())
    dropped = sorted(set(detail) - allowed)
    if dropped:
        logger.warning("Audit event %s: detail keys %s are not recorded.", event_type, dropped)
    return {key: _plain(value) for key, value in detail.items() if key in allowed}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, Iterable):
        return [str(item)[:MAX_TEXT] for item in list(value)[:MAX_ITEMS]]
    return str(value)[:MAX_TEXT]


def user_named(identifier: str | None):
    """The account ``identifier`` names by its login field, if any: failed attempts on an
    existing account belong to its owner's history."""
    if not identifier:
        return None
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    return user_model._default_manager.filter(**{field: identifier}).first()


def _save(events: list[SecurityEvent]) -> None:
    try:
        # A savepoint: on PostgreSQL a failed INSERT must not abort the caller's work.
        with transaction.atomic():
            SecurityEvent.objects.bulk_create(events)
    except DatabaseError:
        logger.error("Audit events not recorded: %s", [e.type for e in events], exc_info=True)


def _defer(event: SecurityEvent) -> None:
    pending = getattr(_deferred, "events", None)
    if pending is None:
        pending = _deferred.events = []
    pending.append(event)
    transaction.on_commit(flush_deferred, robust=True)


def flush_deferred(**kwargs: Any) -> None:
    """Write the failures waiting for their transaction: at its commit, or after the
    response when the request's transaction was rolled back."""
    pending = getattr(_deferred, "events", None)
    if pending:
        _deferred.events = []
        _save(pending)


request_finished.connect(flush_deferred, dispatch_uid="tessera-audit-flush")


def events_of(user):
    """The user's own events, newest first."""
    return SecurityEvent.objects.filter(user=user).order_by("-created_at", "-id")


def delete_expired(now: datetime | None = None, batch_size: int = 1000) -> int:
    """Delete events older than AUDIT_RETENTION, in batches; how many went."""
    retention = tessera_settings.AUDIT_RETENTION
    if retention is None:
        return 0
    cutoff = (now or timezone.now()) - retention
    expired = SecurityEvent.objects.filter(created_at__lt=cutoff)
    total = 0
    while batch := list(expired.values_list("pk", flat=True)[:batch_size]):
        deleted, _ = SecurityEvent.objects.filter(pk__in=batch).delete()
        total += deleted
    return total
