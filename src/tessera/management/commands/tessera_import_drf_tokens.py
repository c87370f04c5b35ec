from __future__ import annotations

from tessera.legacy.command import ImportTokensCommand
from tessera.legacy.digests import DRF_KEY_LENGTH, drf_digest, is_lower_hex
from tessera.legacy.importer import LegacyToken


class Command(ImportTokensCommand):
    help = (
        "Turn DRF authtoken keys into Tessera sessions stored as SHA-256 digests. The old "
        "keys keep working through tessera.authentication.ImportedTokenAuthentication. Safe to "
        "run again: tokens already imported are skipped."
    )
    source = "DRF"
    app_label = "rest_framework.authtoken"

    def source_tokens(self):
        from rest_framework.authtoken.models import Token

        return Token.objects.all(), describe


def describe(token) -> LegacyToken:
    # A key set by hand in another format would never be recognised at authentication.
    recognised = is_lower_hex(token.key, DRF_KEY_LENGTH)
    return LegacyToken(
        pk=token.pk,
        user_id=token.user_id,
        created=token.created,
        expiry=None,
        token_digest=drf_digest(token.key) if recognised else None,
    )
