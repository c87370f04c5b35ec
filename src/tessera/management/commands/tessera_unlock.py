from __future__ import annotations

import ipaddress

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.management.base import BaseCommand, CommandError

from tessera.conf import tessera_settings
from tessera.errors import ServiceUnavailable
from tessera.services.lockout import unlock


class Command(BaseCommand):
    help = (
        "Forget the failed logins counted against an account: its own lockout bucket, its "
        "known devices' and its per-address buckets (with --ip, that address's only, and "
        "the address's own bucket). The next login is checked at once. Check who is asking "
        "first: this also lets a guesser try again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "username", help="The login name (USERNAME_FIELD) the failures were counted on."
        )
        parser.add_argument("--ip", help="Only this client address (and its own bucket).")

    def handle(self, *args, username: str, ip: str | None = None, **options):
        if tessera_settings.THROTTLE_BACKEND != "database" and isinstance(
            caches[tessera_settings.CACHE_ALIAS], LocMemCache
        ):
            # Each process has its own LocMemCache: this command's is not the server's.
            raise CommandError(
                f"The lockout buckets are in a per-process cache (LocMemCache, "
                f"{tessera_settings.CACHE_ALIAS!r}): this command cannot reach the server's. "
                "Use the admin's 'unlock' action, or restart the server."
            )
        if ip is not None:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError as exc:
                raise CommandError(f"{ip!r} is not an IP address.") from exc
        try:
            cleared = unlock(username, ip)
        except ServiceUnavailable as exc:
            raise CommandError("The throttle store is unreachable; nothing was cleared.") from exc
        where = f" from {ip}" if ip else ""
        self.stdout.write(f"Unlocked {username!r}{where}: {cleared} lockout bucket(s) cleared.")
