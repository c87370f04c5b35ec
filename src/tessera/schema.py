"""Schema annotations that work with or without drf-spectacular installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
except ImportError:  # the `openapi` extra is not installed
    extend_schema = PolymorphicProxySerializer = TesseraAutoSchema = None
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


if extend_schema is not None:
    from drf_spectacular.openapi import AutoSchema

    class TesseraAutoSchema(AutoSchema):
        """drf-spectacular's schema, plus the answers every Tessera view gives alike: a
        body larger than MAX_BODY_BYTES is refused with 413 by every operation that reads
        one, so no view has to repeat it."""

        def _get_response_bodies(self, direction: str = "response") -> dict:
            # The hook extend_schema leaves alone: it replaces get_response_serializers.
            bodies = super()._get_response_bodies(direction)
            if self.method in ("POST", "PUT", "PATCH") and "413" not in bodies:
                from .serializers.fields import ErrorSerializer

                bodies["413"] = self._get_response_for_code(
                    ErrorSerializer, "413", direction=direction
                )
            return bodies
