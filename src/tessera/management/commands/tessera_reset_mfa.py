from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tessera.services.mfa.factors import reset_factors


class Command(BaseCommand):
    help = (
        "For a user who lost their second factors: delete every factor (authenticator app, "
        "recovery codes, passkeys) and pending login ticket, and revoke every session, "
        "personal access tokens included. Their next login needs only the password (and, "
        "where MFA_REQUIRED covers them, sets up a new factor). Check who is asking first."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="The user's login name (USERNAME_FIELD).")

    def handle(self, *args, username: str, **options):
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist as exc:
            raise CommandError(f"No user has the login name {username!r}.") from exc
        factors, sessions = reset_factors(user)
        self.stdout.write(
            f"Removed {factors} second factor(s) of {username!r} and revoked {sessions} session(s)."
        )
