"""Scopes, the admin role and personal-access-token lifetimes, judged together.

Each setting's own type and bounds (E041, E042, E044) come from its option; this module
holds what needs more than one value, or more than a bound.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.checks import CheckMessage, Error, Warning

from ..conf import tessera_settings

SCOPE_PATTERN = re.compile(r"^\S{1,64}$")


def authorization_messages(given: dict[str, Any]) -> list[CheckMessage]:
    messages = [*_scope_messages(given.get("SCOPES")), *_personal_token_lifetime_messages()]
    if given.get("ADMIN_ROLE") == "":
        messages.append(
            Error("TESSERA['ADMIN_ROLE'] must name a group.", obj="TESSERA", id="tessera.E043")
        )
    return messages


def _scope_messages(scopes: Any) -> list[CheckMessage]:
    if not isinstance(scopes, dict):
        return []
    return [
        Error(
            f"Scope {name!r} needs a name of 1-64 characters without spaces and "
            "a description string.",
            obj="TESSERA",
            id="tessera.E040",
        )
        for name, description in scopes.items()
        if not (isinstance(name, str) and SCOPE_PATTERN.match(name))
        or not isinstance(description, str)
    ]


def _personal_token_lifetime_messages() -> list[CheckMessage]:
    default = tessera_settings.PAT_DEFAULT_TTL
    maximum = tessera_settings.PAT_MAX_TTL
    if not isinstance(default, timedelta) or not isinstance(maximum, timedelta | None):
        return []  # reported as tessera.E002
    if maximum is None:
        return [
            Warning(
                "TESSERA['PAT_MAX_TTL'] is None: personal access tokens may be created that "
                "never expire, so a leaked one works until someone revokes it.",
                hint="Set a maximum lifetime, e.g. timedelta(days=365).",
                obj="TESSERA",
                id="tessera.W040",
            )
        ]
    if default > maximum:
        return [
            Error(
                "TESSERA['PAT_DEFAULT_TTL'] is longer than TESSERA['PAT_MAX_TTL'].",
                obj="TESSERA",
                id="tessera.E042",
            )
        ]
    return []
