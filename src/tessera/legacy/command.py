"""What ``tessera_import_drf_tokens`` and ``tessera_import_knox_tokens`` share."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Model, QuerySet

from .importer import LegacyToken, import_tokens


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
            "--delete-originals",
            action="store_true",
            help="Delete each original token in the transaction that imports it (and "
            "expired ones). Off by default, so the old authentication class keeps working.",
        )
        parser.add_argument(
            "--no-expiry",
            action="store_true",
            help="Tokens that never expired get sessions that never expire (until revoked), "
            "instead of TESSERA['MAX_TTL'] from now.",
        )

    def handle(
        self,
        *args,
        batch_size: int,
        dry_run: bool,
        delete_originals: bool,
        no_expiry: bool,
        **options,
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if not apps.is_installed(self.app_label):
            raise CommandError(
                f"{self.app_label} is not in INSTALLED_APPS, so there are no {self.source} "
                "tokens to read. Keep it installed until the import has run."
            )
        originals, describe = self.source_tokens()
        report = import_tokens(
            originals,
            describe,
            device_name=f"Imported {self.source} token",
            batch_size=batch_size,
            dry_run=dry_run,
            delete_originals=delete_originals,
            no_expiry=no_expiry,
        )
        self.stdout.write(report.summary(self.source))

    def source_tokens(self) -> tuple[QuerySet, Callable[[Model], LegacyToken]]:
        """The original tokens and how to read one; called once the app is known installed."""
        raise NotImplementedError
