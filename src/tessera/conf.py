"""Tessera's settings: one ``TESSERA = {...}`` dict in the project's settings.

:data:`OPTIONS` is the one table of every setting: its type, default, bounds, merge rule
and doc. The lookup below and the system checks (:mod:`tessera.checks`) read it, so a
setting is described once.

Values are read lazily and re-read whenever Django reports a settings change, so
``override_settings(TESSERA=...)`` takes effect in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.signals import setting_changed


@dataclass(frozen=True)
class Option:
    """One setting, as the lookup, the system checks and the reference page need it."""

    default: Any
    types: tuple[type, ...]
    doc: str
    nullable: bool = False
    choices: tuple[Any, ...] = ()
    # For a list: each item must be one of these, and an empty list is refused too.
    item_choices: tuple[Any, ...] = ()
    positive: bool = False
    minimum: int | timedelta | None = None
    # The id a bounds error is reported under when the feature published its own id before
    # the shared ones (E008 durations, E009 integers) covered every setting: ids users may
    # have silenced stay stable.
    bounds_id: str | None = None
    # A dict whose keys left out keep their defaults, so configuring one throttle scope or
    # one link can never switch off or blank the others.
    merge_per_key: bool = False
    # A dotted path to import at start-up, so a typo fails `manage.py check`, not a request.
    dotted_path: Literal["class", "callable"] | None = None


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
        positive=True,
    ),
    "AUTO_REFRESH": Option(
        True, (bool,), "Slide the idle expiry forward when a token is used."
    ),
    "MAX_TTL": Option(
        timedelta(days=30),
        (timedelta,),
        "Absolute lifetime of a session, however active; None for no cap.",
        nullable=True,
        positive=True,
    ),
    "MIN_REFRESH_INTERVAL": Option(
        timedelta(seconds=60),
        (timedelta,),
        "Last-used time and sliding expiry are written at most this often per session.",
        positive=True,
    ),
    "TOKEN_LIMIT_PER_USER": Option(
        None,
        (int,),
        "Most live sessions a user may hold; None for no limit.",
        nullable=True,
        positive=True,
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
        positive=True,
    ),
    "LOGIN_FIELDS": Option(
        ("username", "email"),
        (tuple, list),
        "What a login identifier is matched against: the user model's USERNAME_FIELD "
        "and/or its e-mail field.",
        item_choices=("username", "email"),
    ),
    "LOGIN_THROTTLE_RATES": Option(
        {"ip": "20/min", "username": "5/min"},
        (dict,),
        "Login attempts allowed per client IP and per account, counted "
        "before the password is checked. A rate is 'N/sec|min|hour|day'; None disables a "
        "scope, and a scope left out keeps its default.",
        merge_per_key=True,
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
        positive=True,
    ),
    "USER_SERIALIZER": Option(
        "tessera.serializers.UserSerializer",
        (str,),
        "Dotted path of the serializer used for the `user` in responses.",
        dotted_path="class",
    ),
    "MAX_BODY_BYTES": Option(
        64 * 1024,
        (int,),
        "Largest JSON body Tessera's endpoints read; larger requests get 413.",
        minimum=1024,
    ),
    "RETRY_AFTER": Option(
        5,
        (int,),
        "Seconds announced in Retry-After when a backing service is down (503).",
        positive=True,
    ),
    "ADMIN_ROLE": Option("Admin", (str,), "Group whose members count as admins."),
    # Account flows (register, verification, password reset/change, me, browser login).
    "PREVENT_ENUMERATION": Option(
        True,
        (bool,),
        "Registering an address or username already in use answers exactly like a new "
        "sign-up, and the owner is e-mailed instead.",
    ),
    "EMAIL_VERIFICATION": Option(
        "optional",
        (str,),
        "'none': no verification e-mail; 'optional': sent, login allowed meanwhile; "
        "'mandatory': login refused (403 email_not_verified) until verified.",
        choices=("none", "optional", "mandatory"),
    ),
    "EMAIL_VERIFICATION_KEY_TTL": Option(
        timedelta(days=3),
        (timedelta,),
        "Lifetime of an e-mail verification key.",
        positive=True,
        bounds_id="tessera.E054",
    ),
    "PASSWORD_RESET_TOKEN_TTL": Option(
        timedelta(hours=1),
        (timedelta,),
        "Lifetime of a password reset token (never longer than PASSWORD_RESET_TIMEOUT).",
        positive=True,
        bounds_id="tessera.E054",
    ),
    "REGISTER_AUTO_LOGIN": Option(
        False,
        (bool,),
        "Registration opens a session and returns its token. Needs PREVENT_ENUMERATION "
        "off and EMAIL_VERIFICATION not 'mandatory'.",
    ),
    "REGISTER_SERIALIZER": Option(
        "tessera.serializers_accounts.RegisterSerializer",
        (str,),
        "Dotted path of the serializer reading the registration body.",
        dotted_path="class",
    ),
    "ME_SERIALIZER": Option(
        "tessera.serializers_accounts.MeSerializer",
        (str,),
        "Dotted path of the serializer of `me/` (GET and PATCH).",
        dotted_path="class",
    ),
    "ACCOUNT_DELETION": Option(
        "deactivate",
        (str,),
        "What `DELETE me/` does: 'deactivate' (is_active=False) or 'delete' the user row.",
        choices=("deactivate", "delete"),
    ),
    "FRONTEND_URLS": Option(
        {
            "password_reset": "http://localhost:3000/reset-password/{uid}/{token}",
            "verify_email": "http://localhost:3000/verify-email/{key}",
            "login": "http://localhost:3000/login",
        },
        (dict,),
        "Templates of the links in Tessera's e-mails, pointing at the front end. Keys "
        "given replace the defaults one by one. Never built from the request's Host.",
        merge_per_key=True,
    ),
    "SITE_NAME": Option("", (str,), "Name of the site in e-mail subjects and bodies."),
    "ACCOUNT_THROTTLE_RATES": Option(
        {
            "register_ip": "10/hour",
            "password_reset_ip": "10/hour",
            "password_reset_email": "3/hour",
            "password_reset_confirm_ip": "20/hour",
            "verify_ip": "20/hour",
            "resend_ip": "10/hour",
            "resend_email": "3/hour",
            "current_password_user": "10/hour",
        },
        (dict,),
        "Attempts allowed on the account endpoints, per client IP, per submitted address "
        "or per user, counted before any costly work. Keys given replace the defaults "
        "one by one; None disables one.",
        merge_per_key=True,
    ),
    "BASIC_AUTH": Option(
        False,
        (bool,),
        "Let BasicAuthentication accept HTTP Basic credentials where it is listed.",
    ),
    "BASIC_AUTH_ALLOW_HTTP": Option(
        False,
        (bool,),
        "Accept HTTP Basic over plain HTTP even when DEBUG is off (e.g. behind a proxy "
        "that terminates TLS without setting SECURE_PROXY_SSL_HEADER).",
    ),
    "JWT_KEYS": Option(
        None,
        (list, tuple),
        "JWT key ring: a list of {'kid', 'algorithm', and 'secret' (HS*) or 'private_key' "
        "and/or 'public_key' (PEM)}. None: one HS256 key derived from SIGNING_KEY.",
        nullable=True,
    ),
    "JWT_ACTIVE_KID": Option(
        None, (str,), "kid of the key that signs new tokens; None: the first key.",
        nullable=True,
    ),
    "JWT_ISSUER": Option(
        None, (str,), "iss claim; None: derived from the project's settings module.",
        nullable=True,
    ),
    "JWT_AUDIENCE": Option(
        None, (str,), "aud claim; None: derived from the project's settings module.",
        nullable=True,
    ),
    "JWT_LEEWAY": Option(
        timedelta(seconds=0),
        (timedelta,),
        "Clock skew tolerated on exp, nbf and iat.",
        minimum=timedelta(0),
    ),
    "JWT_ACCESS_LIFETIME": Option(
        timedelta(minutes=5), (timedelta,), "Access token lifetime.", positive=True
    ),
    "JWT_REFRESH_LIFETIME": Option(
        timedelta(days=1),
        (timedelta,),
        "Refresh token lifetime; each rotation starts a new one, within MAX_TTL.",
        positive=True,
    ),
    "JWT_REUSE_GRACE": Option(
        timedelta(seconds=10),
        (timedelta,),
        "A rotated refresh token presented again within this window gets the same "
        "successor; later, it revokes the whole session.",
        minimum=timedelta(0),
    ),
    "JWT_SLIDING_LIFETIME": Option(
        timedelta(minutes=5),
        (timedelta,),
        "Lifetime of a sliding token between refreshes.",
        positive=True,
    ),
    "JWT_SLIDING_REFRESH_LIFETIME": Option(
        timedelta(days=1),
        (timedelta,),
        "How long after login a sliding token can still be refreshed, within MAX_TTL.",
        positive=True,
    ),
    "JWT_REVOCATION_CHECK": Option(
        True,
        (bool,),
        "Check on every request that the access token's session is live (cached), so "
        "logout stops access tokens at once. False: trust the signature until exp.",
    ),
    "JWT_AUTH_HEADER_TYPES": Option(
        ("Bearer",), (tuple, list), "Keywords accepted before a JWT in the Authorization header."
    ),
    "JWT_CLAIMS_HOOK": Option(
        None,
        (str,),
        "Dotted path of `callable(user, session) -> dict` adding claims to access and "
        "sliding tokens. Registered claims cannot be overridden.",
        nullable=True,
        dotted_path="callable",
    ),
    "JWT_ROLES_CLAIM": Option(
        None,
        (str,),
        "Opt-in: read the roles of a JWT-authenticated request from this claim (filled by "
        "JWT_CLAIMS_HOOK) instead of the user's groups. Saves the query, but roles are then "
        "as stale as the token. None: roles always come from the groups.",
        nullable=True,
    ),
    "JWT_COOKIES": Option(
        False,
        (bool,),
        "Also send access and refresh tokens as HttpOnly cookies, and accept them; "
        "cookie-authenticated unsafe requests then need a CSRF token.",
    ),
    "JWT_COOKIE_SECURE": Option(True, (bool,), "Secure flag of the JWT cookies."),
    "JWT_COOKIE_SAMESITE": Option(
        "Lax", (str,), "SameSite of the JWT cookies.", choices=("Lax", "Strict", "None")
    ),
    "JWT_COOKIE_DOMAIN": Option(None, (str,), "Domain of the JWT cookies.", nullable=True),
    "JWT_ACCESS_COOKIE": Option("tessera_access", (str,), "Name of the access token cookie."),
    "JWT_REFRESH_COOKIE": Option(
        "tessera_refresh",
        (str,),
        "Name of the refresh token cookie (sent to the refresh path only).",
    ),
    "SCOPES": Option(
        {"read": "Read access.", "write": "Write access."},
        (dict,),
        "Every scope a session may carry, as {name: description}.",
    ),
    "USER_SCOPES": Option(
        None,
        (str,),
        "Dotted path of a callable `user -> iterable of scope names` giving the scopes a "
        "user holds (only names in SCOPES count); None: every user holds every scope.",
        nullable=True,
        dotted_path="callable",
    ),
    "PAT_FRESH_LOGIN": Option(
        timedelta(minutes=10),
        (timedelta,),
        "Creating a personal access token needs a session younger than this, or the "
        "password in the request.",
        positive=True,
        bounds_id="tessera.E042",
    ),
    "PAT_DEFAULT_TTL": Option(
        timedelta(days=30),
        (timedelta,),
        "Lifetime of a personal access token created without `expires_in`.",
        positive=True,
        bounds_id="tessera.E042",
    ),
    "PAT_MAX_TTL": Option(
        timedelta(days=365),
        (timedelta,),
        "Longest lifetime a personal access token may be given; None also allows "
        "tokens that never expire (`expires_in: null`).",
        nullable=True,
        positive=True,
        bounds_id="tessera.E042",
    ),
    "PAT_LIMIT_PER_USER": Option(
        50,
        (int,),
        "Most live personal access tokens a user may hold; None for no limit.",
        nullable=True,
        positive=True,
        bounds_id="tessera.E044",
    ),
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
            for key, value in self.user_settings().items():
                if key in OPTIONS:
                    merged[key] = merge(OPTIONS[key], value)
            self._merged = merged
        return self._merged[name]

    def reload(self) -> None:
        self._merged = None

    @property
    def signing_key(self) -> bytes:
        key = self.SIGNING_KEY or settings.SECRET_KEY
        return key.encode() if isinstance(key, str) else key


def merge(option: Option, value: Any) -> Any:
    """The value Tessera uses for ``value`` given by the project.

    A value of the wrong type is passed through as given: the system checks report it
    (tessera.E002), and guessing a repair here would hide the mistake.
    """
    if option.merge_per_key and isinstance(value, dict):
        return {**option.default, **value}
    return value


tessera_settings = TesseraSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in ("TESSERA", "SECRET_KEY"):
        tessera_settings.reload()


setting_changed.connect(_reload)

