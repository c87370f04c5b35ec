"""Passkeys: the relying party id and the origins allowed to use it.

A browser signs the origin of the page into every WebAuthn response, and the
authenticator signs a hash of the relying party id; Tessera accepts a response only
when both are ones it expects. A mistake in either setting would make every passkey
ceremony fail (or succeed for the wrong site), so it is caught here, at start-up.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.core.checks import CheckMessage, Error

from .given import given_settings

# A domain as WebAuthn takes one: lowercase labels, no scheme, port, path or trailing dot.
# IP addresses are refused by browsers as relying party ids, so the last label has a letter.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LAST_LABEL = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
RP_ID_PATTERN = re.compile(rf"^(?:{_LABEL}\.)*{_LAST_LABEL}$")
# What Android reports for a native app: the SHA-256 of its signing certificate, base64url.
ANDROID_APP_ORIGIN = re.compile(r"^android:apk-key-hash:[A-Za-z0-9_-]{43}$")


def check_webauthn(app_configs=None, **kwargs) -> list[CheckMessage]:
    given = given_settings()
    if given is None:
        return []
    rp_id = given.get("WEBAUTHN_RP_ID")
    origins = given.get("WEBAUTHN_ORIGINS")
    if rp_id is None:
        if origins:
            return [
                _error(
                    "WEBAUTHN_ORIGINS is set but WEBAUTHN_RP_ID is not, so passkeys stay off.",
                    "tessera.E071",
                    hint="Set WEBAUTHN_RP_ID to the site's domain, or remove WEBAUTHN_ORIGINS.",
                )
            ]
        return []
    if not RP_ID_PATTERN.match(rp_id):
        return [
            _error(
                f"WEBAUTHN_RP_ID {rp_id!r} is not a lowercase domain name.",
                "tessera.E070",
                hint="Give the bare domain, e.g. 'example.com': no scheme, port or path.",
            )
        ]
    if not origins:
        return [
            _error(
                "WEBAUTHN_RP_ID is set but WEBAUTHN_ORIGINS is empty: no page could use a passkey.",
                "tessera.E071",
                hint=f"List the origins of the pages that log in, e.g. ['https://{rp_id}'].",
            )
        ]
    return [message for origin in origins for message in _origin_messages(origin, rp_id)]


def _origin_messages(origin: Any, rp_id: str) -> list[CheckMessage]:
    if isinstance(origin, str) and ANDROID_APP_ORIGIN.match(origin):
        # An Android app's own origin: the app is tied to the domain by the site's
        # assetlinks.json, not by its name.
        return []
    host = _origin_host(origin)
    if host is None:
        return [
            _error(
                f"WEBAUTHN_ORIGINS entry {origin!r} is not an origin.",
                "tessera.E072",
                hint="An origin is 'https://host' or 'https://host:port', without a path "
                "(plain http is for localhost only), or an Android app's "
                "'android:apk-key-hash:…'.",
            )
        ]
    if host != rp_id and not host.endswith(f".{rp_id}"):
        return [
            _error(
                f"WEBAUTHN_ORIGINS entry {origin!r} is outside WEBAUTHN_RP_ID {rp_id!r}.",
                "tessera.E073",
                hint="A browser refuses a relying party id that is not the page's host or "
                "a parent domain of it.",
            )
        ]
    return []


def _origin_host(origin: Any) -> str | None:
    """The host of ``origin`` when it is one a browser would report, else None."""
    if not isinstance(origin, str):
        return None
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return None
    host = parts.hostname
    if host is None or parts.username is not None or parts.password is not None:
        return None
    if origin != f"{parts.scheme}://{parts.netloc}" or host != parts.netloc.split(":")[0]:
        # A path, query or fragment, or a host not in lowercase.
        return None
    local = host == "localhost" or host.endswith(".localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        return None
    # Browsers report an origin without its scheme's default port, and match no
    # wildcards: such an entry would never equal what a page sends.
    if parts.port == {"https": 443, "http": 80}[parts.scheme] or "*" in host:
        return None
    return host


def _error(message: str, check_id: str, hint: str) -> Error:
    return Error(message, hint=hint, obj="TESSERA", id=check_id)
