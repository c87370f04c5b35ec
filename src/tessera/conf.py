"""Tessera's settings: one ``TESSERA = {...}`` dict in the project's settings.

Values are read lazily and re-read whenever Django reports a settings change, so
``override_settings(TESSERA=...)`` takes effect in tests. Start-up validation lives in
:mod:`tessera.checks`; this module only merges the user's dict over the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed


@dataclass(frozen=True)
class Option:
    default: Any
    types: tuple[type, ...]
    doc: str
    nullable: bool = False
    choices: tuple[Any, ...] = ()


OPTIONS: dict[str, Option] = {
    "SIGNING_KEY": Option(
        None,
        (str, bytes),
        "Key for Tessera's signatures (JWT HMAC, stateless one-time tokens). "
        "Defaults to SECRET_KEY; must be at least 32 bytes.",
        nullable=True,
    ),
    "AUTH_HEADER_TYPES": Option(
        ("Token", "Bearer"),
        (tuple, list),
        "Keywords accepted before an opaque token in the Authorization header. "
        "The first one is announced in WWW-Authenticate.",
    ),
    "TOKEN_TTL": Option(
        timedelta(hours=10),
        (timedelta,),
        "Idle lifetime of an opaque-token session; None for no idle expiry.",
        nullable=True,
    ),
    "AUTO_REFRESH": Option(
        True, (bool,), "Slide the idle expiry forward when a token is used."
    ),
    "MAX_TTL": Option(
        timedelta(days=30),
        (timedelta,),
        "Absolute lifetime of a session, however active; None for no cap.",
        nullable=True,
    ),
    "MIN_REFRESH_INTERVAL": Option(
        timedelta(seconds=60),
        (timedelta,),
        "Last-used time and sliding expiry are written at most this often per session.",
    ),
    "TOKEN_LIMIT_PER_USER": Option(
        None, (int,), "Most live sessions a user may hold; None for no limit.", nullable=True
    ),
    "TOKEN_LIMIT_POLICY": Option(
        "reject",
        (str,),
        "What a login does at the limit: 'reject' it (403 session_limit_reached) or "
        "'revoke_least_recently_used' session.",
        choices=("reject", "revoke_least_recently_used"),
    ),
    "CACHE_ALIAS": Option(
        "default",
        (str,),
        "Django cache alias for session lookups and throttle counters. Share it "
        "(Redis) between app servers so revocation is seen everywhere at once.",
    ),
    "CACHE_TIMEOUT": Option(
        timedelta(minutes=5),
        (timedelta,),
        "Longest a session lookup stays cached; bounds staleness of user data changed "
        "behind Django's back (queryset.update).",
    ),
    "LOGIN_FIELDS": Option(
        ("username", "email"),
        (tuple, list),
        "What a login identifier is matched against: the user model's USERNAME_FIELD "
        "and/or its e-mail field.",
    ),
    "LOGIN_THROTTLE_RATES": Option(
        {"ip": "20/min", "username": "5/min"},
        (dict,),
        "Login attempts allowed per client IP and per submitted identifier, counted "
        "before the password is checked. A rate is 'N/sec|min|hour|day'; None disables.",
    ),
    "THROTTLE_BACKEND": Option(
        "cache",
        (str,),
        "Where throttle counters live: 'cache' (atomic INCR on Redis) or 'database' "
        "(one row per counter, updated under a row lock).",
        choices=("cache", "database"),
    ),
    "NUM_PROXIES": Option(
        None,
        (int,),
        "Trusted reverse proxies in front of the app; when set, the client IP is taken "
        "from X-Forwarded-For that many hops from the right.",
        nullable=True,
    ),
    "USER_SERIALIZER": Option(
        "tessera.serializers.UserSerializer",
        (str,),
        "Dotted path of the serializer used for the `user` in responses.",
    ),
    "MAX_BODY_BYTES": Option(
        64 * 1024,
        (int,),
        "Largest JSON body Tessera's endpoints read; larger requests get 413.",
    ),
    "RETRY_AFTER": Option(
        5,
        (int,),
        "Seconds announced in Retry-After when a backing service is down (503).",
    ),
    "ADMIN_ROLE": Option("Admin", (str,), "Group whose members count as admins."),
}


class TesseraSettings:
    """Attribute access to the merged settings, e.g. ``tessera_settings.TOKEN_TTL``."""

    def __init__(self) -> None:
        self._merged: dict[str, Any] | None = None

    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "TESSERA", {})
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in OPTIONS:
            raise AttributeError(f"Invalid Tessera setting: {name!r}")
        if self._merged is None:
            merged = {key: option.default for key, option in OPTIONS.items()}
            merged.update(
                {k: v for k, v in self.user_settings().items() if k in OPTIONS}
            )
            self._merged = merged
        return self._merged[name]

    def reload(self) -> None:
        self._merged = None

    @property
    def signing_key(self) -> bytes:
        key = self.SIGNING_KEY or settings.SECRET_KEY
        return key.encode() if isinstance(key, str) else key


tessera_settings = TesseraSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in ("TESSERA", "SECRET_KEY"):
        tessera_settings.reload()


setting_changed.connect(_reload)
