"""Social sign-in: the entries of SOCIAL_PROVIDERS.

A mistake in an entry would fail every sign-in with that provider, or accept more than
intended (an HMAC algorithm, a provider URL over plain HTTP), so it is caught at start-up.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.core.checks import CheckMessage, Error, Warning

from ..services.issuer_keys import acceptable_url
from ..services.social.providers import GITHUB, GITHUB_URLS, MICROSOFT, OIDC, TYPES
from ..tokens.external import ALLOWED_ALGORITHMS
from .external import asymmetric_algorithms
from .given import given_settings

COMMON_KEYS = frozenset(
    {
        "type",
        "client_id",
        "client_secret",
        "scope",
        "trust_mfa",
        "link_verified_email",
        "signup",
        "redirect_uri",
    }
)
OPENID_KEYS = frozenset({"issuer", "algorithms", "native_client_ids", "endpoint_hosts"})
KEYS_OF_TYPE = {
    OIDC: OPENID_KEYS,
    "google": OPENID_KEYS,
    MICROSOFT: OPENID_KEYS | {"tenant"},
    GITHUB: frozenset(GITHUB_URLS),
}
# The name is a URL path segment and a column value.
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# Microsoft's ID tokens name the tenant by its id, whatever alias the sign-in used.
TENANT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_social_providers(app_configs=None, **kwargs) -> list[CheckMessage]:
    given = given_settings()
    providers = given.get("SOCIAL_PROVIDERS") if given is not None else None
    if not providers:
        return []
    messages: list[CheckMessage] = []
    for name, entry in providers.items():
        if not (isinstance(name, str) and NAME.fullmatch(name)):
            messages.append(
                _error(name, "is not a name of lowercase letters, digits, - and _", "E120")
            )
            continue
        messages += _entry_messages(name, entry)
    return messages


def _entry_messages(name: str, entry: Any) -> list[CheckMessage]:
    if not isinstance(entry, dict):
        return [_error(name, "is not a dict", "E120")]
    kind = entry.get("type")
    if kind not in TYPES:
        return [_error(name, f"needs a type among {', '.join(TYPES)}", "E121")]
    unknown = sorted(set(entry) - COMMON_KEYS - KEYS_OF_TYPE[kind])
    if unknown:
        return [_error(name, f"has unknown {', '.join(unknown)} for type {kind!r}", "E121")]
    messages = _issuer_messages(name, kind, entry)
    messages += _credential_messages(name, entry)
    algorithms = entry.get("algorithms", ("RS256",))
    if not asymmetric_algorithms(algorithms):
        messages.append(
            _error(
                name,
                f"needs algorithms among {', '.join(ALLOWED_ALGORITHMS)} (asymmetric only)",
                "E124",
            )
        )
    messages += _option_messages(name, kind, entry)
    return messages


def _issuer_messages(name: str, kind: str, entry: dict[str, Any]) -> list[CheckMessage]:
    if kind == OIDC and "issuer" not in entry:
        return [_error(name, "of type 'oidc' needs its issuer", "E122")]
    if "issuer" in entry and not acceptable_url(entry["issuer"]):
        return [_error(name, "has an issuer that is not an https URL", "E122")]
    if kind == MICROSOFT and "issuer" not in entry:
        tenant = entry.get("tenant")
        if not (isinstance(tenant, str) and (tenant == "consumers" or TENANT_ID.fullmatch(tenant))):
            return [
                _error(
                    name,
                    "of type 'microsoft' needs its tenant: the directory id (a GUID), or "
                    "'consumers'. The issuer of 'common', 'organizations' or a domain name is "
                    "each user's own tenant id, which no entry could check",
                    "E122",
                )
            ]
    bad_urls = [key for key in GITHUB_URLS if key in entry and not acceptable_url(entry[key])]
    if bad_urls:
        return [_error(name, f"has {', '.join(bad_urls)} that is not an https URL", "E122")]
    return []


def _credential_messages(name: str, entry: dict[str, Any]) -> list[CheckMessage]:
    client_id, secret = entry.get("client_id"), entry.get("client_secret")
    if client_id is not None and not (isinstance(client_id, str) and client_id):
        return [_error(name, "has a client_id that is not a non-empty string", "E123")]
    if secret is not None and not isinstance(secret, str):
        return [_error(name, "has a client_secret that is not a string", "E123")]
    if secret and not client_id:
        return [_error(name, "has a client_secret without its client_id", "E123")]
    return []


def _option_messages(name: str, kind: str, entry: dict[str, Any]) -> list[CheckMessage]:
    bad = [
        key
        for key in ("trust_mfa", "link_verified_email", "signup")
        if key in entry and not isinstance(entry[key], bool)
    ]
    if "scope" in entry and not (isinstance(entry["scope"], str) and entry["scope"].strip()):
        bad.append("scope")
    if kind != GITHUB and "openid" not in str(entry.get("scope", "openid")).split():
        bad.append("scope (without 'openid' no ID token is issued)")
    natives = entry.get("native_client_ids", ())
    if not (isinstance(natives, list | tuple) and all(isinstance(n, str) and n for n in natives)):
        bad.append("native_client_ids")
    if "redirect_uri" in entry and not acceptable_url(entry["redirect_uri"]):
        bad.append("redirect_uri")
    hosts = entry.get("endpoint_hosts", ())
    if not (isinstance(hosts, list | tuple) and all(_is_host(host) for host in hosts)):
        bad.append("endpoint_hosts")
    messages = [_error(name, f"has a malformed {', '.join(bad)}", "E125")] if bad else []
    if kind == GITHUB and entry.get("trust_mfa"):
        messages.append(
            Warning(
                f"SOCIAL_PROVIDERS[{name!r}] trusts GitHub's second factor, which GitHub "
                "never asserts: users with a second factor here are still asked for it.",
                obj="TESSERA",
                id="tessera.W120",
            )
        )
    return messages


def _is_host(value: Any) -> bool:
    return isinstance(value, str) and urlsplit(f"https://{value}/").hostname == value


def _error(name: Any, problem: str, number: str) -> Error:
    return Error(
        f"SOCIAL_PROVIDERS[{name!r}] {problem}.",
        hint="See docs/social.md for the keys of an entry.",
        obj="TESSERA",
        id=f"tessera.{number}",
    )
