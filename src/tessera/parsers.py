"""A JSON parser with a size bound and strict JSON (no NaN or Infinity).

Tessera's views refuse an oversized declared Content-Length before parsing; the bound
here also covers bodies sent without one.
"""

from __future__ import annotations

import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from .conf import tessera_settings
from .errors import RequestTooLarge


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = tessera_settings.MAX_BODY_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestTooLarge()
        try:
            return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError("JSON parse error: the body is not valid UTF-8 JSON.") from exc
        except RecursionError as exc:
            # A few kilobytes of "[" nest deeper than Python's parser can recurse; left
            # alone, that error would answer 500 on every endpoint.
            raise ParseError("JSON parse error: the body is nested too deeply.") from exc


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON.")
