"""Access tokens of external issuers (``TRUSTED_ISSUERS``): strict decoding, no I/O.

The keys come from :mod:`tessera.services.issuer_keys`; this module only judges tokens.

- The unverified ``iss`` only chooses which configured issuer's keys to try; the
  signature, ``iss`` and the audience are then verified against that issuer alone.
- Only the entry's asymmetric algorithms are allowed, and only those of the key's type,
  so neither ``none`` nor an HMAC signed with a public key can pass. ``jku``, ``x5u`` and
  embedded ``jwk`` headers are never read.
- Every claim rule (:func:`check_claims`) runs before a key is looked up, so a token that
  cannot be valid costs no key fetch and is refused even while the issuer is down, and
  again on the verified claims, which alone are authoritative.
- Times are finite numbers a datetime can hold; ``sub`` is text the identity table can
  store; configured values are compared with claims type-exactly (``True`` is not ``1``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt
from django.utils import timezone

from ..conf import tessera_settings
from .jwt import InvalidJWT

if TYPE_CHECKING:
    from ..models import Session

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
# ExternalIdentity.subject's max_length: a longer sub could never be linked, and on
# PostgreSQL would fail the query instead.
MAX_SUBJECT_LENGTH = 255
# 9999-12-31T23:59:59Z, the last second a datetime can hold.
MAX_TIMESTAMP = 253_402_300_799
# Control characters (NUL among them) and lone surrogates: no database stores them as text.
_UNSTORABLE_CATEGORIES = frozenset({"Cc", "Cs"})


@dataclass(frozen=True)
class ExternalToken:
    """``request.auth`` of a request authenticated by an external issuer's token.

    ``roles`` and ``scopes`` are None when the issuer's entry maps no claim for them:
    roles then come from the user's groups, scopes from those the user holds.
    ``session`` is the Tessera session the token opened when its entry has
    ``open_session``, else None.
    """

    issuer: str
    claims: dict[str, Any]
    roles: frozenset[str] | None = None
    scopes: frozenset[str] | None = None
    session: Session | None = None


@dataclass(frozen=True)
class VerificationKey:
    key: Any
    key_type: str
    algorithm: str | None  # the JWK's "alg", when it names one


class InvalidKeySet(ValueError):
    """A document that holds no usable signing key."""


def trusted_issuers() -> dict[str, dict[str, Any]]:
    """The configured entries by issuer."""
    return {entry["issuer"]: entry for entry in tessera_settings.TRUSTED_ISSUERS}


def key_type_of(algorithm: str) -> str:
    return _KEY_TYPES[algorithm[:2]]


def parse_key_set(document: Any) -> dict[str, VerificationKey]:
    """The signing keys of a JWKS document that have a kid, by kid; at least one."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise InvalidKeySet("Not a JWK set.")
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
        raise InvalidKeySet("The JWK set has no usable signing key.")
    return keys


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


def decode(
    token: str, entry: dict[str, Any], find_key: Callable[[str], VerificationKey | None]
) -> dict[str, Any]:
    """The verified claims of an access token of ``entry``'s issuer, or InvalidJWT.

    ``find_key(kid)`` gives the issuer's key (None: not among its keys); whatever it
    raises (the issuer unreachable) passes through.
    """
    header, payload = unverified_parts(token)
    kid, algorithm = header.get("kid"), header.get("alg")
    if not isinstance(kid, str):
        raise InvalidJWT("Token names no key.")
    if not isinstance(algorithm, str) or algorithm not in entry["algorithms"]:
        raise InvalidJWT("Token is signed with an algorithm the issuer's entry does not allow.")
    check_claims(payload, entry)
    key = find_key(kid)
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
                # Times are checked by check_claims against Django's clock, which tests move.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except (jwt.PyJWTError, RecursionError, ValueError) as exc:
        raise InvalidJWT("Token is invalid.") from exc
    check_claims(claims, entry)
    return claims


def check_claims(claims: dict[str, Any], entry: dict[str, Any]) -> None:
    """Every rule on the claims of ``entry``'s tokens; InvalidJWT for the first broken."""
    if not same_value(claims.get("iss"), entry["issuer"]):
        raise InvalidJWT("Token is invalid.")
    audience_claim = entry.get("audience_claim", "aud")
    if not _audience_accepted(
        claims.get(audience_claim), entry["audience"], lists=audience_claim == "aud"
    ):
        raise InvalidJWT("Token is for another audience.")
    for name, value in entry.get("required_claims", {}).items():
        if name not in claims or not same_value(claims[name], value):
            raise InvalidJWT("Token is invalid.")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
        raise InvalidJWT("Token has no usable subject.")
    if not storable_text(subject):
        raise InvalidJWT("Token has no usable subject.")
    _check_times(claims)


def _audience_accepted(claimed: Any, accepted: str | list[str], *, lists: bool) -> bool:
    """``aud`` may be a list of which one is accepted (RFC 7519); a claim configured
    instead of it (Cognito's ``client_id``) holds one string."""
    accepted = [accepted] if isinstance(accepted, str) else list(accepted)
    values = [claimed] if isinstance(claimed, str) else claimed if lists else None
    return (
        isinstance(values, list)
        and all(isinstance(value, str) for value in values)
        and any(value in accepted for value in values)
    )


def storable_text(text: str) -> bool:
    """No control character (NUL included) nor lone surrogate: text a database can hold."""
    return not any(unicodedata.category(char) in _UNSTORABLE_CATEGORIES for char in text)


def same_value(claimed: Any, configured: Any) -> bool:
    """JSON values equal in type too: ``True`` is not ``1``, ``1.0`` is not ``1``."""
    if type(claimed) is not type(configured):
        return False
    if isinstance(claimed, dict):
        return claimed.keys() == configured.keys() and all(
            same_value(claimed[name], configured[name]) for name in claimed
        )
    if isinstance(claimed, list):
        return len(claimed) == len(configured) and all(map(same_value, claimed, configured))
    return claimed == configured


def timestamp(value: Any) -> float:
    """A NumericDate claim as seconds: a finite, non-negative number a datetime can hold.

    JSON parsers accept ``NaN`` and ``Infinity``, which compare false with every time
    (an ``exp`` of NaN would never expire); booleans are numbers to Python; strings are not.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJWT("Token has a malformed time claim.")
    if not (math.isfinite(value) and 0 <= value <= MAX_TIMESTAMP):
        raise InvalidJWT("Token has a malformed time claim.")
    return float(value)


def expiry_of(claims: dict[str, Any]) -> datetime:
    """The ``exp`` of claims :func:`check_claims` accepted, as a datetime."""
    return datetime.fromtimestamp(timestamp(claims["exp"]), UTC)


def _check_times(claims: dict[str, Any]) -> None:
    now = timezone.now().timestamp()
    leeway = tessera_settings.JWT_LEEWAY.total_seconds()
    if "exp" not in claims:
        raise InvalidJWT("Token has no expiry.")
    times = {name: timestamp(claims[name]) for name in ("exp", "nbf", "iat") if name in claims}
    if times["exp"] <= now - leeway:
        raise InvalidJWT("Token has expired.", "token_expired")
    for name in ("nbf", "iat"):
        if name in times and times[name] > now + leeway:
            raise InvalidJWT("Token is not valid yet.")


def session_digest(token: str, claims: dict[str, Any]) -> str:
    """Where the session a token opened sits in the session table's digest index.

    One session per token: named by the issuer's ``jti`` when it has one (a string),
    else by the token itself. The issuer and subject are part of it, so one issuer's
    ``jti`` can never name another's session; a different preimage from every other
    digest in that index keeps them apart too.
    """
    jti = claims.get("jti")
    token_id = ["jti", jti] if isinstance(jti, str) and jti else ["token", _sha256(token)]
    identity = json.dumps([claims["iss"], claims["sub"], *token_id], ensure_ascii=True)
    return _sha256(f"tessera.external.session:{identity}")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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
