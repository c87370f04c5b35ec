"""The ``TESSERA`` dict as the project wrote it, as the feature checks may read it."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from ..conf import OPTIONS, Option


def given_settings() -> dict[str, Any] | None:
    """:func:`well_typed` of the TESSERA dict; None if it is no dict (tessera.E004)."""
    raw = getattr(settings, "TESSERA", {})
    return well_typed(raw) if isinstance(raw, dict) else None


def well_typed(raw: dict[str, Any]) -> dict[str, Any]:
    """The known keys of ``raw`` whose values have their option's type.

    An unknown key or a wrongly typed value is reported once, by the generic loop
    (tessera.E001, E002); leaving it out here keeps the rules across settings from judging
    it a second time, or tripping over it (``1.5`` is truthy, a set unhashable).
    """
    return {
        key: value for key, value in raw.items() if key in OPTIONS and _fits(value, OPTIONS[key])
    }


def _fits(value: Any, option: Option) -> bool:
    return (value is None and option.nullable) or has_type(value, option)


def has_type(value: Any, option: Option) -> bool:
    # bool is an int subclass; an int-typed setting must not accept True.
    if isinstance(value, bool) and bool not in option.types:
        return False
    return isinstance(value, option.types)
