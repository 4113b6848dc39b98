"""The REST API's JSON body parser and renderer: DRF's, made safe for hostile input.

The parser refuses nesting too deep to decode as malformed JSON (400) instead of failing with
RecursionError (500). The renderer writes non-ASCII text as it is (UNICODE_JSON), except in an
answer holding a lone surrogate (`"\\ud800"` is valid JSON, and errors echo what was sent),
which UTF-8 cannot encode: that answer is written with ASCII escapes instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply") from None


class _AsciiJSONRenderer(JSONRenderer):
    ensure_ascii = True


class SafeJSONRenderer(JSONRenderer):
    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        try:
            return bytes(super().render(data, accepted_media_type, renderer_context))
        except UnicodeEncodeError:
            return bytes(_AsciiJSONRenderer().render(data, accepted_media_type, renderer_context))
