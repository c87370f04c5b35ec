"""JSON Web Tokens on PyJWT: a key ring, encoding, and strict decoding.

Decoding rules, each a defence against a known attack:

- The header's ``kid`` selects a key from the configured ring and nothing else; ``jku``,
  ``x5u`` and embedded ``jwk`` headers are never read, so nothing is ever fetched.
- Each key is bound to one algorithm, and decoding allows only that one: ``none`` is
  never accepted and an RSA public key cannot be used as an HMAC secret.
- ``iss`` and ``aud`` are always checked. Their defaults derive from the project, so
  a token minted by another service with the same library is refused out of the box.
- Every registered claim is required, and ``token_type`` keeps access, refresh and
  sliding tokens from standing in for each other.
- Whatever the bytes, the answer is a claims dict or :class:`InvalidJWT`: a segment of
  deeply nested JSON makes Python's parser raise RecursionError, which every caller
  (the authenticator of every Tessera view included) would otherwise answer with a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.signals import setting_changed
from django.utils import timezone

from ..conf import tessera_settings

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA")
SUPPORTED_ALGORITHMS = HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS
ACCESS, REFRESH, SLIDING = "access", "refresh", "sliding"
REGISTERED_CLAIMS = (
    "iss",
    "aud",
    "sub",
    "iat",
    "nbf",
    "exp",
    "jti",
    "token_type",
    "sid",
)
# Far above any token we issue; anything longer is refused before parsing.
MAX_TOKEN_LENGTH = 8192


class InvalidJWT(ValueError):
    """The token is not one this project issued and still honours."""

    def __init__(self, message: str, code: str = "invalid_token") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    signing_key: Any  # secret bytes or private key object; None for verify-only keys
    verifying_key: Any  # secret bytes or public key object

    @property
    def is_asymmetric(self) -> bool:
        return self.algorithm in ASYMMETRIC_ALGORITHMS

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK; HMAC secrets have none and are never published."""
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk = algorithm.to_jwk(self.verifying_key, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def _load_key(entry: dict[str, Any]) -> SigningKey:
    algorithm = entry["algorithm"]
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"Unsupported JWT algorithm {algorithm!r}.")
    if algorithm in HMAC_ALGORITHMS:
        secret = entry["secret"]
        secret = secret.encode() if isinstance(secret, str) else secret
        return SigningKey(entry["kid"], algorithm, secret, secret)
    private_pem, public_pem = entry.get("private_key"), entry.get("public_key")
    private_key = (
        serialization.load_pem_private_key(_bytes(private_pem), password=None)
        if private_pem
        else None
    )
    if public_pem:
        public_key = serialization.load_pem_public_key(_bytes(public_pem))
    elif private_key is not None:
        public_key = private_key.public_key()
    else:
        raise ValueError(f"JWT key {entry['kid']!r} has neither a private nor a public key.")
    return SigningKey(entry["kid"], algorithm, private_key, public_key)


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def default_key_entry() -> dict[str, Any]:
    """One HS256 key derived from SIGNING_KEY, so JWT works with no JWT settings at all.

    The secret is an HMAC of the signing key rather than the key itself, so a JWT secret
    is never the same bytes as the key Django signs sessions and resets with.
    """
    secret = hmac.new(tessera_settings.signing_key, b"tessera.jwt.hs256", hashlib.sha256)
    kid = hashlib.sha256(secret.digest()).hexdigest()[:16]
    return {"kid": kid, "algorithm": "HS256", "secret": secret.digest()}


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, SigningKey]
    active_kid: str

    @property
    def active(self) -> SigningKey:
        return self.keys[self.active_kid]


@lru_cache(maxsize=4)
def _build_ring(entries: tuple, active_kid: str | None) -> KeyRing:
    keys = {entry["kid"]: _load_key(entry) for entry in (dict(e) for e in entries)}
    kid = active_kid or next(iter(keys))
    if keys[kid].signing_key is None:
        raise ValueError(f"The active JWT key {kid!r} has no private key to sign with.")
    return KeyRing(keys=keys, active_kid=kid)


_current_ring: KeyRing | None = None


def key_ring() -> KeyRing:
    """The configured ring, parsed once per configuration (PEM parsing is slow).

    Every request with a JWT asks for it, so the answer is kept until the settings change.
    """
    global _current_ring
    ring = _current_ring
    if ring is None:
        entries = tessera_settings.JWT_KEYS or [default_key_entry()]
        frozen = tuple(tuple(sorted(entry.items())) for entry in entries)
        ring = _current_ring = _build_ring(frozen, tessera_settings.JWT_ACTIVE_KID)
    return ring


def issuer() -> str:
    return tessera_settings.JWT_ISSUER or f"urn:tessera:{settings.SETTINGS_MODULE}"


def audience() -> str:
    return tessera_settings.JWT_AUDIENCE or f"urn:tessera:{settings.SETTINGS_MODULE}:api"


def new_jti() -> str:
    return secrets.token_urlsafe(32)


def successor_jti(parent_jti: str) -> str:
    """The jti of a refresh token's successor, derived so it can be issued again."""
    mac = hmac.new(tessera_settings.signing_key, b"tessera.jwt.successor:", hashlib.sha256)
    mac.update(parent_jti.encode())
    return mac.hexdigest()


def jti_digest(jti: str) -> str:
    return hashlib.sha256(jti.encode()).hexdigest()


def session_lookup_digest(session_id: Any) -> str:
    """Where a JWT session sits in the session table's digest index and cache.

    JWT sessions have no opaque token; this gives them a lookup key in the same index
    so revocation and caching work exactly as for opaque tokens. The value is not a
    secret, and cannot match an opaque token's digest (different preimages).
    """
    return hashlib.sha256(f"tessera.jwt.session:{session_id}".encode()).hexdigest()


def encode(
    claims: dict[str, Any],
    *,
    token_type: str,
    issued_at: datetime,
    expires_at: datetime,
    jti: str | None = None,
) -> str:
    key = key_ring().active
    payload = {
        **claims,
        "iss": issuer(),
        "aud": audience(),
        "iat": int(issued_at.timestamp()),
        "nbf": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": jti or new_jti(),
        "token_type": token_type,
    }
    return jwt.encode(
        payload, key.signing_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": "JWT"}
    )


def decode(token: str, *, token_types: tuple[str, ...], verify_exp: bool = True) -> dict:
    """The verified claims of ``token``, or InvalidJWT; see the module docstring."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidJWT("Token is too long.")
    ring = key_ring()
    now = timezone.now().timestamp()
    leeway = tessera_settings.JWT_LEEWAY.total_seconds()
    # Only tokens checked for expiry are remembered: those are the ones a request
    # presents again and again, and their entry can expire with them.
    remembered = verify_exp and tessera_settings.JWT_VERIFIED_CACHE_SIZE > 0
    digest = hashlib.sha256(token.encode()).digest() if remembered else b""
    claims = _verified_tokens.get(digest, ring, now - leeway) if remembered else None
    if claims is None:
        claims = _verify_signature(token, ring)
        if remembered:
            _verified_tokens.put(digest, ring, claims)
    _check_times(claims, verify_exp, now, leeway)
    if claims.get("token_type") not in token_types:
        raise InvalidJWT("Token has the wrong type.", "wrong_token_type")
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("sid"), str):
        raise InvalidJWT("Token is invalid.")
    return dict(claims)


class VerifiedTokens:
    """Claims of tokens whose signature this process verified, by token digest.

    An entry is tied to the key ring it was verified with: a key removed from the
    settings takes its tokens' entries with it. Entries stop being used at the token's
    ``exp``; when the map is full the oldest half goes. Expiry, ``nbf`` and the token type
    are still checked on every use, and revocation is a matter for the session lookup.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[KeyRing, dict]] = {}

    def get(self, digest: bytes, ring: KeyRing, expired_before: float) -> dict | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] is not ring:
            return None
        claims = entry[1]
        if claims["exp"] <= expired_before:
            self._entries.pop(digest, None)
            return None
        return claims

    def put(self, digest: bytes, ring: KeyRing, claims: dict) -> None:
        with self._lock:
            if len(self._entries) >= tessera_settings.JWT_VERIFIED_CACHE_SIZE:
                for old in list(self._entries)[: len(self._entries) // 2 + 1]:
                    # get() may have dropped it meanwhile: it pops expired entries unlocked.
                    self._entries.pop(old, None)
            self._entries[digest] = (ring, claims)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def forget_after_fork(self) -> None:
        # The parent's lock may have been held by another thread at the fork.
        self._lock = threading.Lock()


_verified_tokens = VerifiedTokens()
os.register_at_fork(after_in_child=_verified_tokens.forget_after_fork)


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    # The keys, issuer and audience come from these settings.
    global _current_ring
    if setting in ("TESSERA", "SECRET_KEY", "SETTINGS_MODULE"):
        _current_ring = None
        _verified_tokens.clear()


setting_changed.connect(_settings_changed)


def _verify_signature(token: str, ring: KeyRing) -> dict:
    """Signature, issuer, audience and the presence of every registered claim."""
    kid = _unverified_kid(token)
    key = ring.keys.get(kid) if kid is not None else None
    if key is None:
        raise InvalidJWT("Token was signed with an unknown key.")
    try:
        claims = jwt.decode(
            token,
            key.verifying_key,
            algorithms=[key.algorithm],
            audience=audience(),
            issuer=issuer(),
            options={
                "require": list(REGISTERED_CLAIMS),
                # Times are checked below against Django's clock, which tests can move.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except (jwt.PyJWTError, RecursionError) as exc:
        # Older PyJWT releases (2.10, the oldest we allow, among them) let a RecursionError
        # from json out of their own parse.
        raise InvalidJWT("Token is invalid.") from exc
    if not isinstance(claims.get("exp"), int) or isinstance(claims.get("exp"), bool):
        raise InvalidJWT("Token is invalid.")
    return claims


def _unverified_kid(token: str) -> str | None:
    """The header's ``kid``, read without PyJWT's full parse of all three segments.

    It only chooses a key from the ring; ``jwt.decode`` then parses the token itself and
    verifies the signature with that key and its one algorithm, so a header read
    differently here could at most pick a key that fails to verify.
    """
    head = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise InvalidJWT("Token is malformed.") from exc
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _check_times(claims: dict, verify_exp: bool, now: float, leeway: float) -> None:
    times = [claims.get(name) for name in ("exp", "nbf", "iat")]
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in times):
        raise InvalidJWT("Token is invalid.")
    expires, not_before, issued = times
    if verify_exp and expires <= now - leeway:
        raise InvalidJWT("Token has expired.", "token_expired")
    if not_before > now + leeway or issued > now + leeway:
        raise InvalidJWT("Token is not valid yet.")


def looks_like_jwt(value: str) -> bool:
    """Cheap shape test so foreign credentials go to the next authenticator unparsed."""
    return value.count(".") == 2
