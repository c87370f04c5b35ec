"""Second factors: the encryption keys of TOTP secrets, MFA_REQUIRED, the MFA throttles.

The lifetimes and counts (MFA_TICKET_LIFETIME, MFA_MAX_FAILURES…) are bounded by their
options, checked with every other setting in :mod:`tessera.checks.settings`.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.core.checks import CheckMessage, Error, Warning

from ..conf import OPTIONS
from .given import given_settings
from .throttling import is_rate


def check_mfa(app_configs=None, **kwargs) -> list[CheckMessage]:
    given = given_settings()
    if given is None:
        return []
    return [
        *_key_messages(given.get("MFA_ENCRYPTION_KEYS")),
        *_policy_messages(given.get("MFA_REQUIRED")),
        *_rate_messages(given.get("MFA_THROTTLE_RATES")),
    ]


def _key_messages(keys: Any) -> list[CheckMessage]:
    if keys is None:
        return []
    if not keys:
        problem = "is empty: leave it out (None) to derive a key from SIGNING_KEY"
    else:
        bad = [index for index, key in enumerate(keys) if not _is_fernet_key(key)]
        if not bad:
            return []
        problem = f"item {bad[0]} is not a Fernet key (32 url-safe base64-encoded bytes)"
    return [
        Error(
            f"TESSERA['MFA_ENCRYPTION_KEYS'] {problem}.",
            hint="Generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'",
            obj="TESSERA",
            id="tessera.E060",
        )
    ]


def _is_fernet_key(key: Any) -> bool:
    try:
        Fernet(key)
    except (TypeError, ValueError):
        return False
    return True


def _policy_messages(required: Any) -> list[CheckMessage]:
    if required is None:
        return []
    if isinstance(required, str):
        fine = required == "all"
    else:
        fine = bool(required) and all(isinstance(name, str) and name for name in required)
    if fine:
        return []
    return [
        Error(
            f"TESSERA['MFA_REQUIRED'] = {required!r}: use None, 'all', or a non-empty list of "
            "role (group) names.",
            obj="TESSERA",
            id="tessera.E061",
        )
    ]


def _rate_messages(rates: Any) -> list[CheckMessage]:
    if not isinstance(rates, dict):
        return []
    known = OPTIONS["MFA_THROTTLE_RATES"].default
    messages: list[CheckMessage] = []
    for scope, rate in rates.items():
        if scope not in known:
            problem = f"Unknown MFA throttle {scope!r}; known: {', '.join(sorted(known))}."
        elif rate is None:
            messages.append(
                Warning(
                    f"MFA throttle {scope!r} is switched off: second-factor codes can be "
                    "guessed faster.",
                    obj="TESSERA",
                    id="tessera.W060",
                )
            )
            continue
        elif not is_rate(rate):
            problem = f"MFA throttle rate {rate!r} is not of the form 'N/sec|min|hour|day'."
        else:
            continue
        messages.append(Error(problem, obj="TESSERA", id="tessera.E062"))
    return messages
