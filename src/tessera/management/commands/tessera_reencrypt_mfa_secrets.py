from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tessera.models import Authenticator, AuthenticatorType
from tessera.services.mfa import encryption


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored TOTP secret under the first key of MFA_ENCRYPTION_KEYS, "
        "so the other keys can be dropped. Safe to run again; run it after putting a new "
        "key first (docs/mfa.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--print-default-key",
            action="store_true",
            help="Print the key derived from SIGNING_KEY (used while MFA_ENCRYPTION_KEYS is "
            "None) and stop: list it after a new key to move to explicit keys. It is a "
            "secret.",
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, print_default_key: bool, batch_size: int, **options):
        if print_default_key:
            self.stdout.write(encryption.default_key())
            return
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        secrets = Authenticator.objects.filter(type=AuthenticatorType.TOTP).exclude(secret="")
        rewritten, unreadable = 0, []
        for pk, stored in secrets.values_list("pk", "secret").iterator(chunk_size=batch_size):
            try:
                fresh = encryption.reencrypt(stored)
            except encryption.InvalidToken:
                unreadable.append(str(pk))
                continue
            # Compare-and-set: a secret replaced meanwhile is already under the new key.
            rewritten += Authenticator.objects.filter(pk=pk, secret=stored).update(secret=fresh)
        self.stdout.write(f"Re-encrypted {rewritten} TOTP secret(s).")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} secret(s) open with none of MFA_ENCRYPTION_KEYS "
                f"(authenticators {', '.join(unreadable)}): add the key they were made with."
            )
