"""Opaque bearer tokens: ``tsr1_`` + 43 characters of URL-safe base64 (256 random bits).

- The ``tsr`` prefix lets secret scanners recognise a leaked token and lets the
  authentication class skip foreign tokens without touching the database.
- The digit after it is the format version, so the format can change later while
  tokens of the older version keep working.
- Only ``sha256(token)`` is stored. A plain hash is enough because the token carries
  256 bits from ``secrets``: nobody can search that space, so the slowness or key of an
  HMAC/password hash buys nothing, while a keyless digest survives SECRET_KEY rotation
  without logging everyone out. The digest is looked up through a unique index, so the
  comparison happens inside the index, never byte by byte on a secret in Python.
"""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIX = "tsr"
CURRENT_VERSION = "1"
SECRET_BYTES = 32
_TOKEN_PATTERN = re.compile(r"^tsr(?P<version>[0-9])_(?P<secret>[A-Za-z0-9_-]{43})$")
# Longer than any token we issue; input beyond it is rejected before hashing.
MAX_LENGTH = 64


class MalformedToken(ValueError):
    """A token that claims to be Tessera's (it has the prefix) but is not well formed."""


def generate() -> str:
    return f"{PREFIX}{CURRENT_VERSION}_{secrets.token_urlsafe(SECRET_BYTES)}"


def is_tessera_token(value: str) -> bool:
    return value.startswith(PREFIX)


def digest(token: str) -> str:
    """The stored form of a token. Raises :class:`MalformedToken` for bad input."""
    if len(token) > MAX_LENGTH:
        raise MalformedToken("Token is too long.")
    match = _TOKEN_PATTERN.match(token)
    if match is None:
        raise MalformedToken("Token is malformed.")
    if match["version"] != CURRENT_VERSION:
        raise MalformedToken("Token version is not supported.")
    return hashlib.sha256(token.encode("ascii")).hexdigest()
