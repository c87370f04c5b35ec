"""System checks that refuse broken or insecure Tessera configuration at start-up.

Errors (``tessera.E…``) stop ``manage.py`` commands; warnings (``tessera.W…``) are shown.
Every check id is listed in docs/settings.md.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import OPTIONS, tessera_settings

MIN_SIGNING_KEY_BYTES = 32
RATE_PATTERN = re.compile(r"^\d+/(sec|min|hour|day)$")


@register(Tags.security, deploy=False)
def check_settings(app_configs=None, **kwargs):
    raw = getattr(settings, "TESSERA", {})
    if not isinstance(raw, dict):
        return [
            Error(
                "TESSERA must be a dict.",
                hint="Set TESSERA = {...} in your settings, or leave it out.",
                id="tessera.E004",
            )
        ]
    errors = []
    for key in sorted(set(raw) - set(OPTIONS)):
        errors.append(
            Error(
                f"Unknown Tessera setting {key!r}.",
                hint="Check the spelling against the settings reference in the README.",
                obj="TESSERA",
                id="tessera.E001",
            )
        )
    for key, value in raw.items():
        option = OPTIONS.get(key)
        if option is None or (value is None and option.nullable):
            continue
        # bool is an int subclass; an int-typed setting must not accept True.
        wrong_type = not isinstance(value, option.types) or (
            isinstance(value, bool) and bool not in option.types
        )
        if wrong_type:
            expected = " or ".join(t.__name__ for t in option.types)
            errors.append(
                Error(
                    f"TESSERA[{key!r}] must be {expected}"
                    f"{' or None' if option.nullable else ''}, not {type(value).__name__}.",
                    obj="TESSERA",
                    id="tessera.E002",
                )
            )
        elif option.choices and value not in option.choices:
            errors.append(
                Error(
                    f"TESSERA[{key!r}] must be one of {', '.join(map(repr, option.choices))}.",
                    obj="TESSERA",
                    id="tessera.E005",
                )
            )
    errors.extend(_check_signing_key(raw))
    errors.extend(_check_rates(raw))
    errors.extend(_check_cache_alias())
    return errors


def _check_signing_key(raw: dict) -> list:
    key = raw.get("SIGNING_KEY") or getattr(settings, "SECRET_KEY", "")
    if not isinstance(key, str | bytes):
        return []
    length = len(key.encode() if isinstance(key, str) else key)
    if length >= MIN_SIGNING_KEY_BYTES:
        return []
    source = "TESSERA['SIGNING_KEY']" if raw.get("SIGNING_KEY") else "SECRET_KEY"
    return [
        Error(
            f"{source} is {length} bytes; Tessera needs at least {MIN_SIGNING_KEY_BYTES}.",
            hint="Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            id="tessera.E003",
        )
    ]


def _check_rates(raw: dict) -> list:
    rates = raw.get("LOGIN_THROTTLE_RATES")
    if not isinstance(rates, dict):
        return []
    errors = []
    for scope, rate in rates.items():
        if scope not in ("ip", "username"):
            errors.append(
                Error(
                    f"Unknown login throttle scope {scope!r}; use 'ip' or 'username'.",
                    obj="TESSERA",
                    id="tessera.E006",
                )
            )
        elif rate is not None and not (isinstance(rate, str) and RATE_PATTERN.match(rate)):
            errors.append(
                Error(
                    f"Login throttle rate {rate!r} is not of the form 'N/sec|min|hour|day'.",
                    obj="TESSERA",
                    id="tessera.E006",
                )
            )
    if all(rates.get(scope) is None for scope in ("ip", "username")):
        errors.append(
            Warning(
                "Login throttling is switched off: passwords can be guessed at full speed.",
                obj="TESSERA",
                id="tessera.W001",
            )
        )
    return errors


def _check_cache_alias() -> list:
    alias = tessera_settings.CACHE_ALIAS
    caches = getattr(settings, "CACHES", {})
    if isinstance(alias, str) and alias not in caches:
        return [
            Error(
                f"TESSERA['CACHE_ALIAS'] names the cache {alias!r}, which CACHES lacks.",
                obj="TESSERA",
                id="tessera.E007",
            )
        ]
    backend = caches.get(alias, {}).get("BACKEND", "")
    if not settings.DEBUG and backend.endswith(("LocMemCache", "DummyCache")):
        return [
            Warning(
                f"The cache {alias!r} is per-process ({backend.rsplit('.', 1)[-1]}): with "
                "several app processes, a revoked session stays usable on the others for "
                "up to CACHE_TIMEOUT and throttle counters are not shared.",
                hint="Use Redis (django.core.cache.backends.redis.RedisCache) in production.",
                obj="TESSERA",
                id="tessera.W002",
            )
        ]
    return []
