from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q, QuerySet
from django.utils import timezone

from tessera import session_cache
from tessera.conf import tessera_settings
from tessera.models import (
    EmailVerificationKey,
    ForgottenDevice,
    LoginTicket,
    PendingCacheInvalidation,
    RefreshToken,
    Session,
    SessionKind,
    SocialLogin,
    UsedNoticeLink,
    WebAuthnChallenge,
)
from tessera.services.audit import delete_expired as delete_expired_events
from tessera.services.buckets import clear_expired as clear_expired_buckets


class Command(BaseCommand):
    help = (
        "Delete what can no longer be used, in batches: sessions that ended (expired or "
        "revoked) more than --keep-days ago, expired refresh tokens, used or expired "
        "e-mail verification keys, login tickets, passkey challenges and social sign-ins, "
        "used new-device links old enough to have expired, records of forgotten devices "
        "whose identifiers have all expired, expired "
        "throttle counters and audit events older than AUDIT_RETENTION; then write to "
        "the cache the invalidations an outage left pending. Run it daily from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--keep-days",
            type=int,
            default=7,
            help="Keep ended sessions this long so users can still see them (default 7).",
        )

    def handle(self, *args, batch_size: int, keep_days: int, **options):
        if batch_size < 1 or keep_days < 0:
            raise CommandError("--batch-size must be at least 1 and --keep-days at least 0.")
        now = timezone.now()
        cutoff = now - timedelta(days=keep_days)
        sessions = delete_in_batches(
            Session.objects.filter(
                Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff) | Q(idle_expires_at__lt=cutoff)
            )
            # An external issuer's token that is still valid would open a new session
            # once its ended one is gone: the row stays until the token expires.
            .exclude(kind=SessionKind.EXTERNAL, expires_at__gte=now),
            batch_size,
        )
        # An expired refresh token fails decoding before its row is read, so the row
        # serves no reuse detection any more.
        refresh_tokens = delete_in_batches(
            RefreshToken.objects.filter(expires_at__lt=now), batch_size
        )
        keys = delete_in_batches(
            EmailVerificationKey.objects.filter(Q(used_at__isnull=False) | Q(expires_at__lt=now)),
            batch_size,
        )
        tickets = delete_in_batches(
            LoginTicket.objects.filter(Q(used_at__isnull=False) | Q(expires_at__lt=now)),
            batch_size,
        )
        challenges = delete_in_batches(
            WebAuthnChallenge.objects.filter(Q(used_at__isnull=False) | Q(expires_at__lt=now)),
            batch_size,
        )
        # A sign-in is over once its state expired unused or its code expired or was used.
        social_logins = delete_in_batches(
            SocialLogin.objects.filter(
                Q(expires_at__lt=now, code_digest__isnull=True)
                | Q(code_used_at__isnull=False)
                | Q(code_expires_at__lt=now)
            ),
            batch_size,
        )
        # A link was sent before it was used: one used longer ago than a link lives is
        # expired, and refused for that before its use is looked up.
        notice_links = delete_in_batches(
            UsedNoticeLink.objects.filter(
                used_at__lt=now - tessera_settings.NEW_DEVICE_NOTICE_LINK_TTL
            ),
            batch_size,
        )
        # Every identifier a row forgets was issued before it, so is expired a lifetime
        # later; the day's margin covers a login that was being answered meanwhile.
        forgotten_devices = delete_in_batches(
            ForgottenDevice.objects.filter(
                forgotten_at__lt=now - tessera_settings.DEVICE_LIFETIME - timedelta(days=1)
            ),
            batch_size,
        )
        counters = clear_expired_buckets()
        events = delete_expired_events(now, batch_size)
        self.stdout.write(
            f"Deleted {sessions} ended session(s), {refresh_tokens} expired refresh token(s), "
            f"{keys} used or expired e-mail key(s), {tickets} used or expired login "
            f"ticket(s), {challenges} used or expired passkey challenge(s), {social_logins} "
            f"finished or expired social sign-in(s), {notice_links} "
            f"expired new-device link(s), {forgotten_devices} expired forgotten-device "
            f"record(s), {counters} "
            f"throttle counter(s) and {events} audit event(s) older than AUDIT_RETENTION."
        )
        self.replay_cache_invalidations()

    def replay_cache_invalidations(self) -> None:
        """The backstop for an outbox no request replayed: e.g. left by another cron job."""
        pending = PendingCacheInvalidation.objects.count()
        if session_cache.replay_pending():
            if pending:
                self.stdout.write(f"Wrote {pending} pending cache invalidation(s).")
        else:
            self.stderr.write(
                "The session cache is unreachable: pending cache invalidations are kept "
                "and will be written when it answers again."
            )


def delete_in_batches(queryset: QuerySet, batch_size: int) -> int:
    """Small batches keep each DELETE's locks short on a busy table."""
    total = 0
    while batch := list(queryset.values_list("pk", flat=True)[:batch_size]):
        deleted, _ = queryset.model.objects.filter(pk__in=batch).delete()
        total += deleted
    return total
