"""Turning DRF or knox token rows into Tessera sessions, batch by batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from ..conf import tessera_settings
from ..models import Session, SessionKind
from ..services import sessions as session_service


@dataclass(frozen=True)
class LegacyToken:
    """What an import needs to know of one token, whichever library issued it."""

    pk: Any
    user_id: Any
    created: datetime
    expiry: datetime | None
    # None: a format ImportedTokenAuthentication would not recognise, so not imported.
    token_digest: str | None


@dataclass
class ImportReport:
    imported: int = 0
    already_imported: int = 0
    expired: int = 0
    unrecognised: int = 0
    originals_deleted: int = 0
    dry_run: bool = False

    def summary(self, source: str) -> str:
        verb = "Would import" if self.dry_run else "Imported"
        deleted = "would delete" if self.dry_run else "deleted"
        text = (
            f"{verb} {self.imported} {source} token(s); {self.already_imported} already "
            f"imported, {self.expired} skipped as expired, {self.unrecognised} skipped "
            f"as of an unrecognised format; {deleted} {self.originals_deleted} original(s)."
        )
        return f"Dry run, nothing written. {text}" if self.dry_run else text


def import_tokens(
    originals: QuerySet,
    describe: Callable[[Model], LegacyToken],
    *,
    device_name: str,
    batch_size: int,
    dry_run: bool,
    delete_originals: bool,
    no_expiry: bool,
) -> ImportReport:
    """Turn every row of ``originals`` into a Tessera session, batch by batch.

    Each batch is one transaction, so an original is deleted only together with the
    session that replaces it, and an interrupted run is finished by running it again.
    Tokens without an expiry get MAX_TTL from now, or none with ``no_expiry``.
    """
    now = timezone.now()
    max_ttl = tessera_settings.MAX_TTL
    default_expiry = None if no_expiry or not max_ttl else now + max_ttl
    report = ImportReport(dry_run=dry_run)
    last_pk = None
    while True:
        batch = originals.order_by("pk")
        if last_pk is not None:
            batch = batch.filter(pk__gt=last_pk)
        tokens = [describe(row) for row in batch[:batch_size]]
        if not tokens:
            return report
        last_pk = tokens[-1].pk
        with transaction.atomic():
            _import_batch(
                tokens,
                originals.model,
                report,
                now=now,
                default_expiry=default_expiry,
                device_name=device_name,
                dry_run=dry_run,
                delete_originals=delete_originals,
            )


def _import_batch(
    tokens: list[LegacyToken],
    original_model: type[Model],
    report: ImportReport,
    *,
    now: datetime,
    default_expiry: datetime | None,
    device_name: str,
    dry_run: bool,
    delete_originals: bool,
) -> None:
    expired = [t for t in tokens if t.expiry is not None and t.expiry <= now]
    current = [t for t in tokens if t.expiry is None or t.expiry > now]
    usable = [t for t in current if t.token_digest is not None]
    report.expired += len(expired)
    report.unrecognised += len(current) - len(usable)
    stored = set(
        Session.objects.filter(token_digest__in=[t.token_digest for t in usable]).values_list(
            "token_digest", flat=True
        )
    )
    new = [t for t in usable if t.token_digest not in stored]
    if dry_run:
        imported = len(new)
    else:
        imported = session_service.import_sessions(
            [_session_for(t, device_name, default_expiry) for t in new]
        )
    report.imported += imported
    report.already_imported += len(usable) - imported
    if delete_originals:
        # Unrecognised tokens stay: deleting them would log their users out.
        replaced = [t.pk for t in usable + expired]
        if dry_run:
            report.originals_deleted += len(replaced)
        else:
            deleted, _ = original_model._default_manager.filter(pk__in=replaced).delete()
            report.originals_deleted += deleted


def _session_for(token: LegacyToken, device_name: str, default_expiry) -> Session:
    # No idle expiry yet: it starts at the first use through Tessera, so a user who does
    # not open the app within TOKEN_TTL of the import is not logged out by it. Last used
    # is the creation, the only use known; the first request therefore records its own.
    return Session(
        user_id=token.user_id,
        kind=SessionKind.TOKEN,
        token_digest=token.token_digest,
        device_name=device_name,
        created_at=token.created,
        last_used_at=token.created,
        idle_expires_at=None,
        expires_at=token.expiry if token.expiry is not None else default_expiry,
    )
