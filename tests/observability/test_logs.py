"""Request ids (X-Request-ID in and out) and JSON log lines, in-process. The same over a real
daphne process, with MEMORYHUB_LOG_FORMAT=json, is in test_live.py."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.test import Client

from kernel import logs
from tests.conftest import Persona

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_a_sane_request_id_comes_back(client: Client, db) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="req-2024.07:abc/1+x=@y")
    assert response["X-Request-ID"] == "req-2024.07:abc/1+x=@y"


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", 'quote"d', "x" * 129, "new\nline", "ünïcode"],
)
def test_an_insane_request_id_is_replaced(client: Client, db, incoming: str) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert HEX32.fullmatch(response["X-Request-ID"])


def test_each_request_without_one_gets_a_new_id(client: Client, alice_key: Persona) -> None:
    first = client.get("/v1/memory/banks/list", **alice_key.headers)["X-Request-ID"]
    second = client.get("/v1/memory/banks/list", **alice_key.headers)["X-Request-ID"]
    assert HEX32.fullmatch(first)
    assert HEX32.fullmatch(second)
    assert first != second


def test_errors_carry_the_request_id_too(client: Client, db) -> None:
    response = client.post("/v1/graph/search_nodes", "{}", content_type="application/json", HTTP_X_REQUEST_ID="e-1")
    assert response.status_code == 401
    assert response["X-Request-ID"] == "e-1"


def _formatted(record: logging.LogRecord) -> dict:
    logs.RequestIdFilter().filter(record)
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def test_json_lines_have_the_fields_and_the_request_id_of_their_context() -> None:
    logger = logging.getLogger("memoryhub.test")
    token = logs.request_id.set("rid-42")
    try:
        record = logger.makeRecord(
            "memoryhub.test", logging.WARNING, __file__, 1, "hello %s", ("world",), None, extra={"tool": "search_nodes"}
        )
        entry = _formatted(record)  # the handler's filter runs where the line is logged
    finally:
        logs.request_id.reset(token)
    assert entry["message"] == "hello world"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "memoryhub.test"
    assert entry["request_id"] == "rid-42"
    assert entry["tool"] == "search_nodes"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])


def test_json_lines_outside_a_request_and_with_an_exception() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys

        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info(), extra={"obj": object(), "多": "语言"}
        )
    entry = _formatted(record)
    assert entry["request_id"] is None
    assert "ValueError: boom" in entry["exception"]
    assert entry["obj"].startswith("<object object")
    assert entry["多"] == "语言"


@pytest.mark.urls("tests.observability.urls")
def test_log_lines_written_while_serving_a_request_carry_its_id(client: Client, db, caplog) -> None:
    caplog.handler.addFilter(logs.RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="tests.observability"):
        response = client.get("/log-something", HTTP_X_REQUEST_ID="inside-1")
        other = client.get("/log-something")
    assert response.status_code == 200
    lines = [record for record in caplog.records if record.name == "tests.observability"]
    assert [(record.getMessage(), record.request_id) for record in lines] == [
        ("serving /log-something", "inside-1"),
        ("serving /log-something", other["X-Request-ID"]),
    ]
    # After the request, nothing is attributed to it any more.
    assert logs.current_request_id() is None
