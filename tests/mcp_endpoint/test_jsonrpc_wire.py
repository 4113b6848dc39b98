"""The JSON helpers of mcp_endpoint/jsonrpc.py (orjson where it agrees) must not change what a
client gets: the bytes are the json module's text, and parsing accepts and refuses what
json.loads did."""

from __future__ import annotations

import json

import pytest

from mcp_endpoint.jsonrpc import ProtocolError, dumps, encode, parse, pretty, wire

MESSAGES = [
    {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": '中文 é \n \x01 \u2028 "'}]}},
    {"jsonrpc": "2.0", "id": "a", "result": {"entities": [], "relations": [], "hasMore": False, "nextOffset": None}},
    {"nested": [[], {}, [1, [2, {"x": None}]]], "big": 2**63 - 1, "neg": -(2**63)},
]
# What orjson refuses and json writes: lone surrogates (echoed names), huge integers, int keys.
REFUSED_BY_ORJSON = [{"name": "a\ud800b"}, {"id": 2**70}, {1: "one"}]


def test_floats_in_reply_bytes_read_back_the_same():
    message = {"score": 9.341219993075356e-05, "vector": [0.1, -1e-7, 1.5e300, 0.0]}
    assert dumps(message) == json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(wire(message)) == message


@pytest.mark.parametrize("message", MESSAGES + REFUSED_BY_ORJSON)
def test_replies_are_the_json_module_text(message):
    compact = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    assert dumps(message) == compact
    assert wire(message) == encode(compact)
    assert pretty(message, 2) == json.dumps(message, ensure_ascii=False, indent=2)
    assert pretty(message, 1) == json.dumps(message, ensure_ascii=False, indent=1)


def test_parse_reads_bytes_like_json_loads():
    text = '{"method": "ping", "params": {"q": "中文"}}'
    for encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"):
        assert parse(text.encode(encoding)) == json.loads(text.encode(encoding))
    assert parse(text) == json.loads(text)


@pytest.mark.parametrize("raw", ["\ufeff{}", "{", b"\xff\xfe{", "NaN", "[Infinity]", b'{"a": -Infinity}'])
def test_parse_refuses_what_it_refused_before(raw):
    with pytest.raises(ProtocolError) as refused:
        parse(raw)
    assert refused.value.message.startswith("Parse error: ")
    if raw == "\ufeff{}":
        with pytest.raises(json.JSONDecodeError) as expected:
            json.loads(raw)
        assert refused.value.message == f"Parse error: {expected.value}"
