"""Access tokens of external issuers (``TRUSTED_ISSUERS``): their keys and strict decoding.

Decoding rules, besides those of :mod:`tessera.tokens.jwt`:

- The unverified ``iss`` only chooses which configured issuer's keys to try; the
  signature, ``iss`` and the audience are then verified against that issuer alone.
- Keys come only from the issuer's configured ``jwks_uri`` or the one its discovery
  document names: ``jku``, ``x5u`` and embedded ``jwk`` headers are never read.
- Only the entry's asymmetric algorithms are allowed, and only those of the key's type,
  so neither ``none`` nor an HMAC signed with a public key can pass.

Keys are kept per process and in Tessera's cache (shared by the processes), fetched again
after ``EXTERNAL_JWKS_MAX_AGE`` or for an unknown ``kid``, at most once per
``EXTERNAL_JWKS_REFRESH_INTERVAL``; a failed fetch keeps the keys already held.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.core.cache import caches
from django.core.signals import setting_changed
from django.utils import timezone

from ..conf import tessera_settings
from .jwt import InvalidJWT

logger = logging.getLogger("tessera")

ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
# Other issuers' tokens grow with their roles and groups; anything longer is refused unparsed.
MAX_TOKEN_LENGTH = 16 * 1024
# Far above any real key set or discovery document; a larger answer is refused unread.
MAX_DOCUMENT_BYTES = 256 * 1024
_SHARED_KEY_PREFIX = "tessera:jwks:"


class IssuerUnreachable(Exception):
    """No keys are held for the issuer and they could not be fetched."""


@dataclass(frozen=True)
class ExternalToken:
    """``request.auth`` of a request authenticated by an external issuer's token.

    ``roles`` and ``scopes`` are None when the issuer's entry maps no claim for them:
    roles then come from the user's groups, scopes from those the user holds.
    """

    issuer: str
    claims: dict[str, Any]
    roles: frozenset[str] | None = None
    scopes: frozenset[str] | None = None


def trusted_issuers() -> dict[str, dict[str, Any]]:
    """The configured entries by issuer."""
    return {entry["issuer"]: entry for entry in tessera_settings.TRUSTED_ISSUERS}


def key_type_of(algorithm: str) -> str:
    return _KEY_TYPES[algorithm[:2]]


def is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1")


def acceptable_url(url: Any) -> bool:
    """An https URL, or http on this machine only (for development and tests)."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return bool(parts.hostname) and (
        parts.scheme == "https" or (parts.scheme == "http" and is_loopback(url))
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off the configured URL, or to plain HTTP: it is a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def fetch_json(url: str) -> Any:
    """The JSON document at ``url``, or IssuerUnreachable; never follows other URLs."""
    if not acceptable_url(url):
        raise IssuerUnreachable(f"{url!r} is not an https URL.")
    timeout = tessera_settings.EXTERNAL_JWKS_TIMEOUT.total_seconds()
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with _opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise IssuerUnreachable(f"{url}: {exc}") from exc
    if len(body) > MAX_DOCUMENT_BYTES:
        raise IssuerUnreachable(f"{url}: the document is too large.")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise IssuerUnreachable(f"{url}: not JSON.") from exc


# With no keys held, a failed fetch is tried again after this many seconds at the soonest.
NO_KEYS_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class VerificationKey:
    key: Any
    key_type: str
    algorithm: str | None  # the JWK's "alg", when it names one


@dataclass
class IssuerKeys:
    """The keys of one issuer as this process holds them; times are ``time.time()``."""

    issuer: str
    jwks_uri: str | None
    keys: dict[str, VerificationKey] = field(default_factory=dict)
    fetched_at: float = 0.0
    last_failure: float = float("-inf")
    last_kid_refresh: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self, kid: str) -> VerificationKey | None:
        """The key ``kid``, fetching the set when it is stale or the kid is unknown."""
        if kid in self.keys and not self._stale():
            return self.keys[kid]
        with self.lock:
            if kid not in self.keys or self._stale():
                self._refresh(for_unknown_kid=bool(self.keys) and kid not in self.keys)
        if not self.keys:
            raise IssuerUnreachable(f"No keys of {self.issuer} could be fetched.")
        return self.keys.get(kid)

    def _stale(self) -> bool:
        max_age = tessera_settings.EXTERNAL_JWKS_MAX_AGE.total_seconds()
        return time.time() - self.fetched_at >= max_age

    def _refresh(self, *, for_unknown_kid: bool) -> None:
        if self._adopt_shared():
            return
        now = time.time()
        interval = tessera_settings.EXTERNAL_JWKS_REFRESH_INTERVAL.total_seconds()
        backoff = interval if self.keys else NO_KEYS_RETRY_SECONDS
        if now - self.last_failure < backoff:
            return
        if for_unknown_kid:
            # Anyone can send a made-up kid: those fetches are rationed.
            if now - self.last_kid_refresh < interval:
                return
            self.last_kid_refresh = now
        try:
            document = fetch_json(self._jwks_uri())
            keys = parse_key_set(document)
        except IssuerUnreachable as exc:
            self.last_failure = now
            logger.warning("Keys of issuer %s not refreshed: %s", self.issuer, exc)
            return
        self.keys, self.fetched_at = keys, now
        _share(self.issuer, now, document)

    def _jwks_uri(self) -> str:
        if self.jwks_uri is None:
            discovery = fetch_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
            if not isinstance(discovery, dict) or discovery.get("issuer") != self.issuer:
                raise IssuerUnreachable(f"The discovery document of {self.issuer} is not its own.")
            jwks_uri = discovery.get("jwks_uri")
            if not acceptable_url(jwks_uri):
                raise IssuerUnreachable(f"The discovery document of {self.issuer} has no jwks_uri.")
            self.jwks_uri = jwks_uri
        return self.jwks_uri

    def _adopt_shared(self) -> bool:
        """Takes the set another process fetched after ours, if it is still fresh."""
        shared = _shared(self.issuer)
        if shared is None:
            return False
        fetched_at, document = shared
        if fetched_at <= self.fetched_at:
            return False
        try:
            keys = parse_key_set(document)
        except IssuerUnreachable:
            return False
        self.keys, self.fetched_at = keys, fetched_at
        return not self._stale()


def parse_key_set(document: Any) -> dict[str, VerificationKey]:
    """The signing keys of a JWKS document that have a kid, by kid; at least one."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise IssuerUnreachable("Not a JWK set.")
    keys = {}
    for item in document["keys"]:
        if not isinstance(item, dict) or not isinstance(item.get("kid"), str):
            continue
        if item.get("use", "sig") != "sig":
            continue
        try:
            parsed = jwt.PyJWK(item)
        except (jwt.PyJWTError, ValueError, TypeError):
            continue  # a key type or curve PyJWT does not know: no token can use it
        algorithm = item.get("alg")
        keys[item["kid"]] = VerificationKey(
            parsed.key, parsed.key_type, algorithm if isinstance(algorithm, str) else None
        )
    if not keys:
        # Counted as a failed fetch, so it is retried after the back-off, not per request.
        raise IssuerUnreachable("The JWK set has no usable signing key.")
    return keys


def _shared(issuer: str) -> tuple[float, Any] | None:
    try:
        value = caches[tessera_settings.CACHE_ALIAS].get(_SHARED_KEY_PREFIX + issuer)
    except Exception:  # noqa: BLE001 - the cache is an optimisation; the issuer still answers
        return None
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], float)):
        return None
    return value


def _share(issuer: str, fetched_at: float, document: Any) -> None:
    timeout = tessera_settings.EXTERNAL_JWKS_MAX_AGE.total_seconds()
    try:
        caches[tessera_settings.CACHE_ALIAS].set(
            _SHARED_KEY_PREFIX + issuer, (fetched_at, document), timeout
        )
    except Exception:  # noqa: BLE001 - see _shared
        logger.warning("Keys of issuer %s could not be shared through the cache.", issuer)


_issuer_keys: dict[str, IssuerKeys] = {}
_issuer_keys_lock = threading.Lock()


def issuer_keys(entry: dict[str, Any]) -> IssuerKeys:
    held = _issuer_keys.get(entry["issuer"])
    if held is None:
        with _issuer_keys_lock:
            held = _issuer_keys.setdefault(
                entry["issuer"], IssuerKeys(entry["issuer"], entry.get("jwks_uri"))
            )
    return held


def forget_keys() -> None:
    _issuer_keys.clear()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "TESSERA":
        forget_keys()


setting_changed.connect(_settings_changed)
os.register_at_fork(after_in_child=forget_keys)


def unverified_parts(token: str) -> tuple[dict, dict]:
    """Header and payload, unverified: they only choose the issuer and key to verify with."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise InvalidJWT("Token is malformed.")
    parts = []
    for segment in token.split(".")[:2]:
        try:
            value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (ValueError, binascii.Error, RecursionError) as exc:
            raise InvalidJWT("Token is malformed.") from exc
        if not isinstance(value, dict):
            raise InvalidJWT("Token is malformed.")
        parts.append(value)
    return parts[0], parts[1]


def entry_for(token: str) -> dict[str, Any] | None:
    """The trusted issuer's entry the token claims to come from, if any."""
    try:
        _, payload = unverified_parts(token)
    except InvalidJWT:
        return None
    issuer = payload.get("iss")
    return trusted_issuers().get(issuer) if isinstance(issuer, str) else None


def decode(token: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The verified claims of an access token of ``entry``'s issuer, or InvalidJWT.

    IssuerUnreachable when no keys of the issuer are held and none can be fetched.
    """
    header, _ = unverified_parts(token)
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise InvalidJWT("Token names no key.")
    key = issuer_keys(entry).key(kid)
    if key is None:
        raise InvalidJWT("Token was signed with an unknown key.")
    algorithms = [a for a in entry["algorithms"] if key_type_of(a) == key.key_type]
    if key.algorithm is not None:
        algorithms = [a for a in algorithms if a == key.algorithm]
    if not algorithms:
        raise InvalidJWT("Token was signed with a key of another type.")
    audience_claim = entry.get("audience_claim", "aud")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=algorithms,
            issuer=entry["issuer"],
            audience=entry["audience"] if audience_claim == "aud" else None,
            options={
                "require": ["iss", "sub", "exp"],
                "verify_aud": audience_claim == "aud",
                # Times are checked below against Django's clock, which tests can move.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except (jwt.PyJWTError, RecursionError, ValueError) as exc:
        raise InvalidJWT("Token is invalid.") from exc
    if audience_claim != "aud" and claims.get(audience_claim) not in _as_list(entry["audience"]):
        raise InvalidJWT("Token is invalid.")
    for name, value in entry.get("required_claims", {}).items():
        if claims.get(name) != value:
            raise InvalidJWT("Token is invalid.")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidJWT("Token is invalid.")
    _check_times(claims)
    return claims


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _check_times(claims: dict[str, Any]) -> None:
    now = timezone.now().timestamp()
    leeway = tessera_settings.JWT_LEEWAY.total_seconds()
    times = {name: claims.get(name) for name in ("exp", "nbf", "iat")}
    for name, value in times.items():
        present = value is not None or name == "exp"
        if present and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise InvalidJWT("Token is invalid.")
    if times["exp"] <= now - leeway:
        raise InvalidJWT("Token has expired.", "token_expired")
    for name in ("nbf", "iat"):
        if times[name] is not None and times[name] > now + leeway:
            raise InvalidJWT("Token is not valid yet.")


def claimed_names(claims: dict[str, Any], path: str | list[str] | None) -> frozenset[str] | None:
    """The names a claim holds (a list of strings, or one space-separated string).

    ``path`` is a claim name, or a list of names into nested objects
    (``["realm_access", "roles"]``). None when no claim is mapped; an absent or
    malformed claim holds no names.
    """
    if path is None:
        return None
    value: Any = claims
    for name in [path] if isinstance(path, str) else path:
        value = value.get(name) if isinstance(value, dict) else None
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return frozenset(value)
    return frozenset()
