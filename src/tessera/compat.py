"""Tokens issued by DRF's ``authtoken`` or by knox, carried over into Tessera sessions.

A project moving to Tessera runs ``tessera_import_drf_tokens`` or
``tessera_import_knox_tokens`` once; each existing token becomes a Tessera Session and
:class:`ImportedTokenAuthentication` keeps accepting the old token string, so no client
has to log in again. From then on the old tokens are ordinary sessions: listed,
revoked by logout, logout-all and password changes, expired, cached, like any other.

Only digests are stored, never a usable token:

- DRF keeps its keys in clear, so the import stores ``sha256(key)``, as Tessera stores
  its own tokens: 160 random bits are as far beyond search as Tessera's 256, so a plain
  digest is enough here too.
- knox keeps only ``sha512(token)`` (``SECURE_HASH_ALGORITHM``, its default); the clear
  token cannot be recovered, so the import copies that digest and authentication
  computes the same one.

A token of a legacy shape that no session has answers ``None``, not 401: during a
migration a token minted by the old login view after the import ran is still accepted
by the library's own class further down DEFAULT_AUTHENTICATION_CLASSES. A token that a
session has but that is revoked or expired raises 401, so a logout through Tessera
cannot be undone by the old class finding the original row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone
from rest_framework.settings import api_settings

from .authentication import TokenAuthentication
from .conf import tessera_settings
from .models import Session, SessionKind
from .services import sessions as session_service

DRF_KEY_LENGTH = 40
KNOX_DEFAULT_LENGTH = 64
KNOX_DIGEST_ALGORITHM = "hashlib.sha512"
KNOX_DIGEST_LENGTH = 128
KNOX_TOKEN_KEY_LENGTH = 15  # knox's CONSTANTS.TOKEN_KEY_LENGTH: the clear head it indexes
LEGACY_CLASSES = frozenset(
    {"rest_framework.authentication.TokenAuthentication", "knox.auth.TokenAuthentication"}
)
_HEX_DIGITS = frozenset("0123456789abcdef")


def is_lower_hex(value: str, length: int) -> bool:
    """Lower case only, as both libraries mint them: anything else was never issued."""
    return len(value) == length and _HEX_DIGITS.issuperset(value)


def knox_token_format() -> tuple[str, int]:
    """knox's ``(TOKEN_PREFIX, hex length)``, read from ``REST_KNOX`` like knox reads it.

    Read from settings, not from knox, so imported tokens keep working once knox is
    uninstalled (keep those ``REST_KNOX`` keys as long as imported tokens live).
    """
    knox = getattr(settings, "REST_KNOX", None) or {}
    prefix = knox.get("TOKEN_PREFIX", "")
    # knox draws length // 2 random bytes and writes each as two hex digits.
    length = 2 * (int(knox.get("AUTH_TOKEN_CHARACTER_LENGTH", KNOX_DEFAULT_LENGTH)) // 2)
    return prefix, length


def drf_digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def knox_digest(token: str) -> str:
    return hashlib.sha512(token.encode("ascii")).hexdigest()


def legacy_digests(token: str) -> list[str]:
    """The digests an imported session for ``token`` could be stored under.

    Empty for anything DRF or knox never issued, so JWTs and other foreign tokens cost
    no query. With knox's defaults (64 digits) the shapes cannot overlap and there is
    at most one digest; only a knox configured for 40 digits without a prefix makes a
    string ambiguous.
    """
    digests = []
    if is_lower_hex(token, DRF_KEY_LENGTH):
        digests.append(drf_digest(token))
    prefix, length = knox_token_format()
    if token.startswith(prefix) and is_lower_hex(token[len(prefix):], length):
        digests.append(knox_digest(token))
    return digests


class ImportedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <old DRF key or knox token>`` for imported tokens.

    List it right after :class:`tessera.authentication.TokenAuthentication` and before
    any class of the old library (system check ``tessera.E030``). Once it is listed,
    Tessera's own endpoints accept imported tokens too, so old clients can log out.
    """

    def handles(self, token: str) -> bool:
        return bool(legacy_digests(token))

    def authenticate_credentials(self, token: str):
        for token_digest in legacy_digests(token):
            try:
                session = session_service.authenticate_digest(token_digest)
            except session_service.InvalidToken:
                continue
            return session.user, session
        return None


def imported_token_authentication() -> type[ImportedTokenAuthentication] | None:
    """The project's ImportedTokenAuthentication class, if its API accepts imported tokens."""
    for authentication_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authentication_class, ImportedTokenAuthentication):
            return authentication_class
    return None


# --- Import -------------------------------------------------------------------------


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
                tokens, originals.model, report, now=now, default_expiry=default_expiry,
                device_name=device_name, dry_run=dry_run, delete_originals=delete_originals,
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
        Session.objects.filter(token_digest__in=[t.token_digest for t in usable])
        .values_list("token_digest", flat=True)
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


class ImportTokensCommand(BaseCommand):
    """What both import commands share: options, checks, the run and its summary."""

    source = ""  # "DRF" or "knox", for messages and the device name
    app_label = ""  # the app that must be installed for there to be tokens to read

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Tokens per transaction.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would happen; write nothing."
        )
        parser.add_argument(
            "--delete-originals", action="store_true",
            help="Delete each original token in the transaction that imports it (and "
            "expired ones). Off by default, so the old authentication class keeps working.",
        )
        parser.add_argument(
            "--no-expiry", action="store_true",
            help="Tokens that never expired get sessions that never expire (until revoked), "
            "instead of TESSERA['MAX_TTL'] from now.",
        )

    def handle(self, *args, batch_size: int, dry_run: bool, delete_originals: bool,
               no_expiry: bool, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if not apps.is_installed(self.app_label):
            raise CommandError(
                f"{self.app_label} is not in INSTALLED_APPS, so there are no {self.source} "
                "tokens to read. Keep it installed until the import has run."
            )
        originals, describe = self.source_tokens()
        report = import_tokens(
            originals, describe, device_name=f"Imported {self.source} token",
            batch_size=batch_size, dry_run=dry_run, delete_originals=delete_originals,
            no_expiry=no_expiry,
        )
        self.stdout.write(report.summary(self.source))

    def source_tokens(self) -> tuple[QuerySet, Callable[[Model], LegacyToken]]:
        """The original tokens and how to read one; called once the app is known installed."""
        raise NotImplementedError
