"""The JWT key ring, the JWT cookies and the clock tolerances."""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .given import given_settings

HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
RSA_MIN_BITS = 2048
# A tolerance longer than this stops being clock skew and starts being a lifetime.
MAX_TOLERANCE = timedelta(minutes=5)


def check_jwt(app_configs=None, **kwargs) -> list[CheckMessage]:
    """The JWT key ring loads, signs and verifies, and no key is too weak to trust."""
    from ..tokens import jwt as codec

    given = given_settings()
    if given is None:
        return []
    entries = given.get("JWT_KEYS")
    errors = _check_jwt_cookies(given)
    if not isinstance(entries, list | tuple):
        return errors
    kids = [e.get("kid") for e in entries if isinstance(e, dict)]
    if len(kids) != len(entries) or not all(isinstance(k, str) and k for k in kids):
        return [
            *errors,
            Error(
                "Every JWT_KEYS entry must be a dict with a 'kid'.",
                obj="TESSERA",
                id="tessera.E010",
            ),
        ]
    if len(set(kids)) != len(kids):
        errors.append(Error("JWT_KEYS has duplicate kids.", obj="TESSERA", id="tessera.E014"))
    active = given.get("JWT_ACTIVE_KID")
    if active is not None and active not in kids:
        return [
            *errors,
            Error(
                f"JWT_ACTIVE_KID {active!r} is not a kid in JWT_KEYS.",
                obj="TESSERA",
                id="tessera.E013",
            ),
        ]
    try:
        ring = codec.key_ring()
        _sign_and_verify(ring)
    except Exception as exc:
        return [
            *errors,
            Error(f"The JWT key ring cannot be used: {exc}", obj="TESSERA", id="tessera.E010"),
        ]
    for key in ring.keys.values():
        errors.extend(_check_key_strength(key))
    return errors


def tolerance_messages(given: dict[str, Any]) -> list[CheckMessage]:
    """Negative tolerances are bounds errors (E008); long ones are only unwise."""
    return [
        Warning(
            f"TESSERA[{key!r}] is {given[key]}: a tolerance this long keeps expired or reused "
            "tokens working.",
            hint="Keep it to seconds; at most five minutes.",
            obj="TESSERA",
            id="tessera.W011",
        )
        for key in ("JWT_LEEWAY", "JWT_REUSE_GRACE")
        if given.get(key) is not None and given[key] > MAX_TOLERANCE
    ]


def _sign_and_verify(ring) -> None:
    """Catch a key whose type does not fit its algorithm before a request does."""
    import jwt

    for key in ring.keys.values():
        if key.signing_key is None:
            continue
        with warnings.catch_warnings():
            # Weak keys are reported as tessera.E011/E012, not as PyJWT warnings.
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            token = jwt.encode({"probe": 1}, key.signing_key, algorithm=key.algorithm)
            jwt.decode(token, key.verifying_key, algorithms=[key.algorithm])


def _check_key_strength(key) -> list[CheckMessage]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    minimum = HMAC_MIN_BYTES.get(key.algorithm)
    if minimum is not None and len(key.verifying_key) < minimum:
        return [
            Error(
                f"JWT key {key.kid!r}: an {key.algorithm} secret needs at least {minimum} bytes, "
                f"it has {len(key.verifying_key)}.",
                obj="TESSERA",
                id="tessera.E011",
            )
        ]
    public = key.verifying_key
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < RSA_MIN_BITS:
        return [
            Error(
                f"JWT key {key.kid!r}: RSA keys need at least {RSA_MIN_BITS} bits, it has "
                f"{key.verifying_key.key_size}.",
                obj="TESSERA",
                id="tessera.E012",
            )
        ]
    return []


def _check_jwt_cookies(given: dict[str, Any]) -> list[CheckMessage]:
    if not given.get("JWT_COOKIES"):
        return []
    secure = given.get("JWT_COOKIE_SECURE", True)
    if given.get("JWT_COOKIE_SAMESITE") == "None" and not secure:
        return [
            Error(
                "JWT cookies with SameSite=None must be Secure; browsers drop them.",
                obj="TESSERA",
                id="tessera.E015",
            )
        ]
    if not secure and not settings.DEBUG:
        return [
            Warning(
                "JWT cookies are sent without the Secure flag outside DEBUG: they "
                "travel over plain HTTP.",
                obj="TESSERA",
                id="tessera.W010",
            )
        ]
    return []
