from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from tessera.legacy.command import ImportTokensCommand
from tessera.legacy.digests import (
    KNOX_DIGEST_ALGORITHM,
    KNOX_DIGEST_LENGTH,
    KNOX_TOKEN_KEY_LENGTH,
    is_lower_hex,
    knox_token_format,
)
from tessera.legacy.importer import LegacyToken


class Command(ImportTokensCommand):
    help = (
        "Turn knox tokens into Tessera sessions, copying knox's SHA-512 digest (the clear "
        "token is not stored anywhere). The old tokens keep working through "
        "tessera.authentication.ImportedTokenAuthentication; expiry and creation time are kept, "
        "expired tokens skipped. Safe to run again."
    )
    source = "knox"
    app_label = "knox"

    def source_tokens(self):
        from knox.models import get_token_model

        algorithm = (getattr(settings, "REST_KNOX", None) or {}).get(
            "SECURE_HASH_ALGORITHM", KNOX_DIGEST_ALGORITHM
        )
        if algorithm != KNOX_DIGEST_ALGORITHM:
            raise CommandError(
                f"REST_KNOX['SECURE_HASH_ALGORITHM'] is {algorithm!r}; imported knox tokens "
                f"can be verified only when knox hashed them with {KNOX_DIGEST_ALGORITHM!r}, "
                "its default."
            )
        return get_token_model()._default_manager.all(), describe


def describe(auth_token) -> LegacyToken:
    return LegacyToken(
        pk=auth_token.pk,
        user_id=auth_token.user_id,
        created=auth_token.created,
        expiry=auth_token.expiry,
        token_digest=auth_token.digest if has_known_format(auth_token) else None,
    )


def has_known_format(auth_token) -> bool:
    """Whether the clear head knox keeps (``token_key``) fits today's TOKEN_PREFIX and length.

    Tokens minted with another prefix (knox allows one per call) would never be
    recognised at authentication, so they are reported rather than imported.
    """
    prefix, length = knox_token_format()
    token_key = auth_token.token_key
    digits = min(length, KNOX_TOKEN_KEY_LENGTH - len(prefix))
    return (
        token_key.startswith(prefix)
        and is_lower_hex(token_key[len(prefix) :], digits)
        and is_lower_hex(auth_token.digest, KNOX_DIGEST_LENGTH)
    )
