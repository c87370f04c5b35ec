"""TOTP secrets at rest: Fernet encryption with the keys of MFA_ENCRYPTION_KEYS.

The first key encrypts and every key decrypts, so a new key can be put first and the
stored secrets re-encrypted under it (``tessera_reencrypt_mfa_secrets``) before the old
key is dropped. Without the setting, one key is derived from SIGNING_KEY with HKDF: it
works out of the box, and changing SIGNING_KEY then makes every stored secret unreadable
(docs/mfa.md says how to move to explicit keys first).
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ...conf import tessera_settings

__all__ = ["InvalidToken", "decrypt", "default_key", "encrypt", "reencrypt"]


def default_key() -> str:
    """The Fernet key derived from SIGNING_KEY, used when MFA_ENCRYPTION_KEYS is None."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"tessera.mfa.fernet"
    ).derive(tessera_settings.signing_key)
    return base64.urlsafe_b64encode(derived).decode()


def _keys() -> tuple[str | bytes, ...]:
    return tuple(tessera_settings.MFA_ENCRYPTION_KEYS or (default_key(),))


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str | bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(secret: str) -> str:
    return _fernet(_keys()).encrypt(secret.encode()).decode()


def decrypt(stored: str) -> str:
    """The clear secret; raises InvalidToken when no configured key opens it."""
    return _fernet(_keys()).decrypt(stored.encode()).decode()


def reencrypt(stored: str) -> str:
    """``stored`` encrypted under the first key (unchanged in meaning)."""
    return _fernet(_keys()).rotate(stored.encode()).decode()
