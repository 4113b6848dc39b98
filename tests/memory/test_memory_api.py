"""REST memory API `/v1/memory/{write,search,delete,clear}` over real HTTP requests (Django's test
client through the whole stack), the real SQLite database, the real built-in embedding model, and
for the provider path a real local OpenAI-compatible HTTP server (no patching)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.test import Client, override_settings

from tests.conftest import ALICE, BOB, Persona

pytestmark = pytest.mark.django_db

WRITE_FIELDS = {"id", "namespace", "createdAt", "expiresAt", "duplicateOf", "validFrom", "validTo"}
# Validity and lineage (graph/validity.py), on every memory.
TIME_FIELDS = {"validFrom", "validTo", "current", "supersedes", "supersededBy", "sourceId", "extractedBy"}
# The seed's fields, plus actorId, expiresAt and entityName (documented in the OpenAPI schema).
HIT_FIELDS = {
    "id",
    "text",
    "namespace",
    "tags",
    "score",
    "createdAt",
    "expiresAt",
    "actorId",
    "entityName",
    "mentionCount",
    "lastSeen",
    *TIME_FIELDS,
}
MEMORY_ID = re.compile(r"^mem_[1-9][0-9]*$")


def post(client: Client, route: str, body: Any, persona: Persona | None = None, **headers: str) -> Any:
    return client.post(
        f"/v1/memory/{route}",
        json.dumps(body),
        content_type="application/json",
        **(persona.headers if persona else {}),
        **headers,
    )


def write(client: Client, persona: Persona, text: str, namespace: str | None = None, **fields: Any) -> dict:
    response = post(client, "write", {"namespace": namespace or persona.namespace, "text": text, **fields}, persona)
    assert response.status_code == 200, response.content
    return response.json()


def search(client: Client, persona: Persona, query: str, **fields: Any) -> dict:
    response = post(client, "search", {"query": query, **fields}, persona)
    assert response.status_code == 200, response.content
    return response.json()


def texts(found: dict) -> list[str]:
    return [hit["text"] for hit in found["results"]]


def parse_time(value: str) -> dt.datetime:
    assert value.endswith("Z"), value
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_error(response: Any, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def observation_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM graph_observation")
        return int(cursor.fetchone()[0])


ENGLISH = [
    "The deployment configuration uses port 8080 for the API server",
    "Alice prefers green tea in the morning",
    "Our office is located in Berlin",
    "The cat sleeps on the sofa",
]
CHINESE = ["数据库备份每天凌晨三点执行", "爱丽丝早上喜欢喝绿茶", "我们的办公室在柏林", "猫在沙发上睡觉"]


# --- write and search -----------------------------------------------------------------------------


def test_write_then_a_paraphrase_finds_it(client: Client, alice_key: Persona) -> None:
    written = [write(client, alice_key, text) for text in ENGLISH]
    first = written[0]
    assert set(first) == WRITE_FIELDS
    assert MEMORY_ID.fullmatch(first["id"])
    assert first["namespace"] == ALICE
    assert first["expiresAt"] is None
    assert abs(parse_time(first["createdAt"]) - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
    assert len({w["id"] for w in written}) == len(ENGLISH)

    found = search(client, alice_key, "which port does the API listen on")
    top = found["results"][0]
    assert set(top) == HIT_FIELDS
    assert top["id"] == first["id"]
    assert top["text"] == ENGLISH[0]
    assert top["namespace"] == ALICE
    assert top["tags"] == []
    assert top["createdAt"] == first["createdAt"]
    assert top["expiresAt"] is None
    assert top["actorId"] == ""
    assert top["entityName"] is None
    assert set(found) == {"results", "totalResults", "queryTime"}


def test_chinese_memories_are_found_in_chinese_and_in_english(client: Client, alice_key: Persona) -> None:
    ids = [write(client, alice_key, text)["id"] for text in CHINESE]
    for query in ("数据库什么时候备份", "when is the database backed up"):
        found = search(client, alice_key, query)
        assert found["results"][0]["id"] == ids[0], (query, texts(found))
        assert found["results"][0]["text"] == CHINESE[0]


def test_scores_are_sorted_within_0_and_1_and_topk_bounds_the_results(client: Client, alice_key: Persona) -> None:
    for text in ENGLISH + CHINESE:
        write(client, alice_key, text)
    found = search(client, alice_key, "API server port")
    scores = [hit["score"] for hit in found["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert isinstance(found["queryTime"], int)
    assert found["queryTime"] >= 0
    assert found["totalResults"] >= len(found["results"]) >= 1
    assert len(found["results"]) <= 10  # the default topK

    two = search(client, alice_key, "API server port", topK=2)
    assert len(two["results"]) == 2
    assert [hit["id"] for hit in two["results"]] == [hit["id"] for hit in found["results"][:2]]
    assert len(search(client, alice_key, "API server port", topK=50)["results"]) <= 50


def test_tags_and_actor_round_trip_and_actor_filters_the_search(client: Client, alice_key: Persona) -> None:
    mine = write(
        client,
        alice_key,
        "The staging API server listens on port 9090",
        actorId="user-123",
        tags=["deployment", "config", "deployment"],
    )
    other = write(client, alice_key, "The production API server listens on port 443", actorId="user-456")
    anonymous = write(client, alice_key, "The test API server listens on port 7070")

    everyone = search(client, alice_key, "which port does the API server listen on")
    by_id = {hit["id"]: hit for hit in everyone["results"]}
    assert {mine["id"], other["id"], anonymous["id"]} <= set(by_id)
    assert by_id[mine["id"]]["tags"] == ["deployment", "config"]  # duplicates stored once
    assert by_id[mine["id"]]["actorId"] == "user-123"
    assert by_id[other["id"]]["tags"] == []

    only = search(client, alice_key, "which port does the API server listen on", actorId="user-123")
    assert [hit["id"] for hit in only["results"]] == [mine["id"]]
    assert search(client, alice_key, "API server port", actorId="nobody")["results"] == []


# --- ttl ------------------------------------------------------------------------------------------


def test_ttl_sets_expires_at(client: Client, alice_key: Persona) -> None:
    day = 86_400_000
    written = write(client, alice_key, "A memory that lasts one day", ttlMs=day)
    created, expires = parse_time(written["createdAt"]), parse_time(written["expiresAt"])
    # Both are given to the second, as in the seed.
    assert abs((expires - created) - dt.timedelta(milliseconds=day)) <= dt.timedelta(seconds=1)
    hit = search(client, alice_key, "a memory that lasts one day")["results"][0]
    assert hit["id"] == written["id"]
    assert hit["expiresAt"] == written["expiresAt"]


def test_an_expired_memory_is_never_returned(client: Client, alice_key: Persona) -> None:
    gone = write(client, alice_key, "The deployment configuration uses port 8080 for the API server", ttlMs=1)
    kept = write(client, alice_key, "The deployment configuration uses port 8081 for the API server")
    time.sleep(0.05)
    for query in ("which port does the API listen on", "8080"):  # the vector side and the keyword side
        ids = [hit["id"] for hit in search(client, alice_key, query)["results"]]
        assert gone["id"] not in ids
        assert kept["id"] in ids


# --- delete ---------------------------------------------------------------------------------------


def test_delete_removes_the_memory_from_search_at_once(client: Client, alice_key: Persona) -> None:
    doomed = write(client, alice_key, ENGLISH[0])
    kept = write(client, alice_key, "The API server port is configured in deploy.yaml")
    response = post(client, "delete", {"id": doomed["id"]}, alice_key)
    assert response.status_code == 200
    assert response.json() == {"deleted": True, "id": doomed["id"]}
    for query in ("which port does the API listen on", "8080"):
        ids = [hit["id"] for hit in search(client, alice_key, query)["results"]]
        assert doomed["id"] not in ids
    assert kept["id"] in [hit["id"] for hit in search(client, alice_key, "API server port")["results"]]
    # Deleting again: it is gone.
    assert post(client, "delete", {"id": doomed["id"]}, alice_key).json() == {"deleted": False, "id": doomed["id"]}


def test_delete_of_an_unknown_or_foreign_memory_is_false(
    client: Client, alice_key: Persona, bob_key: Persona, carol_key: Persona
) -> None:
    assert post(client, "delete", {"id": "mem_987654321"}, alice_key).json() == {
        "deleted": False,
        "id": "mem_987654321",
    }
    bobs = write(client, bob_key, "Bob's deployment uses port 8080")
    alices = write(client, alice_key, "Alice's deployment uses port 8080")
    # Same answer as an unknown id: ids reveal nothing about other tenants.
    assert post(client, "delete", {"id": bobs["id"]}, alice_key).json() == {"deleted": False, "id": bobs["id"]}
    # carol may read alice's namespace but not write it.
    assert post(client, "delete", {"id": alices["id"]}, carol_key).json() == {"deleted": False, "id": alices["id"]}
    assert [hit["id"] for hit in search(client, bob_key, "deployment port")["results"]] == [bobs["id"]]
    assert [hit["id"] for hit in search(client, alice_key, "deployment port")["results"]] == [alices["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"id": "abc"},
        {"id": "mem_"},
        {"id": "mem_0"},
        {"id": "mem_01"},
        {"id": "123"},
        {"id": 123},
        {"id": None},
        {"id": "mem_9999999999999999999"},
        {"id": " mem_1"},
    ],
)
def test_delete_refuses_a_malformed_id(client: Client, alice_key: Persona, body: dict) -> None:
    error = assert_error(post(client, "delete", body, alice_key), 400, "invalid_argument")
    assert "id" in error["message"]


# --- clear ----------------------------------------------------------------------------------------


def test_clear_by_namespace_and_by_actor(client: Client, alice_key: Persona) -> None:
    journal = "org:alice:journal"
    for index in range(3):
        write(client, alice_key, f"note {index} about the API server", actorId="user-123")
    for index in range(2):
        write(client, alice_key, f"remark {index} about the API server", actorId="user-456")
    write(client, alice_key, "an anonymous note about the API server")
    kept = write(client, alice_key, "journal entry about the API server", namespace=journal, actorId="user-123")

    response = post(client, "clear", {"namespace": ALICE, "actorId": "user-123"}, alice_key)
    assert response.status_code == 200
    assert response.json() == {"cleared": 3, "namespace": ALICE}
    left = search(client, alice_key, "API server", namespace=ALICE)
    assert sorted(hit["actorId"] for hit in left["results"]) == ["", "user-456", "user-456"]

    # Without a namespace: the key's default one; the other namespace is untouched.
    assert post(client, "clear", {}, alice_key).json() == {"cleared": 3, "namespace": ALICE}
    assert search(client, alice_key, "API server", namespace=ALICE)["results"] == []
    assert [hit["id"] for hit in search(client, alice_key, "API server")["results"]] == [kept["id"]]

    # Nothing left, and a namespace never written: zero, not an error.
    assert post(client, "clear", {"namespace": ALICE}, alice_key).json() == {"cleared": 0, "namespace": ALICE}
    assert post(client, "clear", {"namespace": "org:alice:empty"}, alice_key).json() == {
        "cleared": 0,
        "namespace": "org:alice:empty",
    }


def test_search_finds_graph_observations_and_clear_leaves_them_alone(client: Client, alice_key: Persona) -> None:
    created = client.post(
        "/v1/graph/create_entities",
        {
            "namespace": ALICE,
            "entities": [
                {
                    "name": "api-server",
                    "entityType": "service",
                    "observations": ["The deployment configuration uses port 8080 for the API server"],
                }
            ],
        },
        content_type="application/json",
        **alice_key.headers,
    )
    assert created.status_code == 200, created.content
    memory = write(client, alice_key, "Alice prefers green tea in the morning")

    found = search(client, alice_key, "which port does the API listen on")
    fact = found["results"][0]
    assert fact["text"] == "The deployment configuration uses port 8080 for the API server"
    assert fact["entityName"] == "api-server"
    assert MEMORY_ID.fullmatch(fact["id"])
    assert memory["id"] in [hit["id"] for hit in found["results"]]

    assert post(client, "clear", {"namespace": ALICE}, alice_key).json() == {"cleared": 1, "namespace": ALICE}
    # A graph fact belongs to its entity: delete and clear leave it to the graph API.
    assert post(client, "delete", {"id": fact["id"]}, alice_key).json() == {"deleted": False, "id": fact["id"]}
    after = search(client, alice_key, "which port does the API listen on")
    assert [hit["id"] for hit in after["results"]] == [fact["id"]]
    opened = client.post(
        "/v1/graph/open_nodes",
        {"namespace": ALICE, "names": ["api-server"]},
        content_type="application/json",
        **alice_key.headers,
    ).json()
    assert opened["entities"][0]["observations"] == [fact["text"]]


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("write", {"text": "no namespace"}, "namespace"),
        ("write", {"namespace": ALICE}, "text"),
        ("write", {"namespace": ALICE, "text": ""}, "text"),
        ("write", {"namespace": ALICE, "text": "   "}, "text"),
        ("write", {"namespace": ALICE, "text": 5}, "text"),
        ("write", {"namespace": None, "text": "x"}, "namespace"),
        ("write", {"namespace": "not a namespace!", "text": "x"}, "namespace"),
        ("write", {"namespace": ALICE, "text": "x", "tags": "deployment"}, "tags"),
        ("write", {"namespace": ALICE, "text": "x", "tags": [1]}, "tags"),
        ("write", {"namespace": ALICE, "text": "x", "tags": [" "]}, "tags"),
        ("write", {"namespace": ALICE, "text": "x", "actorId": 7}, "actorId"),
        ("write", {"namespace": ALICE, "text": "x", "ttlMs": 0}, "ttlMs"),
        ("write", {"namespace": ALICE, "text": "x", "ttlMs": "1000"}, "ttlMs"),
        ("write", {"namespace": ALICE, "text": "x", "ttlMs": 1.5}, "ttlMs"),
        ("search", {}, "query"),
        ("search", {"query": ""}, "query"),
        ("search", {"query": "   "}, "query"),
        ("search", {"query": "x", "topK": 0}, "topK"),
        ("search", {"query": "x", "topK": 51}, "topK"),
        ("search", {"query": "x", "topK": "x"}, "topK"),
        ("search", {"query": "x", "topK": "5"}, "topK"),
        ("search", {"query": "x", "topK": True}, "topK"),
        ("search", {"query": "x", "namespace": "org:*"}, "namespace"),
        ("clear", {"actorId": ["a"]}, "actorId"),
        ("write", [], "non_field_errors"),
        ("search", "query", "non_field_errors"),
    ],
)
def test_bad_input_is_400(client: Client, alice_key: Persona, route: str, body: Any, field: str) -> None:
    before = observation_count()
    error = assert_error(post(client, route, body, alice_key), 400, "invalid_argument")
    details = error.get("details", {})
    assert field in details.get("fields", {}) or details.get("field") == field or field in error["message"]
    assert observation_count() == before


# --- the X-Memory-Namespace header (every REST route reads it the same way) -----------------------

OTHER = "org:alice:other"


def test_write_needs_a_namespace_in_the_body_or_the_header(client: Client, alice_key: Persona) -> None:
    error = assert_error(post(client, "write", {"text": "x"}, alice_key), 400, "invalid_argument")
    assert "namespace" in error["details"]["fields"]
    response = post(client, "write", {"text": "a note in the other bank"}, alice_key, HTTP_X_MEMORY_NAMESPACE=OTHER)
    assert response.status_code == 200, response.content
    assert response.json()["namespace"] == OTHER
    assert response["X-Memory-Namespace"] == OTHER


def test_clear_with_the_header_clears_that_namespace_not_the_default(client: Client, alice_key: Persona) -> None:
    kept = write(client, alice_key, "a note about the API server in the default bank")
    write(client, alice_key, "a note about the API server in the other bank", namespace=OTHER)

    response = post(client, "clear", {}, alice_key, HTTP_X_MEMORY_NAMESPACE=OTHER)
    assert response.status_code == 200, response.content
    assert response.json() == {"cleared": 1, "namespace": OTHER}
    assert response["X-Memory-Namespace"] == OTHER
    assert search(client, alice_key, "API server", namespace=OTHER)["results"] == []
    assert [hit["id"] for hit in search(client, alice_key, "API server", namespace=ALICE)["results"]] == [kept["id"]]


def test_clear_without_any_namespace_says_which_one_it_cleared(client: Client, alice_key: Persona) -> None:
    write(client, alice_key, "a note in the default bank")
    response = post(client, "clear", {}, alice_key)
    assert response.json() == {"cleared": 1, "namespace": ALICE}
    assert response["X-Memory-Namespace"] == ALICE


def test_search_with_the_header_covers_that_namespace_only(client: Client, alice_key: Persona) -> None:
    write(client, alice_key, "The API server listens on port 8080")
    other = write(client, alice_key, "The API server listens on port 9090", namespace=OTHER)
    response = post(client, "search", {"query": "API server port"}, alice_key, HTTP_X_MEMORY_NAMESPACE=OTHER)
    assert response.status_code == 200, response.content
    assert [hit["id"] for hit in response.json()["results"]] == [other["id"]]
    assert response["X-Memory-Namespace"] == OTHER


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("write", {"namespace": ALICE, "text": "x"}),
        ("search", {"namespace": ALICE, "query": "x"}),
        ("clear", {"namespace": ALICE}),
    ],
)
def test_a_body_namespace_and_a_different_header_are_a_400(
    client: Client, alice_key: Persona, route: str, body: dict
) -> None:
    write(client, alice_key, "kept whatever happens", namespace=OTHER)
    before = observation_count()
    error = assert_error(post(client, route, body, alice_key, HTTP_X_MEMORY_NAMESPACE=OTHER), 400, "invalid_argument")
    assert ALICE in error["message"]
    assert OTHER in error["message"]
    assert observation_count() == before
    # The same namespace twice is no conflict.
    assert post(client, route, body, alice_key, HTTP_X_MEMORY_NAMESPACE=ALICE).status_code == 200


def test_the_header_cannot_reach_another_tenant(client: Client, alice_key: Persona, bob_key: Persona) -> None:
    alices = write(client, alice_key, "alice's private note about the API server")
    for route, body in (("write", {"text": "x"}), ("search", {"query": "API server"}), ("clear", {})):
        assert_error(post(client, route, body, bob_key, HTTP_X_MEMORY_NAMESPACE=ALICE), 403, "forbidden")
    assert [hit["id"] for hit in search(client, alice_key, "API server")["results"]] == [alices["id"]]
    assert search(client, bob_key, "API server")["results"] == []


def test_unknown_fields_are_ignored(client: Client, alice_key: Persona) -> None:
    written = write(client, alice_key, "The API server uses port 8080", colour="blue", metadata={"a": 1})
    assert set(written) == WRITE_FIELDS
    assert search(client, alice_key, "API port", extra=True)["results"][0]["id"] == written["id"]


def test_not_json_is_400(client: Client, alice_key: Persona) -> None:
    response = client.post("/v1/memory/write", "{not json", content_type="application/json", **alice_key.headers)
    assert_error(response, 400, "invalid_argument")


def test_only_post_is_allowed(client: Client, alice_key: Persona) -> None:
    for route in ("write", "search", "delete", "clear"):
        assert_error(client.get(f"/v1/memory/{route}", **alice_key.headers), 405, "method_not_allowed")


# --- keys and grants ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("write", {"namespace": ALICE, "text": "x"}),
        ("search", {"query": "x"}),
        ("delete", {"id": "mem_1"}),
        ("clear", {"namespace": ALICE}),
    ],
)
def test_every_route_needs_a_key(client: Client, alice_key: Persona, route: str, body: dict) -> None:
    response = post(client, route, body)
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("ApiKey")
    assert_error(post(client, route, body, HTTP_X_API_KEY="mh_00000000_" + "x" * 43), 401, "unauthorized")


def test_writing_needs_a_write_grant(client: Client, alice_key: Persona, carol_key: Persona) -> None:
    before = observation_count()
    error = assert_error(post(client, "write", {"namespace": ALICE, "text": "x"}, carol_key), 403, "forbidden")
    assert error["details"]["namespace"] == ALICE
    assert_error(post(client, "write", {"namespace": BOB, "text": "x"}, alice_key), 403, "forbidden")
    assert_error(post(client, "clear", {"namespace": ALICE}, carol_key), 403, "forbidden")
    assert_error(post(client, "clear", {}, carol_key), 403, "forbidden")  # her default is alice's
    assert_error(post(client, "clear", {"namespace": BOB}, alice_key), 403, "forbidden")
    assert observation_count() == before
    # Reading is what carol may do.
    written = write(client, alice_key, "The API server uses port 8080")
    assert [hit["id"] for hit in search(client, carol_key, "API port", namespace=ALICE)["results"]] == [written["id"]]


def test_search_covers_every_readable_namespace_and_nothing_else(
    client: Client, alice_key: Persona, bob_key: Persona, carol_key: Persona, root_key: Persona
) -> None:
    alices = write(client, alice_key, "The deployment configuration uses port 8080 for the API server")
    journal = write(client, alice_key, "The API server port was changed last week", namespace="org:alice:journal")
    bobs = write(client, bob_key, "The deployment configuration uses port 8080 for the API server")
    query = "which port does the API listen on"

    assert {hit["id"] for hit in search(client, alice_key, query)["results"]} == {alices["id"], journal["id"]}
    assert {hit["id"] for hit in search(client, carol_key, query)["results"]} == {alices["id"], journal["id"]}
    assert {hit["id"] for hit in search(client, bob_key, query)["results"]} == {bobs["id"]}
    everything = search(client, root_key, query)["results"]
    assert {hit["id"] for hit in everything} == {alices["id"], journal["id"], bobs["id"]}
    assert {hit["namespace"] for hit in everything} == {ALICE, "org:alice:journal", BOB}
    # One namespace only, when asked.
    assert [hit["id"] for hit in search(client, alice_key, query, namespace=ALICE)["results"]] == [alices["id"]]
    assert search(client, alice_key, query, namespace="org:alice:never")["results"] == []

    error = assert_error(post(client, "search", {"query": query, "namespace": BOB}, alice_key), 403, "forbidden")
    assert error["details"]["namespace"] == BOB
    assert_error(post(client, "search", {"query": query, "namespace": ALICE}, bob_key), 403, "forbidden")


# --- an OpenAI-compatible embedding provider ------------------------------------------------------


def fake_embedding(text: str, dims: int = 16) -> list[float]:
    # Deterministic per text: the same text always gets the same vector.
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    return rng.normal(size=dims).tolist()


@dataclass
class Provider:
    """What the local server answers: `mode` "ok", "fail" (HTTP 500) or "slow" (sleeps past the
    timeout); `seen` logs each request body."""

    url: str
    mode: str = "ok"
    seen: list[Any] = field(default_factory=list)


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping for the timeout test must not block close
    provider: Provider


class ProviderHandler(BaseHTTPRequestHandler):
    server: ProviderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        provider = self.server.provider
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        provider.seen.append({"path": self.path, **body})
        if provider.mode == "slow":
            time.sleep(1.5)
        answer: dict[str, Any]
        if provider.mode == "fail":
            status, answer = 500, {"error": {"message": "the model is overloaded"}}
        else:
            data = [
                {"object": "embedding", "index": i, "embedding": fake_embedding(t)} for i, t in enumerate(body["input"])
            ]
            status, answer = 200, {"object": "list", "data": data, "model": body["model"]}
        raw = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (the timeout test)
            self.wfile.write(raw)


@pytest.fixture(scope="module")
def provider_server() -> Iterator[ProviderServer]:
    server = ProviderServer(("127.0.0.1", 0), ProviderHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider(provider_server: ProviderServer) -> Iterator[Provider]:
    """The server, with the memory API's embedder pointed at it for the test."""
    provider_server.provider = Provider(url=f"http://127.0.0.1:{provider_server.server_address[1]}/v1")
    with override_settings(
        MEMORYHUB_EMBEDDER="openai",
        MEMORYHUB_EMBEDDINGS_URL=provider_server.provider.url,
        MEMORYHUB_EMBEDDINGS_MODEL="text-embed-test",
        MEMORYHUB_EMBEDDINGS_API_KEY=None,
        MEMORYHUB_EMBEDDINGS_TIMEOUT_SECONDS=1,
        MEMORYHUB_EMBEDDINGS_RETRIES=0,
    ):
        yield provider_server.provider


@override_settings(MEMORYHUB_EMBED_MODE="inline")
def test_write_and_search_through_an_openai_compatible_provider(
    client: Client, alice_key: Persona, provider: Provider
) -> None:
    target = write(client, alice_key, "The deployment configuration uses port 8080 for the API server")
    other = write(client, alice_key, "Alice prefers green tea in the morning")
    assert [request["input"] for request in provider.seen] == [
        ["The deployment configuration uses port 8080 for the API server"],
        ["Alice prefers green tea in the morning"],
    ]
    assert {request["path"] for request in provider.seen} == {"/v1/embeddings"}
    assert {request["model"] for request in provider.seen} == {"text-embed-test"}

    # The provider's vectors are random per text: only the exact text is similar, so the ranking
    # shows the provider's vectors were stored and searched (no keyword overlap with `other`).
    found = search(client, alice_key, "Alice prefers green tea in the morning", topK=1)
    assert provider.seen[-1]["input"] == ["Alice prefers green tea in the morning"]
    assert [hit["id"] for hit in found["results"]] == [other["id"]]
    assert found["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    vector_only = search(client, alice_key, "The deployment configuration uses port 8080 for the API server")
    assert vector_only["results"][0]["id"] == target["id"]


def test_behind_the_write_the_provider_embeds_the_pending_texts_before_the_next_search(
    client: Client, alice_key: Persona, provider: Provider
) -> None:
    target = write(client, alice_key, "The deployment configuration uses port 8080 for the API server")
    other = write(client, alice_key, "Alice prefers green tea in the morning")
    assert provider.seen == []  # the writes only queued their texts
    found = search(client, alice_key, "Alice prefers green tea in the morning", topK=1)
    # Read-your-writes: the namespace's pending texts, newest first, in one request; then the query.
    assert [request["input"] for request in provider.seen] == [
        ["Alice prefers green tea in the morning", "The deployment configuration uses port 8080 for the API server"],
        ["Alice prefers green tea in the morning"],
    ]
    assert [hit["id"] for hit in found["results"]] == [other["id"]]
    assert found["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    vector_only = search(client, alice_key, "The deployment configuration uses port 8080 for the API server")
    assert vector_only["results"][0]["id"] == target["id"]
    assert len(provider.seen) == 3  # nothing was pending any more: only the query


def test_behind_the_write_a_failing_provider_loses_nothing(
    client: Client, alice_key: Persona, provider: Provider
) -> None:
    provider.mode = "fail"
    written = write(client, alice_key, "written while the provider was down")
    # The search cannot embed its query: the provider's failure, as inline.
    assert_error(post(client, "search", {"query": "provider down"}, alice_key), 502, "embedding_unavailable")
    with connection.cursor() as cursor:
        cursor.execute("SELECT attempts, last_error FROM vectors_pending")
        ((attempts, last_error),) = cursor.fetchall()
    assert attempts == 1
    assert "the model is overloaded" in last_error
    provider.mode = "ok"
    assert [hit["id"] for hit in search(client, alice_key, "written while the provider was down")["results"]] == [
        written["id"]
    ]


@override_settings(MEMORYHUB_EMBED_MODE="inline")
def test_a_failing_provider_is_502_and_stores_nothing(client: Client, alice_key: Persona, provider: Provider) -> None:
    write(client, alice_key, "written while the provider was up")  # so a search has a namespace to embed for
    provider.mode = "fail"
    before = observation_count()
    error = assert_error(
        post(client, "write", {"namespace": ALICE, "text": "lost to the outage"}, alice_key),
        502,
        "embedding_unavailable",
    )
    assert "the model is overloaded" in error["message"]
    assert error["details"]["url"] == f"{provider.url}/embeddings"
    assert observation_count() == before
    assert_error(post(client, "search", {"query": "outage"}, alice_key), 502, "embedding_unavailable")
    # Back up: the failed write left nothing behind.
    provider.mode = "ok"
    assert texts(search(client, alice_key, "lost to the outage")) == ["written while the provider was up"]


@override_settings(MEMORYHUB_EMBED_MODE="inline")
def test_a_slow_provider_is_504_and_stores_nothing(client: Client, alice_key: Persona, provider: Provider) -> None:
    write(client, alice_key, "written while the provider was fast")
    provider.mode = "slow"
    before = observation_count()
    error = assert_error(
        post(client, "write", {"namespace": ALICE, "text": "too slow"}, alice_key), 504, "embedding_timeout"
    )
    assert error["details"]["timeout_seconds"] == 1
    assert observation_count() == before
    assert_error(post(client, "search", {"query": "too slow"}, alice_key), 504, "embedding_timeout")


# --- the schema -----------------------------------------------------------------------------------


def test_the_memory_routes_are_in_the_openapi_schema(client: Client) -> None:
    document = client.get("/openapi.json").json()
    for route in ("write", "search", "delete", "clear"):
        operation = document["paths"][f"/v1/memory/{route}"]["post"]
        assert operation["operationId"] == f"memory_{route}"
        assert operation["tags"] == ["memory"]
        assert {"200", "400", "401", "403"} <= set(operation["responses"])
    for route in ("write", "search"):
        assert {"502", "504"} <= set(document["paths"][f"/v1/memory/{route}"]["post"]["responses"])
    hit = document["components"]["schemas"]["MemoryHit"]
    assert set(hit["properties"]) == HIT_FIELDS
