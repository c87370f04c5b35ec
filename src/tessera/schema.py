"""Schema annotations that work with or without drf-spectacular installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from drf_spectacular.utils import extend_schema
except ImportError:  # the `openapi` extra is not installed
    extend_schema = None
else:
    from . import schema_extensions  # noqa: F401  (registers the security schemes)


def document(**kwargs: Any) -> Callable:
    """``extend_schema(**kwargs)`` when drf-spectacular is present, else a no-op."""

    def decorate(target):
        return extend_schema(**kwargs)(target) if extend_schema else target

    return decorate
