"""Resource-server mode: the entries of TRUSTED_ISSUERS and where the class is listed.

A mistake in an entry would refuse every token of that issuer, or accept more than
intended (an HMAC algorithm, a key URL over plain HTTP), so it is caught at start-up.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string
from rest_framework.settings import api_settings

from ..authentication import ExternalJWTAuthentication, JWTAuthentication
from ..services.issuer_keys import acceptable_url
from ..tokens.external import ALLOWED_ALGORITHMS
from .given import given_settings

REQUIRED_KEYS = frozenset({"issuer", "audience", "algorithms", "user"})
OPTIONAL_KEYS = frozenset(
    {
        "jwks_uri",
        "roles_claim",
        "scopes_claim",
        "email_claim",
        "audience_claim",
        "required_claims",
        "link_verified_email",
        "open_session",
    }
)


def check_trusted_issuers(app_configs=None, **kwargs) -> list[CheckMessage]:
    given = given_settings()
    entries = given.get("TRUSTED_ISSUERS") if given is not None else None
    if not entries:
        return []
    messages: list[CheckMessage] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        messages += _entry_messages(index, entry)
        issuer = entry.get("issuer") if isinstance(entry, dict) else None
        if isinstance(issuer, str):
            if issuer in seen:
                messages.append(_error(index, f"repeats the issuer {issuer!r}", "tessera.E080"))
            if issuer == given.get("JWT_ISSUER"):
                # Tessera's own tokens would then be taken for the external issuer's.
                messages.append(_error(index, "has Tessera's own JWT_ISSUER", "tessera.E080"))
            seen.add(issuer)
    return messages + _order_messages()


def _entry_messages(index: int, entry: Any) -> list[CheckMessage]:
    if not isinstance(entry, dict):
        return [_error(index, "is not a dict", "tessera.E080")]
    missing = sorted(REQUIRED_KEYS - set(entry))
    unknown = sorted(set(entry) - REQUIRED_KEYS - OPTIONAL_KEYS)
    if missing or unknown:
        problem = f"lacks {', '.join(missing)}" if missing else f"has unknown {', '.join(unknown)}"
        return [_error(index, problem, "tessera.E080")]
    messages = []
    if not acceptable_url(entry["issuer"]):
        messages.append(_error(index, "has an issuer that is not an https URL", "tessera.E080"))
    if not _names(entry["audience"]):
        messages.append(_error(index, "needs an audience: a string or strings", "tessera.E080"))
    algorithms = entry["algorithms"]
    if not asymmetric_algorithms(algorithms):
        messages.append(
            _error(
                index,
                f"needs algorithms among {', '.join(ALLOWED_ALGORITHMS)} (asymmetric only)",
                "tessera.E081",
            )
        )
    if not _user_mode_ok(entry["user"]):
        messages.append(
            _error(
                index,
                "has a user that is neither 'link', 'create' nor an importable callable",
                "tessera.E082",
            )
        )
    if "jwks_uri" in entry and not acceptable_url(entry["jwks_uri"]):
        messages.append(_error(index, "has a jwks_uri that is not an https URL", "tessera.E083"))
    messages += _claim_messages(index, entry)
    return messages


def asymmetric_algorithms(algorithms: Any) -> bool:
    """A non-empty list of the asymmetric algorithms an issuer's token may be signed with."""
    return (
        isinstance(algorithms, list | tuple)
        and bool(algorithms)
        and all(algorithm in ALLOWED_ALGORITHMS for algorithm in algorithms)
    )


def _claim_messages(index: int, entry: dict[str, Any]) -> list[CheckMessage]:
    bad = [
        name
        for name in ("roles_claim", "scopes_claim")
        if name in entry and not _names(entry[name])
    ]
    bad += [
        name
        for name in ("email_claim", "audience_claim")
        if name in entry and not (isinstance(entry[name], str) and entry[name])
    ]
    required = entry.get("required_claims", {})
    if not (isinstance(required, dict) and all(map(_json_value, required.values()))):
        bad.append("required_claims")
    bad += [
        name
        for name in ("link_verified_email", "open_session")
        if name in entry and not isinstance(entry[name], bool)
    ]
    if not bad:
        return []
    return [_error(index, f"has a malformed {', '.join(bad)}", "tessera.E084")]


def _json_value(value: Any) -> bool:
    """A value a JSON claim can equal: claims are compared type-exactly, so a tuple or a
    set would never match, and NaN never equals itself."""
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if value is None or isinstance(value, str | int | bool):
        return True
    if isinstance(value, list):
        return all(map(_json_value, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) for k in value) and all(map(_json_value, value.values()))
    return False


def _names(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(item, str) and item for item in value)
    )


def _user_mode_ok(mode: Any) -> bool:
    if mode in ("link", "create"):
        return True
    if not isinstance(mode, str):
        return False
    try:
        return callable(import_string(mode))
    except ImportError:
        return False


def _order_messages() -> list[CheckMessage]:
    classes = list(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    positions = {
        kind: next((i for i, cls in enumerate(classes) if issubclass(cls, kind)), None)
        for kind in (ExternalJWTAuthentication, JWTAuthentication)
    }
    external, own = positions[ExternalJWTAuthentication], positions[JWTAuthentication]
    if external is None or own is None or external < own:
        return []
    return [
        Error(
            "JWTAuthentication is listed before ExternalJWTAuthentication: it refuses every "
            "external token before the external class sees it.",
            hint="List ExternalJWTAuthentication first in DEFAULT_AUTHENTICATION_CLASSES.",
            obj="REST_FRAMEWORK",
            id="tessera.E085",
        )
    ]


def _error(index: int, problem: str, check_id: str) -> Error:
    return Error(
        f"TRUSTED_ISSUERS item {index} {problem}.",
        hint="See docs/federation.md for the keys of an entry.",
        obj="TESSERA",
        id=check_id,
    )
