"""JSON-RPC 2.0 framing for MCP: message kinds, error codes and the shapes of replies.

No transport and no MCP semantics here; `protocol.py` decides what a message means.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# HTTP replies and the indented text form are written with orjson: json indents (the official
# server's text form) in pure Python, a large share of a search_nodes call's Python time
# (bench/RESULTS.md, "Design measurements"). The text is json's but for floats, which orjson writes as JavaScript does
# (1e-7, not 1e-07): the official tools' results (indented) hold none, and the reply bytes are
# read by JSON parsers. What orjson refuses (lone surrogates, integers beyond 64 bits,
# non-string keys) goes to json.
import orjson

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002  # handshake era; 2026-07-28 uses INVALID_PARAMS instead
HEADER_MISMATCH = -32020  # 2026-07-28
UNSUPPORTED_PROTOCOL_VERSION = -32022  # 2026-07-28

# The HTTP status a JSON-RPC error is sent with on Streamable HTTP; others go out as 200.
HTTP_STATUS = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    HEADER_MISMATCH: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
}
# 2026-07-28 maps more codes onto HTTP (an unknown method is a 404 there).
MODERN_HTTP_STATUS = {**HTTP_STATUS, INVALID_PARAMS: 400, METHOD_NOT_FOUND: 404}


class ProtocolError(Exception):
    """A JSON-RPC error reply: `code`, `message` and optional `data`."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": _bounded(self.message)}
        if self.data is not None:
            error["data"] = _bounded(self.data)
        return error


# Errors echo what was sent (an unknown tool's name, a resource's uri); what they echo is cut to
# this many characters, and lists to this many items, so the error stays small.
ECHOED_CHARACTERS = 300
ECHOED_ITEMS = 20


def _bounded(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= ECHOED_CHARACTERS else f"{value[:ECHOED_CHARACTERS]}… ({len(value)} characters)"
    if depth >= 4 and isinstance(value, dict | list):
        return "…"
    if isinstance(value, dict):
        return {key: _bounded(item, depth + 1) for key, item in list(value.items())[:ECHOED_ITEMS]}
    if isinstance(value, list):
        return [_bounded(item, depth + 1) for item in value[:ECHOED_ITEMS]]
    return value


def result(request_id: Any, value: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def error(request_id: Any, problem: ProtocolError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": problem.error()}


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


# One decoder for every message: json.loads with a keyword argument builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_not_json)


def parse(raw: bytes | str) -> Any:
    """Decode one JSON text; raises ProtocolError(PARSE_ERROR). Python's NaN / Infinity
    extensions are refused: they are not JSON, and no argument may be non-finite."""
    try:
        if isinstance(raw, bytes | bytearray):
            # As json.loads does: UTF-8, -16 or -32 by the first bytes, a UTF-8 BOM skipped.
            raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
        elif raw.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
        return _DECODER.decode(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ProtocolError(PARSE_ERROR, f"Parse error: {exc}") from None


def dumps(message: Any) -> str:
    """One line of compact JSON (MCP's stdio framing forbids embedded newlines; json escapes them).
    json's own text, floats included: tool results carry it as their text form."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def wire(message: Any) -> bytes:
    """`encode(dumps(message))`, in one step when orjson can write it."""
    try:
        return orjson.dumps(message)
    except orjson.JSONEncodeError:
        return encode(json.dumps(message, ensure_ascii=False, separators=(",", ":")))


def pretty(value: Any, indent: int) -> str:
    """JSON indented by `indent` spaces, as `json.dumps(value, ensure_ascii=False, indent=indent)`
    writes it (the official memory server's `JSON.stringify(value, null, 2)`)."""
    if indent == 2:
        try:
            return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONEncodeError:
            pass
    return json.dumps(value, ensure_ascii=False, indent=indent)


def encode(text: str) -> bytes:
    """UTF-8 for the wire. A request may carry lone surrogates (`"\\ud800"` is valid JSON, and
    names and ids are echoed back) that UTF-8 cannot encode; in JSON text from `dumps` they only
    occur inside strings, where `backslashreplace` writes them as the same JSON escape again."""
    return text.encode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Message:
    """A JSON-RPC message sorted into its kind."""

    kind: str  # "request" | "notification" | "response"
    raw: dict[str, Any]

    @property
    def id(self) -> Any:
        return self.raw.get("id")

    @property
    def method(self) -> str:
        return str(self.raw.get("method", ""))

    @property
    def params(self) -> dict[str, Any]:
        params = self.raw.get("params")
        return params if isinstance(params, dict) else {}


def classify(value: Any) -> Message:
    """Sort a decoded JSON value into request / notification / response.

    Raises ProtocolError(INVALID_REQUEST) for anything that is not one JSON-RPC 2.0 message."""
    if not isinstance(value, dict) or value.get("jsonrpc") != "2.0":
        raise ProtocolError(INVALID_REQUEST, "Invalid Request: expected a JSON-RPC 2.0 message object")
    has_id = "id" in value
    if has_id and not (isinstance(value["id"], (str, int)) and not isinstance(value["id"], bool)):
        raise ProtocolError(INVALID_REQUEST, "Invalid Request: id must be a string or an integer")
    if "method" in value:
        if not isinstance(value["method"], str) or not value["method"]:
            raise ProtocolError(INVALID_REQUEST, "Invalid Request: method must be a non-empty string")
        if "params" in value and not isinstance(value["params"], dict):
            raise ProtocolError(INVALID_REQUEST, "Invalid Request: params must be an object")
        return Message("request" if has_id else "notification", value)
    if has_id and (("result" in value) != ("error" in value)):
        return Message("response", value)
    raise ProtocolError(INVALID_REQUEST, "Invalid Request: a message needs a method, or an id with result or error")
