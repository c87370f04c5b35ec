from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from tessera.models import Session
from tessera.services.throttling import clear_expired_counters


class Command(BaseCommand):
    help = (
        "Delete sessions that ended (expired or revoked) more than --keep-days ago, in "
        "batches, and expired throttle counters. Run it daily from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--keep-days", type=int, default=7,
            help="Keep ended sessions this long so users can still see them (default 7).",
        )

    def handle(self, *args, batch_size: int, keep_days: int, **options):
        if batch_size < 1 or keep_days < 0:
            self.stderr.write("--batch-size must be >= 1 and --keep-days >= 0.")
            raise SystemExit(2)
        cutoff = timezone.now() - timedelta(days=keep_days)
        ended = Session.objects.filter(
            Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff) | Q(idle_expires_at__lt=cutoff)
        )
        total = 0
        while True:
            # Small batches keep each DELETE's locks short on a busy table.
            batch = list(ended.values_list("pk", flat=True)[:batch_size])
            if not batch:
                break
            deleted, _ = Session.objects.filter(pk__in=batch).delete()
            total += deleted
        counters = clear_expired_counters()
        self.stdout.write(f"Deleted {total} ended session(s) and {counters} throttle counter(s).")
