"""Which strings DRF or knox issued, and the digests their imported sessions are stored under."""

from __future__ import annotations

import hashlib

from django.conf import settings

DRF_KEY_LENGTH = 40
KNOX_DEFAULT_LENGTH = 64
KNOX_DIGEST_ALGORITHM = "hashlib.sha512"
KNOX_DIGEST_LENGTH = 128
KNOX_TOKEN_KEY_LENGTH = 15  # knox's CONSTANTS.TOKEN_KEY_LENGTH: the clear head it indexes
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
    if token.startswith(prefix) and is_lower_hex(token[len(prefix) :], length):
        digests.append(knox_digest(token))
    return digests
