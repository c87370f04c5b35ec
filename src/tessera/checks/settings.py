"""The ``TESSERA`` dict, each setting judged by its row in :data:`tessera.conf.OPTIONS`.

A rule that belongs to one setting (its type, choices, bounds, dotted path) is written in
its Option; the loop here only turns the rule into a message, so a new setting is checked
by declaring it. Rules that tie several settings together live in the feature modules.
:func:`check_settings` runs the loop and the cross-setting rules always reported with it
(signing key, login throttle, cache, authorization, JWT tolerances); the JWT key ring and
the account flows have registered checks of their own.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

from ..conf import OPTIONS, Option
from . import authorization, cache, jwt, throttling
from .given import has_type, well_typed

MIN_SIGNING_KEY_BYTES = 32
# The ids the first dotted-path checks published (E053 for the account serializers, E041
# for USER_SCOPES), kept for every path of the same kind.
DOTTED_PATH_IDS = {"class": "tessera.E053", "callable": "tessera.E041"}


def check_settings(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Every given setting against its option, then the rules across settings."""
    raw = getattr(settings, "TESSERA", {})
    if not isinstance(raw, dict):
        return [
            Error(
                "TESSERA must be a dict.",
                hint="Set TESSERA = {...} in your settings, or leave it out.",
                id="tessera.E004",
            )
        ]
    given = well_typed(raw)
    return [
        *option_messages(raw),
        *signing_key_messages(given),
        *throttling.login_rate_messages(),
        *throttling.lockout_messages(),
        *cache.cache_messages(),
        *authorization.authorization_messages(given),
        *jwt.tolerance_messages(given),
    ]


def option_messages(raw: dict[str, Any]) -> list[CheckMessage]:
    """Unknown keys, then each given value against its option."""
    messages: list[CheckMessage] = [
        Error(
            f"Unknown Tessera setting {key!r}.",
            hint="Check the spelling against the settings reference (docs/settings.md).",
            obj="TESSERA",
            id="tessera.E001",
        )
        for key in sorted(set(raw) - set(OPTIONS))
    ]
    for key, value in raw.items():
        option = OPTIONS.get(key)
        if option is not None and not (value is None and option.nullable):
            messages.extend(value_messages(key, value, option))
    return messages


def value_messages(key: str, value: Any, option: Option) -> list[CheckMessage]:
    """The first rule of ``option`` that ``value`` breaks: each later rule assumes the type."""
    if not has_type(value, option):
        expected = " or ".join(t.__name__ for t in option.types)
        nullable = " or None" if option.nullable else ""
        return [
            _error(f"must be {expected}{nullable}, not {type(value).__name__}", key, "tessera.E002")
        ]
    if option.choices and value not in option.choices:
        return [
            _error(f"must be one of {', '.join(map(repr, option.choices))}", key, "tessera.E005")
        ]
    if option.item_choices and (problem := _item_problem(value, option.item_choices)):
        return [_error(problem, key, "tessera.E020")]
    if option.dotted_path:
        return _dotted_path_messages(key, value, option.dotted_path)
    return _bounds_messages(key, value, option)


def _item_problem(items: Any, allowed: tuple[Any, ...]) -> str | None:
    names = ", ".join(map(repr, allowed))
    if not items:
        return f"must list at least one of {names}"
    unknown = [item for item in items if item not in allowed]
    return f"may only list {names}, not {unknown[0]!r}" if unknown else None


def _bounds_messages(key: str, value: Any, option: Option) -> list[CheckMessage]:
    zero = timedelta(0) if isinstance(value, timedelta) else 0
    if option.positive and value <= zero:
        problem = "must be positive"
    elif option.minimum is not None and value < option.minimum:
        problem = (
            "must not be negative"
            if option.minimum == zero
            else f"must be at least {option.minimum}"
        )
    else:
        return []
    shared_id = "tessera.E008" if isinstance(value, timedelta) else "tessera.E009"
    return [_error(problem, key, option.bounds_id or shared_id)]


def _dotted_path_messages(key: str, path: str, wanted: str) -> list[CheckMessage]:
    check_id = DOTTED_PATH_IDS[wanted]
    try:
        target = import_string(path)
    except Exception as exc:
        # Not only ImportError: a module that raises while loading must be named here,
        # not crash `manage.py check` or answer 500 at the first request that needs it.
        return [_error(f"= {path!r} cannot be imported ({exc})", key, check_id)]
    fits = inspect.isclass(target) if wanted == "class" else callable(target)
    if fits:
        return []
    return [_error(f"= {path!r} names a {type(target).__name__}, not a {wanted}", key, check_id)]


def _error(problem: str, key: str, check_id: str) -> Error:
    return Error(f"TESSERA[{key!r}] {problem}.", obj="TESSERA", id=check_id)


def signing_key_messages(given: dict[str, Any]) -> list[CheckMessage]:
    key = given.get("SIGNING_KEY") or getattr(settings, "SECRET_KEY", "")
    if not isinstance(key, str | bytes):
        return []
    length = len(key.encode() if isinstance(key, str) else key)
    if length >= MIN_SIGNING_KEY_BYTES:
        return []
    source = "TESSERA['SIGNING_KEY']" if given.get("SIGNING_KEY") else "SECRET_KEY"
    return [
        Error(
            f"{source} is {length} bytes; Tessera needs at least {MIN_SIGNING_KEY_BYTES}.",
            hint="Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            id="tessera.E003",
        )
    ]
