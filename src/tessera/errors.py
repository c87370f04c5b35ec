"""One JSON shape for every error Tessera returns.

```json
{"code": "invalid", "detail": "Invalid input.",
 "fields": {"password": [{"code": "required", "detail": "This field is required."}]}}
```

``code`` is stable and machine-readable; ``detail`` is for humans and may be translated;
``fields`` appears only on validation errors. Projects may use :func:`exception_handler`
as DRF's ``EXCEPTION_HANDLER`` to give their own views the same shape; Tessera's views use
it whatever the project's setting.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, status

from .conf import tessera_settings

logger = logging.getLogger("tessera")


class ServiceUnavailable(exceptions.APIException):
    """A backing service (database, cache) failed: fail closed, ask the client to retry."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable. Try again shortly."
    default_code = "service_unavailable"

    def __init__(self, detail: str | None = None, code: str | None = None) -> None:
        super().__init__(detail, code)
        self.wait = tessera_settings.RETRY_AFTER


class Conflict(exceptions.APIException):
    """A write lost a race for a unique value: the database is up, so never a 503."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with data stored meanwhile. Try again."
    default_code = "conflict"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class InvalidCredentials(exceptions.AuthenticationFailed):
    default_detail = "Unable to log in with the provided credentials."
    default_code = "invalid_credentials"


class SessionLimitReached(exceptions.PermissionDenied):
    default_detail = "This account has reached its limit of active sessions."
    default_code = "session_limit_reached"


def _field_errors(details: Any) -> dict[str, list[dict[str, str]]]:
    """Flatten DRF's nested error details into ``{field: [{code, detail}]}``.

    Nested serializers give dotted paths (``address.city``) and list items their index
    (``items.0``), so a client can map every message to one input.
    """
    flat: dict[str, list[dict[str, str]]] = {}

    def walk(path: str, node: Any) -> None:
        if isinstance(node, dict) and set(node) == {"message", "code"}:
            flat.setdefault(path, []).append(
                {"code": str(node["code"]), "detail": str(node["message"])}
            )
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(f"{path}.{key}" if path else str(key), value)
        elif isinstance(node, list):
            leaf_list = all(isinstance(item, dict) and set(item) == {"message", "code"}
                            for item in node)
            for index, item in enumerate(node):
                walk(path if leaf_list else f"{path}.{index}", item)

    if isinstance(details, list):
        details = {"non_field_errors": details}
    walk("", details)
    return flat


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return {
            "code": "invalid",
            "detail": "Invalid input.",
            "fields": _field_errors(exc.get_full_details()),
        }
    codes = exc.get_codes()
    detail = exc.detail
    if isinstance(detail, dict | list):
        # An APIException raised with a structured detail: keep its first message.
        full = _field_errors(exc.get_full_details())
        first = next(iter(full.values()))[0]
        return {"code": first["code"], "detail": first["detail"]}
    return {"code": codes if isinstance(codes, str) else exc.default_code, "detail": str(detail)}


def exception_handler(exc: Exception, context: dict[str, Any]):
    # Imported here: rest_framework.views imports the project's authentication classes,
    # which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    # IntegrityError is a DatabaseError, but it proves the database answered.
    if isinstance(exc, IntegrityError):
        logger.warning("Integrity error while serving a request; answering 409.", exc_info=exc)
        exc = Conflict()
    elif isinstance(exc, DatabaseError):
        logger.exception("Database error while serving a request; answering 503.")
        exc = ServiceUnavailable()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = error_body(exc)
    return response
