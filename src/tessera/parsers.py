"""A JSON parser that refuses oversized bodies before reading them whole."""

from __future__ import annotations

import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from .conf import tessera_settings
from .errors import RequestTooLarge


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = tessera_settings.MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        try:
            if declared and int(declared) > limit:
                raise RequestTooLarge()
        except ValueError as exc:
            raise ParseError("Invalid Content-Length header.") from exc
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestTooLarge()
        try:
            return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError("JSON parse error: the body is not valid UTF-8 JSON.") from exc


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON.")
