"""What kernel/twisted_http.py and kernel/asgi_headers.py change must not change what a client
gets (the JSON helpers of mcp_endpoint/jsonrpc.py: tests/mcp_endpoint/test_jsonrpc_wire.py), and
server processes shorten the GIL switch interval (kernel/startup.py)."""

from __future__ import annotations

import pytest
from daphne import http_protocol
from twisted.web import http

from kernel import twisted_http
from kernel.asgi_headers import SCOPE_KEY, Headers, request_headers

CONTENT_TYPES = [
    b"application/json",
    b"application/json; charset=utf-8",
    b"Application/JSON ; charset=UTF-8",
    b"multipart/form-data; boundary=xyz",
    b"application/x-www-form-urlencoded",
    b"text/plain; format=flowed",
    b"nonsense",
    b"",
]


def test_twisted_content_type_parsing_is_memoised_with_the_same_answers():
    twisted_http.install()
    twisted_http.install()  # idempotent: not wrapped twice
    parse_content_type = http._parseContentType
    original = parse_content_type.__wrapped__  # type: ignore[attr-defined]
    assert not hasattr(original, "__wrapped__")
    for content_type in CONTENT_TYPES * 2:
        assert parse_content_type(content_type) == original(content_type)
    assert parse_content_type.cache_info().currsize == len(CONTENT_TYPES)  # type: ignore[attr-defined]
    assert parse_content_type.cache_info().maxsize == twisted_http.CACHED_CONTENT_TYPES  # type: ignore[attr-defined]


def test_twisted_duplicate_access_log_line_is_not_written():
    twisted_http.install()

    class Log:
        lines: list[str] = []

        def write(self, line: str) -> None:
            self.lines.append(line)

    factory = http_protocol.HTTPFactory.__new__(http_protocol.HTTPFactory)
    factory._logFile = Log()
    factory.log(object())
    assert Log.lines == []


def test_headers_are_case_insensitive_and_keep_the_last_repeated_value():
    headers = Headers([(b"X-API-Key", b"k1"), (b"accept", b"text/event-stream"), (b"x-api-key", b"k2")])
    assert headers["x-api-key"] == headers["X-Api-Key"] == "k2"
    assert headers.get("ACCEPT") == "text/event-stream"
    assert headers.get("Origin") is None
    assert len(headers) == 2
    assert set(headers) == {"x-api-key", "accept"}
    assert Headers([(b"X-Name", "café".encode("latin-1"))])["x-name"] == "café"


def test_headers_parsed_by_the_middleware_are_reused():
    parsed = Headers([(b"Accept", b"*/*")])
    assert request_headers({SCOPE_KEY: parsed, "headers": []}) is parsed
    assert request_headers({"headers": [(b"Accept", b"*/*")]})["accept"] == "*/*"


def test_server_processes_shorten_the_gil_switch_interval(settings):
    import sys

    from kernel.startup import shorten_gil_switch_interval

    before = sys.getswitchinterval()
    settings.MEMORYHUB_GIL_SWITCH_INTERVAL_US = 500
    try:
        shorten_gil_switch_interval()
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    finally:
        sys.setswitchinterval(before)
