"""Schema annotations that work with or without drf-spectacular installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
except ImportError:  # the `openapi` extra is not installed
    extend_schema = PolymorphicProxySerializer = None
else:
    from . import schema_extensions  # noqa: F401  (registers the security schemes)


# An empty JSON object as a response body: drf-spectacular documents a serializer
# without fields as "no body", which a client reading `{}` would be told wrongly.
EMPTY_OBJECT = {"type": "object", "properties": {}, "additionalProperties": False}


def document(**kwargs: Any) -> Callable:
    """``extend_schema(**kwargs)`` when drf-spectacular is present, else a no-op."""

    def decorate(target):
        return extend_schema(**kwargs)(target) if extend_schema else target

    return decorate


def one_of(name: str, serializers: list) -> Any:
    """A response that is exactly one of ``serializers`` (no discriminating field)."""
    if PolymorphicProxySerializer is None:
        return None
    return PolymorphicProxySerializer(
        component_name=name, serializers=serializers, resource_type_field_name=None
    )
