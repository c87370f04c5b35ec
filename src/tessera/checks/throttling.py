"""Login throttle rates, and where throttle counts could be rolled back."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from ..conf import tessera_settings
from .given import given_settings

RATE_PATTERN = re.compile(r"^\d+/(sec|min|hour|day)$")
LOGIN_SCOPES = ("ip", "username")


def is_rate(value: object) -> bool:
    return isinstance(value, str) and bool(RATE_PATTERN.match(value))


def login_rate_messages() -> list[CheckMessage]:
    rates = tessera_settings.LOGIN_THROTTLE_RATES
    if not isinstance(rates, dict):
        return []  # reported as tessera.E002
    messages: list[CheckMessage] = []
    for scope, rate in rates.items():
        if scope not in LOGIN_SCOPES:
            messages.append(
                Error(
                    f"Unknown login throttle scope {scope!r}; use 'ip' or 'username'.",
                    obj="TESSERA",
                    id="tessera.E006",
                )
            )
        elif rate is not None and not is_rate(rate):
            messages.append(
                Error(
                    f"Login throttle rate {rate!r} is not of the form 'N/sec|min|hour|day'.",
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
