"""Account flows: front-end links, throttles, auto-login, reset lifetime, Basic auth,
the new-device e-mail's link.

The serializer paths (E053) and the lifetimes' bounds (E054) come from their options,
checked with every other setting in :mod:`tessera.checks.settings`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from ..conf import OPTIONS, tessera_settings
from .given import given_settings
from .throttling import is_rate


def check_accounts(app_configs=None, **kwargs) -> list[CheckMessage]:
    given = given_settings()
    if given is None:
        return []
    errors = [
        *_check_frontend_urls(given.get("FRONTEND_URLS")),
        *_check_account_rates(given.get("ACCOUNT_THROTTLE_RATES")),
        *_check_reset_lifetime(given.get("PASSWORD_RESET_TOKEN_TTL")),
        *_check_new_device_link(given),
    ]
    if given.get("REGISTER_AUTO_LOGIN") and (
        tessera_settings.PREVENT_ENUMERATION or tessera_settings.EMAIL_VERIFICATION == "mandatory"
    ):
        errors.append(
            Error(
                "REGISTER_AUTO_LOGIN needs PREVENT_ENUMERATION off and EMAIL_VERIFICATION other "
                "than 'mandatory': a sign-up for a taken address cannot return a token without "
                "revealing it, and an unverified account cannot log in.",
                obj="TESSERA",
                id="tessera.E052",
            )
        )
    if given.get("PREVENT_ENUMERATION") is False:
        errors.append(
            Warning(
                "PREVENT_ENUMERATION is off: register/ and me/ tell anyone which usernames and "
                "e-mail addresses have accounts.",
                obj="TESSERA",
                id="tessera.W054",
            )
        )
    if given.get("BASIC_AUTH_ALLOW_HTTP") and not settings.DEBUG:
        errors.append(
            Warning(
                "BASIC_AUTH_ALLOW_HTTP is on outside DEBUG: passwords may travel in clear.",
                hint="Set SECURE_PROXY_SSL_HEADER behind a TLS-terminating proxy instead.",
                obj="TESSERA",
                id="tessera.W052",
            )
        )
    return errors


def _check_frontend_urls(urls: Any) -> list[CheckMessage]:
    from ..services.emails import LINK_PLACEHOLDERS, placeholders

    # Only the links the project gives: the defaults point at a local development server.
    if not isinstance(urls, dict):
        return []
    errors: list[CheckMessage] = []
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
            errors.append(
                Error(f"TESSERA['FRONTEND_URLS']: {problem}.", obj="TESSERA", id="tessera.E050")
            )
        elif not settings.DEBUG and not template.startswith("https://"):
            errors.append(
                Warning(
                    f"TESSERA['FRONTEND_URLS'][{name!r}] is not https: reset and verification "
                    "links would travel in clear.",
                    obj="TESSERA",
                    id="tessera.W050",
                )
            )
    return errors


def _check_new_device_link(given: dict[str, Any]) -> list[CheckMessage]:
    # On by default, so a project that set its front-end links before this one existed
    # would send new-device e-mails linking to the development default. A project that
    # gives no links at all is judged by nothing here, as for the other links.
    urls = given.get("FRONTEND_URLS")
    if (
        settings.DEBUG
        or not given.get("NEW_DEVICE_NOTICE", OPTIONS["NEW_DEVICE_NOTICE"].default)
        or not isinstance(urls, dict)
        or "not_me" in urls
    ):
        return []
    return [
        Warning(
            "NEW_DEVICE_NOTICE is on but TESSERA['FRONTEND_URLS'] gives no 'not_me' link: "
            "new-device e-mails would link to the development default "
            f"{OPTIONS['FRONTEND_URLS'].default['not_me']!r}.",
            hint="Add FRONTEND_URLS['not_me'] (a page posting {token} to sessions/not-me/), "
            "or set NEW_DEVICE_NOTICE to False.",
            obj="TESSERA",
            id="tessera.W055",
        )
    ]


def _check_account_rates(rates: Any) -> list[CheckMessage]:
    if not isinstance(rates, dict):
        return []
    known = OPTIONS["ACCOUNT_THROTTLE_RATES"].default
    errors: list[CheckMessage] = []
    for name, rate in rates.items():
        if name not in known:
            errors.append(
                Error(
                    f"Unknown account throttle {name!r}; known: {', '.join(sorted(known))}.",
                    obj="TESSERA",
                    id="tessera.E051",
                )
            )
        elif rate is None:
            errors.append(
                Warning(
                    f"Account throttle {name!r} is switched off.", obj="TESSERA", id="tessera.W051"
                )
            )
        elif not is_rate(rate):
            errors.append(
                Error(
                    f"Account throttle rate {rate!r} is not of the form 'N/sec|min|hour|day'.",
                    obj="TESSERA",
                    id="tessera.E051",
                )
            )
    return errors


def _check_reset_lifetime(reset_ttl: Any) -> list[CheckMessage]:
    if isinstance(reset_ttl, timedelta) and (
        reset_ttl.total_seconds() > settings.PASSWORD_RESET_TIMEOUT
    ):
        return [
            Warning(
                "PASSWORD_RESET_TOKEN_TTL is longer than Django's PASSWORD_RESET_TIMEOUT, which "
                "wins: reset links expire after PASSWORD_RESET_TIMEOUT.",
                obj="TESSERA",
                id="tessera.W053",
            )
        ]
    return []
