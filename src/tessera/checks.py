"""System checks that refuse broken or insecure Tessera configuration at start-up.

Errors (``tessera.E…``) stop ``manage.py`` commands; warnings (``tessera.W…``) are shown.
Every check id is listed in docs/settings.md.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import OPTIONS, tessera_settings

MIN_SIGNING_KEY_BYTES = 32
RATE_PATTERN = re.compile(r"^\d+/(sec|min|hour|day)$")
SCOPE_PATTERN = re.compile(r"^\S{1,64}$")


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
    if not [e for e in errors if e.id == "tessera.E002"]:
        errors.extend(_check_bounds(raw))
    errors.extend(_check_signing_key(raw))
    errors.extend(_check_rates(raw))
    errors.extend(_check_cache_alias())
    errors.extend(_check_authorization(raw))
    return errors


POSITIVE_DURATIONS = (
    "TOKEN_TTL", "MAX_TTL", "MIN_REFRESH_INTERVAL", "CACHE_TIMEOUT", "JWT_ACCESS_LIFETIME",
    "JWT_REFRESH_LIFETIME", "JWT_SLIDING_LIFETIME", "JWT_SLIDING_REFRESH_LIFETIME",
)
NON_NEGATIVE_DURATIONS = ("JWT_LEEWAY", "JWT_REUSE_GRACE")
# A tolerance longer than this stops being clock skew and starts being a lifetime.
MAX_TOLERANCE = timedelta(minutes=5)
MINIMUM_INTEGERS = {
    "TOKEN_LIMIT_PER_USER": 1, "NUM_PROXIES": 1, "MAX_BODY_BYTES": 1024, "RETRY_AFTER": 1,
}


def _check_bounds(raw: dict) -> list:
    errors = []
    for key in POSITIVE_DURATIONS + NON_NEGATIVE_DURATIONS:
        value = raw.get(key)
        if value is None:
            continue
        positive = key in POSITIVE_DURATIONS
        if value < timedelta(0) or (positive and value == timedelta(0)):
            bound = "positive" if positive else "zero or more"
            errors.append(Error(f"TESSERA[{key!r}] must be {bound}.",
                                obj="TESSERA", id="tessera.E008"))
        elif key in NON_NEGATIVE_DURATIONS and value > MAX_TOLERANCE:
            errors.append(Warning(
                f"TESSERA[{key!r}] is {value}: a tolerance this long keeps expired or reused "
                "tokens working.", hint="Keep it to seconds; at most five minutes.",
                obj="TESSERA", id="tessera.W011"))
    for key, minimum in MINIMUM_INTEGERS.items():
        value = raw.get(key)
        if value is not None and value < minimum:
            errors.append(Error(f"TESSERA[{key!r}] must be at least {minimum}.",
                                obj="TESSERA", id="tessera.E009"))
    return errors


@register(Tags.database)
def check_atomic_requests(app_configs=None, **kwargs):
    """Tessera's own views opt out of ATOMIC_REQUESTS; HTTP Basic on the project's cannot."""
    raw = getattr(settings, "TESSERA", {})
    if not isinstance(raw, dict) or raw.get("THROTTLE_BACKEND") != "database":
        return []
    if not any(db.get("ATOMIC_REQUESTS") for db in settings.DATABASES.values()):
        return []
    return [Warning(
        "ATOMIC_REQUESTS with THROTTLE_BACKEND='database': a failed HTTP Basic login on your "
        "own views rolls its throttle count back with the request.",
        hint="Use THROTTLE_BACKEND='cache' (Redis), or leave BASIC_AUTH off.",
        obj="TESSERA", id="tessera.W003")]


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
    configured = raw.get("LOGIN_THROTTLE_RATES")
    if not isinstance(configured, dict):
        return []
    rates = {**OPTIONS["LOGIN_THROTTLE_RATES"].default, **configured}
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
                hint="Use Redis (tessera.cache.RedisCache) in production.",
                obj="TESSERA",
                id="tessera.W002",
            )
        ]
    return []


def _check_authorization(raw: dict) -> list:
    """Scopes, the user-scopes hook, the admin role and personal-access-token lifetimes."""
    errors = []
    scopes = raw.get("SCOPES")
    if isinstance(scopes, dict):
        for name, description in scopes.items():
            if not (isinstance(name, str) and SCOPE_PATTERN.match(name)) or not isinstance(
                description, str
            ):
                errors.append(
                    Error(
                        f"Scope {name!r} needs a name of 1-64 characters without spaces and "
                        "a description string.",
                        obj="TESSERA",
                        id="tessera.E040",
                    )
                )
    hook = raw.get("USER_SCOPES")
    if isinstance(hook, str):
        try:
            resolved = import_string(hook)
        except ImportError:
            resolved = None
        if not callable(resolved):
            errors.append(
                Error(
                    f"TESSERA['USER_SCOPES'] = {hook!r} does not name an importable callable.",
                    obj="TESSERA",
                    id="tessera.E041",
                )
            )
    errors.extend(_check_personal_token_lifetimes())
    limit = raw.get("PAT_LIMIT_PER_USER")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit < 1:
        errors.append(
            Error(
                "TESSERA['PAT_LIMIT_PER_USER'] must be at least 1, or None for no limit.",
                obj="TESSERA",
                id="tessera.E044",
            )
        )
    if raw.get("ADMIN_ROLE") == "":
        errors.append(
            Error("TESSERA['ADMIN_ROLE'] must name a group.", obj="TESSERA", id="tessera.E043")
        )
    return errors


def _check_personal_token_lifetimes() -> list:
    durations = {
        key: getattr(tessera_settings, key)
        for key in ("PAT_FRESH_LOGIN", "PAT_DEFAULT_TTL", "PAT_MAX_TTL")
    }
    if not all(isinstance(value, timedelta | None) for value in durations.values()):
        return []  # wrong types are reported as tessera.E002
    errors = [
        Error(f"TESSERA[{key!r}] must be positive.", obj="TESSERA", id="tessera.E042")
        for key, value in durations.items()
        if value is not None and value <= timedelta(0)
    ]
    maximum = durations["PAT_MAX_TTL"]
    if maximum is not None and durations["PAT_DEFAULT_TTL"] > maximum:
        errors.append(
            Error(
                "TESSERA['PAT_DEFAULT_TTL'] is longer than TESSERA['PAT_MAX_TTL'].",
                obj="TESSERA",
                id="tessera.E042",
            )
        )
    if maximum is None:
        errors.append(
            Warning(
                "TESSERA['PAT_MAX_TTL'] is None: personal access tokens may be created that "
                "never expire, so a leaked one works until someone revokes it.",
                hint="Set a maximum lifetime, e.g. timedelta(days=365).",
                obj="TESSERA",
                id="tessera.W040",
            )
        )
    return errors


LEGACY_CLASSES = frozenset(
    {"rest_framework.authentication.TokenAuthentication", "knox.auth.TokenAuthentication"}
)


def _dotted_names(cls: type) -> set[str]:
    return {f"{base.__module__}.{base.__qualname__}" for base in cls.__mro__}


@register(Tags.security)
def check_authentication_order(app_configs=None, **kwargs) -> list[Error]:
    """An old library's class ahead of ours would accept tokens Tessera has revoked."""
    from rest_framework.settings import api_settings

    from .authentication import ImportedTokenAuthentication

    try:
        classes = list(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    except ImportError:
        return []  # DRF reports a class it cannot import itself.
    for position, authentication_class in enumerate(classes):
        if issubclass(authentication_class, ImportedTokenAuthentication):
            legacy = [c for c in classes[:position] if _dotted_names(c) & LEGACY_CLASSES]
            if legacy:
                return [
                    Error(
                        f"{legacy[0].__module__}.{legacy[0].__qualname__} comes before "
                        "ImportedTokenAuthentication: it would still accept an imported "
                        "token after Tessera revoked it (logout, password change).",
                        hint="Move tessera.authentication.ImportedTokenAuthentication ahead of it "
                        "in REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'].",
                        obj="REST_FRAMEWORK",
                        id="tessera.E030",
                    )
                ]
            return []
    return []



HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
RSA_MIN_BITS = 2048


@register(Tags.security)
def check_jwt(app_configs=None, **kwargs):
    """The JWT key ring loads, signs and verifies, and no key is too weak to trust."""
    from .tokens import jwt as codec

    raw = getattr(settings, "TESSERA", {})
    if not isinstance(raw, dict):
        return []
    entries = raw.get("JWT_KEYS")
    errors = _check_jwt_cookies(raw)
    if not isinstance(entries, list | tuple):
        return errors
    kids = [e.get("kid") for e in entries if isinstance(e, dict)]
    if len(kids) != len(entries) or not all(isinstance(k, str) and k for k in kids):
        return [*errors, Error("Every JWT_KEYS entry must be a dict with a 'kid'.",
                               obj="TESSERA", id="tessera.E010")]
    if len(set(kids)) != len(kids):
        errors.append(Error("JWT_KEYS has duplicate kids.", obj="TESSERA", id="tessera.E014"))
    active = raw.get("JWT_ACTIVE_KID")
    if active is not None and active not in kids:
        return [*errors, Error(f"JWT_ACTIVE_KID {active!r} is not a kid in JWT_KEYS.",
                               obj="TESSERA", id="tessera.E013")]
    try:
        ring = codec.key_ring()
        _sign_and_verify(codec, ring)
    except Exception as exc:
        return [*errors, Error(f"The JWT key ring cannot be used: {exc}", obj="TESSERA",
                               id="tessera.E010")]
    for key in ring.keys.values():
        errors.extend(_check_key_strength(key))
    return errors


def _sign_and_verify(codec, ring) -> None:
    """Catch a key whose type does not fit its algorithm before a request does."""
    import warnings

    import jwt

    for key in ring.keys.values():
        if key.signing_key is None:
            continue
        with warnings.catch_warnings():
            # Weak keys are reported as tessera.E011/E012, not as PyJWT warnings.
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            token = jwt.encode({"probe": 1}, key.signing_key, algorithm=key.algorithm)
            jwt.decode(token, key.verifying_key, algorithms=[key.algorithm])


def _check_key_strength(key) -> list:
    from cryptography.hazmat.primitives.asymmetric import rsa

    minimum = HMAC_MIN_BYTES.get(key.algorithm)
    if minimum is not None and len(key.verifying_key) < minimum:
        return [Error(
            f"JWT key {key.kid!r}: an {key.algorithm} secret needs at least {minimum} bytes, "
            f"it has {len(key.verifying_key)}.", obj="TESSERA", id="tessera.E011")]
    public = key.verifying_key
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < RSA_MIN_BITS:
        return [Error(
            f"JWT key {key.kid!r}: RSA keys need at least {RSA_MIN_BITS} bits, it has "
            f"{key.verifying_key.key_size}.", obj="TESSERA", id="tessera.E012")]
    return []


def _check_jwt_cookies(raw: dict) -> list:
    if not raw.get("JWT_COOKIES"):
        return []
    secure = raw.get("JWT_COOKIE_SECURE", True)
    if raw.get("JWT_COOKIE_SAMESITE") == "None" and not secure:
        return [Error("JWT cookies with SameSite=None must be Secure; browsers drop them.",
                      obj="TESSERA", id="tessera.E015")]
    if not secure and not settings.DEBUG:
        return [Warning("JWT cookies are sent without the Secure flag outside DEBUG: they "
                        "travel over plain HTTP.", obj="TESSERA", id="tessera.W010")]
    return []


@register(Tags.security)
def check_accounts(app_configs=None, **kwargs):
    """Account flows: front-end links, throttles, serializers, lifetimes, Basic auth."""
    raw = getattr(settings, "TESSERA", {})
    if not isinstance(raw, dict):
        return []
    errors = [
        *_check_frontend_urls(raw.get("FRONTEND_URLS")),
        *_check_account_rates(raw.get("ACCOUNT_THROTTLE_RATES")),
        *_check_account_serializers(raw),
        *_check_account_lifetimes(raw),
    ]
    if raw.get("REGISTER_AUTO_LOGIN") and (
        tessera_settings.PREVENT_ENUMERATION or tessera_settings.EMAIL_VERIFICATION == "mandatory"
    ):
        errors.append(Error(
            "REGISTER_AUTO_LOGIN needs PREVENT_ENUMERATION off and EMAIL_VERIFICATION other "
            "than 'mandatory': a sign-up for a taken address cannot return a token without "
            "revealing it, and an unverified account cannot log in.",
            obj="TESSERA", id="tessera.E052"))
    if raw.get("PREVENT_ENUMERATION") is False:
        errors.append(Warning(
            "PREVENT_ENUMERATION is off: register/ and me/ tell anyone which usernames and "
            "e-mail addresses have accounts.", obj="TESSERA", id="tessera.W054"))
    if raw.get("BASIC_AUTH_ALLOW_HTTP") and not settings.DEBUG:
        errors.append(Warning(
            "BASIC_AUTH_ALLOW_HTTP is on outside DEBUG: passwords may travel in clear.",
            hint="Set SECURE_PROXY_SSL_HEADER behind a TLS-terminating proxy instead.",
            obj="TESSERA", id="tessera.W052"))
    return errors


def _check_frontend_urls(urls) -> list:
    from .services.emails import LINK_PLACEHOLDERS, placeholders

    if not isinstance(urls, dict):
        return []
    errors = []
    for name, template in urls.items():
        wanted = LINK_PLACEHOLDERS.get(name)
        problem = None
        if wanted is None:
            problem = f"unknown link {name!r}; known: {', '.join(sorted(LINK_PLACEHOLDERS))}"
        elif not isinstance(template, str) or not template.startswith(("https://", "http://")):
            problem = f"{name!r} must be an absolute http(s) URL template"
        else:
            try:
                found = placeholders(template)
            except ValueError:
                found = None
            if found != wanted:
                expected = ", ".join("{" + p + "}" for p in sorted(wanted)) or "no placeholders"
                problem = f"{name!r} must contain exactly {expected}"
        if problem:
            errors.append(Error(f"TESSERA['FRONTEND_URLS']: {problem}.", obj="TESSERA",
                                id="tessera.E050"))
        elif not settings.DEBUG and not template.startswith("https://"):
            errors.append(Warning(
                f"TESSERA['FRONTEND_URLS'][{name!r}] is not https: reset and verification "
                "links would travel in clear.", obj="TESSERA", id="tessera.W050"))
    return errors


def _check_account_rates(rates) -> list:
    if not isinstance(rates, dict):
        return []
    known = OPTIONS["ACCOUNT_THROTTLE_RATES"].default
    errors = []
    for name, rate in rates.items():
        if name not in known:
            errors.append(Error(
                f"Unknown account throttle {name!r}; known: {', '.join(sorted(known))}.",
                obj="TESSERA", id="tessera.E051"))
        elif rate is None:
            errors.append(Warning(
                f"Account throttle {name!r} is switched off.", obj="TESSERA",
                id="tessera.W051"))
        elif not (isinstance(rate, str) and RATE_PATTERN.match(rate)):
            errors.append(Error(
                f"Account throttle rate {rate!r} is not of the form 'N/sec|min|hour|day'.",
                obj="TESSERA", id="tessera.E051"))
    return errors


def _check_account_serializers(raw: dict) -> list:
    errors = []
    for key in ("REGISTER_SERIALIZER", "ME_SERIALIZER"):
        path = raw.get(key)
        if not isinstance(path, str):
            continue
        try:
            import_string(path)
        except ImportError as exc:
            errors.append(Error(f"TESSERA[{key!r}] = {path!r} cannot be imported: {exc}",
                                obj="TESSERA", id="tessera.E053"))
    return errors


def _check_account_lifetimes(raw: dict) -> list:
    errors = [
        Error(f"TESSERA[{key!r}] must be positive.", obj="TESSERA", id="tessera.E054")
        for key in ("EMAIL_VERIFICATION_KEY_TTL", "PASSWORD_RESET_TOKEN_TTL")
        if isinstance(raw.get(key), timedelta) and raw[key] <= timedelta(0)
    ]
    reset_ttl = raw.get("PASSWORD_RESET_TOKEN_TTL")
    if isinstance(reset_ttl, timedelta) and (
        reset_ttl.total_seconds() > settings.PASSWORD_RESET_TIMEOUT
    ):
        errors.append(Warning(
            "PASSWORD_RESET_TOKEN_TTL is longer than Django's PASSWORD_RESET_TIMEOUT, which "
            "wins: reset links expire after PASSWORD_RESET_TIMEOUT.", obj="TESSERA",
            id="tessera.W053"))
    return errors
