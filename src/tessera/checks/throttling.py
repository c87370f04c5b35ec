"""Login throttle and lockout rates, where their buckets live, which logins they cover,
and where throttle counts could be rolled back."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from ..backends import LockoutModelBackend
from ..conf import tessera_settings
from ..services.buckets import Rate, store_problem
from .given import given_settings

LOGIN_SCOPES = ("ip",)
# Counted failures per account replaced the attempt throttle of this scope.
RETIRED_LOGIN_SCOPES = ("username",)
LOCKOUT_SCOPES = ("ip", "account", "account_ip", "device")


def is_rate(value: object) -> bool:
    try:
        Rate.parse(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def login_rate_messages() -> list[CheckMessage]:
    rates = tessera_settings.LOGIN_THROTTLE_RATES
    if not isinstance(rates, dict):
        return []  # reported as tessera.E002
    messages: list[CheckMessage] = []
    for scope, rate in rates.items():
        if scope in RETIRED_LOGIN_SCOPES:
            messages.append(
                Warning(
                    f"LOGIN_THROTTLE_RATES[{scope!r}] is no longer used: it counted "
                    "successful logins too.",
                    hint="Failed logins per account are limited by LOCKOUT_RATES['account'] "
                    "(docs/lockout.md); remove this key.",
                    obj="TESSERA",
                    id="tessera.W110",
                )
            )
        elif scope not in LOGIN_SCOPES:
            messages.append(
                Error(
                    f"Unknown login throttle scope {scope!r}; use 'ip'.",
                    obj="TESSERA",
                    id="tessera.E006",
                )
            )
        elif rate is not None and not is_rate(rate):
            messages.append(
                Error(
                    f"Login throttle rate {rate!r} is not of the form 'N/sec|min|hour|day' "
                    "(or 'N/<k>min'…).",
                    obj="TESSERA",
                    id="tessera.E006",
                )
            )
    if all(rates.get(scope) is None for scope in LOGIN_SCOPES):
        messages.append(
            Warning(
                "Login throttling is switched off: passwords can be guessed at full speed.",
                obj="TESSERA",
                id="tessera.W001",
            )
        )
    return messages


def lockout_messages() -> list[CheckMessage]:
    """LOCKOUT_RATES, LOCKOUT_BACKOFF, and a store that can keep their buckets atomically."""
    messages: list[CheckMessage] = []
    rates = tessera_settings.LOCKOUT_RATES
    if isinstance(rates, dict):
        for scope, rate in rates.items():
            if scope not in LOCKOUT_SCOPES:
                messages.append(
                    _lockout_error(
                        f"Unknown lockout scope {scope!r}; use {', '.join(LOCKOUT_SCOPES)}."
                    )
                )
            elif rate is not None and not is_rate(rate):
                messages.append(
                    _lockout_error(
                        f"Lockout rate {rate!r} is not of the form 'N/sec|min|hour|day' "
                        "(or 'N/<k>min'…)."
                    )
                )
        if all(rates.get(scope) is None for scope in ("account", "account_ip")):
            messages.append(
                Warning(
                    "The per-account lockout is switched off: one account's password can be "
                    "guessed from many addresses at full speed.",
                    obj="TESSERA",
                    id="tessera.W111",
                )
            )
    backoff = tessera_settings.LOCKOUT_BACKOFF
    if isinstance(backoff, tuple | list) and not all(
        isinstance(tier, timedelta) and tier > timedelta(0) for tier in backoff
    ):
        messages.append(
            Error(
                "TESSERA['LOCKOUT_BACKOFF'] must be a sequence of positive timedeltas.",
                obj="TESSERA",
                id="tessera.E111",
            )
        )
    alias = tessera_settings.CACHE_ALIAS
    # A missing or mistyped alias is reported as tessera.E007 or E002.
    problem = store_problem() if isinstance(alias, str) and alias in settings.CACHES else None
    if problem is not None:
        messages.append(
            Error(
                f"Throttle and lockout buckets cannot be kept atomically: {problem}.",
                hint="Use tessera.cache.RedisCache, or THROTTLE_BACKEND='database'.",
                obj="TESSERA",
                id="tessera.E112",
            )
        )
    return messages


def _lockout_error(message: str) -> Error:
    return Error(message, obj="TESSERA", id="tessera.E110")


def check_lockout_backend(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Django's own password logins (the admin, any authenticate() caller) are counted only
    through Tessera's backend."""
    for path in getattr(settings, "AUTHENTICATION_BACKENDS", []):
        try:
            if issubclass(import_string(path), LockoutModelBackend):
                return []
        except ImportError:
            continue  # Django's own check reports it
    return [
        Warning(
            "AUTHENTICATION_BACKENDS lacks tessera.backends.LockoutModelBackend: passwords "
            "checked by Django's admin login or any other authenticate() caller are not "
            "counted by the lockout.",
            hint="Replace django.contrib.auth.backends.ModelBackend with "
            "tessera.backends.LockoutModelBackend (docs/lockout.md).",
            obj="AUTHENTICATION_BACKENDS",
            id="tessera.W112",
        )
    ]


def check_atomic_requests(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Tessera's own views opt out of ATOMIC_REQUESTS; HTTP Basic on the project's cannot."""
    if (given_settings() or {}).get("THROTTLE_BACKEND") != "database":
        return []
    if not any(db.get("ATOMIC_REQUESTS") for db in settings.DATABASES.values()):
        return []
    return [
        Warning(
            "ATOMIC_REQUESTS with THROTTLE_BACKEND='database': a failed HTTP Basic login on your "
            "own views rolls its throttle count back with the request.",
            hint="Use THROTTLE_BACKEND='cache' (Redis), or leave BASIC_AUTH off.",
            obj="TESSERA",
            id="tessera.W003",
        )
    ]
