"""The MemOS-compatible API (`/product/*`) over Django's test client with real keys, the real
SQLite database and the real built-in embedding model: every route with MemOS' field names, the
`{code, message, data}` envelope on success and on each class of failure, MemOS' request quirks
(string or list `messages`, a double-encoded JSON body, `writable_cube_ids: null`), and tenant
isolation with two keys that must never see each other's memories."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from django.test import Client, RequestFactory, override_settings

from access.operations import perform
from compat import memos
from compat.api import api as compat_api
from graph import services as graph_services
from graph.exceptions import NotFound
from memory import operations as memory_ops
from tests.conftest import ALICE, BOB, Persona
from tests.memory import helpers as memory_operations

pytestmark = pytest.mark.django_db

SOFIA = "My daughter Sofia is allergic to peanuts, so we never buy satay sauce."
RUNNING = "I run in the park every morning at six, then drink a cup of soy milk."
GUITAR = "I started learning the classical guitar last winter."
KESTREL = "The launch code for project Kestrel is hidden under the blue vase."
MEMORY_ID = re.compile(r"^mem_[1-9][0-9]*$")
ENVELOPE = {"code", "message", "data"}


def post(client: Client, route: str, body: Any, persona: Persona | None = None, **headers: Any) -> Any:
    """POST a JSON body (a str is sent as it is: for malformed and double-encoded bodies)."""
    return client.post(
        f"/product/{route}",
        body if isinstance(body, str | bytes) else json.dumps(body),
        content_type="application/json",
        **(persona.headers if persona else {}),
        **headers,
    )


def ok(response: Any, message: str | None = None) -> Any:
    """The `data` of a successful envelope."""
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == ENVELOPE
    assert body["code"] == 200
    if message is not None:
        assert body["message"] == message
    return body["data"]


def fails(response: Any, status: int) -> str:
    """The message of a failure envelope with this HTTP status (also its `code`)."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == ENVELOPE, body
    assert body["code"] == status
    assert body["data"] is None
    assert isinstance(body["message"], str)
    assert body["message"]
    return str(body["message"])


def add(client: Client, persona: Persona, messages: Any, **fields: Any) -> list[dict[str, Any]]:
    return ok(post(client, "add", {"user_id": "u1", "messages": messages, **fields}, persona))


def search(client: Client, persona: Persona, query: str, **fields: Any) -> dict[str, Any]:
    """A search without user_id: the key's whole reach (tests/compat/test_memos_users.py has the
    users of one key)."""
    return ok(post(client, "search", {"query": query, **fields}, persona))


def found(data: dict[str, Any]) -> list[str]:
    """The texts of a search's text_mem, in answer order."""
    return [memory["memory"] for group in data["text_mem"] for memory in group["memories"]]


def found_ids(data: dict[str, Any]) -> list[str]:
    return [memory["id"] for group in data["text_mem"] for memory in group["memories"]]


@pytest.fixture
def client() -> Client:
    return Client()


# --- /product/add ---------------------------------------------------------------------------------


def test_add_a_string_message_as_the_memos_guide_does(client: Client, alice_key: Persona) -> None:
    data = add(client, alice_key, SOFIA)
    assert len(data) == 1
    added = data[0]
    assert set(added) == {"memory", "memory_id", "memory_type", "cube_id", "duplicate_of"}
    assert added["duplicate_of"] is None
    assert (added["memory"], added["memory_type"], added["cube_id"]) == (SOFIA, "LongTermMemory", ALICE)
    assert MEMORY_ID.fullmatch(added["memory_id"])
    # Stored synchronously: the very next search finds it, by meaning.
    result = search(client, alice_key, "Which foods must my child avoid?")
    assert found_ids(result)[0] == added["memory_id"]


def test_add_a_message_list_with_tags_session_and_several_cubes(client: Client, alice_key: Persona) -> None:
    other = "org:alice:travel"
    messages = [
        {"role": "user", "content": "I land in Tokyo on March 3rd.", "chat_time": "2026-03-01 09:00:00"},
        {"role": "assistant", "content": "   "},  # blank: skipped
        {"role": "assistant", "content": [{"type": "text", "text": "Shinjuku is a great base."}, "Enjoy!"]},
        "A plain string item is a user message.",
    ]
    response = post(
        client,
        "add",
        {
            "user_id": "traveller",
            "session_id": "trip-1",
            "messages": messages,
            "custom_tags": ["travel", "japan"],
            "writable_cube_ids": [ALICE, other],
            "async_mode": "async",
            "mode": "fast",
            "info": {"agent_id": "a1"},
            "is_feedback": False,
            "task_id": "t1",
        },
        alice_key,
    )
    data = ok(response, "Memory added successfully")
    # Every cube gets every non-empty message, as MemOS' composite cube view writes.
    assert [(item["cube_id"], item["memory"]) for item in data] == [
        (cube, text)
        for cube in (ALICE, other)
        for text in (
            "I land in Tokyo on March 3rd.",
            "Shinjuku is a great base.\nEnjoy!",
            "A plain string item is a user message.",
        )
    ]
    one = ok(client.get(f"/product/get_memory/{data[1]['memory_id']}", **alice_key.headers))
    metadata = one["metadata"]
    assert metadata["tags"] == ["role:assistant", "travel", "japan", "session:trip-1"]
    assert (metadata["user_id"], metadata["session_id"], metadata["user_name"]) == ("traveller", "trip-1", ALICE)
    assert metadata["sources"] == [{"type": "chat", "role": "assistant"}]


def test_add_accepts_the_deprecated_fields(client: Client, alice_key: Persona) -> None:
    other = "org:alice:old"
    data = ok(post(client, "add", {"user_id": "u1", "memory_content": GUITAR, "mem_cube_id": other}, alice_key))
    assert [(item["memory"], item["cube_id"]) for item in data] == [(GUITAR, other)]
    # messages and memory_content together: memory_content comes last, as MemOS appends it.
    data = ok(
        post(client, "add", {"messages": [{"role": "user", "content": SOFIA}], "memory_content": RUNNING}, alice_key)
    )
    assert [item["memory"] for item in data] == [SOFIA, RUNNING]
    # The {type, text} form MemOS converts memory_content into.
    data = ok(post(client, "add", {"messages": [{"type": "text", "text": KESTREL}]}, alice_key))
    assert [item["memory"] for item in data] == [KESTREL]


def test_add_refuses_what_it_cannot_store(client: Client, alice_key: Persona) -> None:
    assert "messages is required" in fails(post(client, "add", {"user_id": "u1"}, alice_key), 400)
    assert "doc_path is not supported" in fails(
        post(client, "add", {"messages": "x", "doc_path": "/etc/passwd"}, alice_key), 400
    )
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]
    assert "only text parts" in fails(post(client, "add", {"messages": image}, alice_key), 400)
    assert "only text messages" in fails(
        post(client, "add", {"messages": [{"type": "file", "file": {"path": "/x"}}]}, alice_key), 400
    )
    too_many = [{"role": "user", "content": f"m{i}"} for i in range(1001)]
    assert "limit is 1000" in fails(post(client, "add", {"messages": too_many}, alice_key), 400)
    assert "limit is 65536" in fails(post(client, "add", {"messages": "x" * 70_000}, alice_key), 400)
    assert "user_id" in fails(post(client, "add", {"messages": "x", "user_id": "u" * 300}, alice_key), 400)
    assert "namespace 'not a cube' is not valid" in fails(
        post(client, "add", {"messages": "x", "writable_cube_ids": ["not a cube"]}, alice_key), 400
    )
    # All blank: nothing stored, and that is not an error.
    assert ok(post(client, "add", {"messages": [{"role": "user", "content": " "}]}, alice_key)) == []


# --- MemOS' request quirks ------------------------------------------------------------------------


def test_a_double_encoded_body_is_accepted_on_every_route(client: Client, alice_key: Persona) -> None:
    # The guide's chat handler: payload = json.dumps({...}); requests.post(url, json=payload).
    def twice(body: dict[str, Any]) -> str:
        return json.dumps(json.dumps(body))

    added = ok(post(client, "add", twice({"user_id": "u1", "messages": SOFIA, "writable_cube_ids": None}), alice_key))
    memory_id = added[0]["memory_id"]
    assert (
        found_ids(ok(post(client, "search", twice({"user_id": "u1", "query": "peanut allergy"}), alice_key)))[0]
        == memory_id
    )
    chat = ok(post(client, "chat/complete", twice({"user_id": "u1", "query": "What is Sofia allergic to?"}), alice_key))
    assert SOFIA in chat["response"]
    listed = ok(post(client, "get_all", twice({"user_id": "u1", "memory_type": "text_mem"}), alice_key))
    assert memory_id in [memory["id"] for memory in listed[0]["memories"]]
    page = ok(post(client, "get_memory", twice({"mem_cube_id": ALICE}), alice_key))
    assert memory_id in [memory["id"] for memory in page["text_mem"][0]["memories"]]
    deleted = ok(post(client, "delete_memory", twice({"memory_ids": [memory_id]}), alice_key))
    assert deleted["deleted"] == [memory_id]
    # A string that is not an encoded object is still not a request.
    assert "must be a JSON object" in fails(post(client, "search", json.dumps("hello"), alice_key), 400)


def test_every_way_of_sending_the_key_works(client: Client, alice_key: Persona) -> None:
    secret = alice_key.secret
    for headers in (
        {"HTTP_X_API_KEY": secret},
        {"HTTP_AUTHORIZATION": f"Bearer {secret}"},
        {"HTTP_AUTHORIZATION": f"ApiKey {secret}"},
        {"HTTP_AUTHORIZATION": f"Token {secret}"},  # memos-api-mcp
        {"HTTP_X_MOMOAI_KEY": secret},
    ):
        assert ok(post(client, "search", {"query": "anything"}, **headers))["text_mem"] == []


# --- the envelope on every kind of failure --------------------------------------------------------


def test_failures_are_enveloped_with_their_http_status(client: Client, alice_key: Persona) -> None:
    # 400: malformed JSON, a missing field, a wrong type, out of range, not an object.
    assert "not valid JSON" in fails(post(client, "search", "{bad", alice_key), 400)
    assert fails(post(client, "search", {"user_id": "u1"}, alice_key), 400) == "query: Field required"
    assert "top_k" in fails(post(client, "search", {"query": "x", "top_k": 51}, alice_key), 400)
    assert "top_k" in fails(post(client, "search", {"query": "x", "top_k": "many"}, alice_key), 400)
    assert "memory_type" in fails(post(client, "get_all", {"memory_type": "dream_mem"}, alice_key), 400)
    assert "must be a JSON object" in fails(post(client, "add", [SOFIA], alice_key), 400)
    assert "query must be a non-empty string" in fails(post(client, "chat/complete", {"query": "  "}, alice_key), 400)
    # 401: no key, an unknown key; with the challenge header.
    missing = post(client, "search", {"query": "x"})
    assert "API key is required" in fails(missing, 401)
    assert missing["WWW-Authenticate"].startswith("ApiKey")
    fails(post(client, "search", {"query": "x"}, HTTP_X_API_KEY="mh_nope_nope"), 401)
    # 403: a cube the key has no grant for.
    assert fails(post(client, "add", {"messages": "x", "writable_cube_ids": [BOB]}, alice_key), 403) == (
        f"This API key has no write grant for namespace {BOB!r}."
    )
    # 404: an unknown memory, an unknown route (also the bare prefix).
    assert fails(client.get("/product/get_memory/mem_999999", **alice_key.headers), 404) == (
        "Memory with ID mem_999999 not found"
    )
    fails(post(client, "nowhere", {}, alice_key), 404)
    fails(client.get("/product/"), 404)
    # 405: a wrong method, with Allow.
    wrong = client.get("/product/add", **alice_key.headers)
    assert "use POST" in fails(wrong, 405)
    assert wrong["Allow"] == "POST"
    fails(client.delete("/product/get_memory/mem_1", **alice_key.headers), 405)


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        ("add", {"messages": 5}, "messages: Input should be a valid string or Input should be a valid list"),
        ("add", {"messages": [{"role": 1, "content": "x"}]}, "messages.0.role: Input should be a valid string"),
        ("chat/complete", {"query": "x", "history": [{"role": "user"}]}, "history.0.content: Field required"),
        ("get_memory", {"mem_cube_id": ALICE, "page": 0}, "page: Input should be greater than or equal to 1"),
        ("search", {"query": "x", "filter": "bad"}, "filter: Input should be a valid dictionary"),
    ],
)
def test_validation_errors_name_the_field(
    client: Client, alice_key: Persona, route: str, body: dict[str, Any], message: str
) -> None:
    # Not ninja's bare {"detail": [...]} with 422: one readable line in the envelope, 400.
    assert fails(post(client, route, body, alice_key), 400) == message


def test_a_body_over_the_limit_is_413(client: Client, alice_key: Persona) -> None:
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024):
        assert "larger than the server accepts" in fails(post(client, "add", {"messages": "x" * 2000}, alice_key), 413)


def test_the_rate_limit_is_429_with_retry_after(client: Client, alice_key: Persona) -> None:
    with override_settings(MEMORYHUB_RATE_LIMIT={"PER_MINUTE": 1, "BURST": 1}):
        ok(post(client, "search", {"query": "x"}, alice_key))
        limited = post(client, "search", {"query": "x"}, alice_key)
        assert "Too many requests" in fails(limited, 429)
        assert int(limited["Retry-After"]) >= 1


def test_a_bug_is_a_500_envelope(rf: RequestFactory) -> None:
    # A bug cannot be provoked from outside, by definition: hand one to the API's handlers.
    response = compat_api.on_exception(rf.post("/product/search"), RuntimeError("boom"))
    assert response.status_code == 500
    assert json.loads(response.content) == {
        "code": 500,
        "message": "The server failed to handle this request.",
        "data": None,
    }


# --- /product/search ------------------------------------------------------------------------------


def test_search_answers_in_memos_shape(client: Client, alice_key: Persona) -> None:
    add(client, alice_key, [{"role": "user", "content": SOFIA}, {"role": "user", "content": RUNNING}], session_id="s1")
    travel = "org:alice:travel"
    add(client, alice_key, GUITAR, writable_cube_ids=[travel])
    data = search(client, alice_key, "What does my daughter have to avoid eating?", top_k=2, dedup="mmr", mode="fine")
    assert set(data) == {"text_mem", "pref_mem", "tool_mem", "skill_mem", "pref_note", "pref_string"}
    best = data["text_mem"][0]
    assert best["cube_id"] == ALICE
    assert best["total_nodes"] == len(best["memories"])
    item = best["memories"][0]
    assert set(item) == {"id", "memory", "metadata", "ref_id"}
    assert item["memory"] == SOFIA
    assert item["ref_id"] == f"[{item['id']}]"
    metadata = item["metadata"]
    assert metadata["id"] == item["id"]
    assert metadata["memory"] == SOFIA
    assert metadata["ref_id"] == item["ref_id"]
    assert 0 < metadata["relativity"] <= 1
    assert metadata["embedding"] == []
    assert (metadata["status"], metadata["memory_type"], metadata["user_id"], metadata["session_id"]) == (
        "activated",
        "LongTermMemory",
        "u1",
        "s1",
    )
    assert metadata["created_at"].endswith("Z")
    assert metadata["updated_at"] == metadata["created_at"]
    assert metadata["user_name"] == ALICE
    # No preference, tool or skill memory here: one empty group per cube, as MemOS answers.
    cubes = [group["cube_id"] for group in data["text_mem"]]
    for kind in ("pref_mem", "tool_mem", "skill_mem"):
        assert data[kind] == [{"cube_id": cube, "memories": [], "total_nodes": 0} for cube in cubes]
    # Grouped by cube, the best cube first; top_k across all of them.
    assert sum(len(group["memories"]) for group in data["text_mem"]) == 2


def test_search_cubes_relativity_and_memory_types(client: Client, alice_key: Persona) -> None:
    travel = "org:alice:travel"
    add(client, alice_key, SOFIA)
    add(client, alice_key, GUITAR, writable_cube_ids=[travel])
    # readable_cube_ids, or one string (MemOS' example MCP server sends one), or mem_cube_id.
    for cubes in ({"readable_cube_ids": [travel]}, {"readable_cube_ids": travel}, {"mem_cube_id": travel}):
        assert found(search(client, alice_key, "music instrument lessons", **cubes)) == [GUITAR]
    # A named cube with no match still has its (empty) group.
    empty = search(client, alice_key, "music", readable_cube_ids=["org:alice:empty"])
    assert empty["text_mem"] == [{"cube_id": "org:alice:empty", "memories": [], "total_nodes": 0}]
    # Default: every namespace the key can read.
    assert set(found(search(client, alice_key, "peanuts guitar", top_k=10))) == {SOFIA, GUITAR}
    assert found(search(client, alice_key, "peanuts", relativity=0.99)) == []
    assert found(search(client, alice_key, "peanuts", threshold=0.99)) == []
    assert found(search(client, alice_key, "peanuts", search_memory_type="LongTermMemory"))[0] == SOFIA
    assert found(search(client, alice_key, "peanuts", search_memory_type="ToolSchemaMemory")) == []
    # Knowledge-graph observations are memories too: key names their entity.
    graph_services.create_entities(
        namespace=ALICE, entities=[{"name": "Sofia", "entityType": "person", "observations": ["plays football"]}]
    )
    sport = search(client, alice_key, "What sport does Sofia play?")["text_mem"][0]["memories"][0]
    assert (sport["memory"], sport["metadata"]["key"]) == ("plays football", "Sofia")


def test_search_filters(client: Client, alice_key: Persona) -> None:
    add(client, alice_key, SOFIA, user_id="parent", session_id="s1", custom_tags=["health"])
    add(client, alice_key, RUNNING, user_id="runner", session_id="s2")
    query = "my daily life"

    def with_filter(value: dict[str, Any]) -> set[str]:
        return set(found(search(client, alice_key, query, filter=value)))

    assert with_filter({"user_id": "parent"}) == {SOFIA}
    assert with_filter({"session_id": "s2"}) == {RUNNING}
    assert with_filter({"tags": ["health"]}) == {SOFIA}
    assert with_filter({"or": [{"user_id": "parent"}, {"session_id": "s2"}]}) == {SOFIA, RUNNING}
    assert with_filter({"and": [{"user_id": "parent"}, {"session_id": "s2"}]}) == set()
    assert with_filter({"user_id": {"in": ["parent", "runner"]}}) == {SOFIA, RUNNING}
    assert with_filter({"created_at": {"gt": "2000-01-01"}}) == {SOFIA, RUNNING}
    assert with_filter({"created_at": {"lt": "2000-01-01T00:00:00Z"}}) == set()
    assert with_filter({"memory_type": "LongTermMemory", "cube_id": ALICE}) == {SOFIA, RUNNING}
    assert "unsupported field 'agent_id'" in fails(
        post(client, "search", {"query": query, "filter": {"agent_id": "x"}}, alice_key), 400
    )
    assert "not an ISO 8601 date" in fails(
        post(client, "search", {"query": query, "filter": {"created_at": {"gt": "yesterday"}}}, alice_key), 400
    )


# --- /product/get_all, /product/get_memory --------------------------------------------------------


def test_get_all_lists_the_newest_memories_by_cube(client: Client, alice_key: Persona) -> None:
    travel = "org:alice:travel"
    add(client, alice_key, [SOFIA, RUNNING])
    add(client, alice_key, GUITAR, writable_cube_ids=[travel])
    listed = ok(post(client, "get_all", {"memory_type": "text_mem"}, alice_key))
    by_cube = {group["cube_id"]: group for group in listed}
    assert [memory["memory"] for memory in by_cube[ALICE]["memories"]] == [RUNNING, SOFIA]  # newest first
    assert by_cube[ALICE]["total_nodes"] == 2
    assert [memory["memory"] for memory in by_cube[travel]["memories"]] == [GUITAR]
    assert by_cube[travel]["memories"][0]["metadata"]["relativity"] is None  # a listing has no score
    # Named cubes only, one group each (even empty).
    named = ok(post(client, "get_all", {"memory_type": "text_mem", "mem_cube_ids": [travel, "org:alice:x"]}, alice_key))
    assert [(group["cube_id"], group["total_nodes"]) for group in named] == [(travel, 1), ("org:alice:x", 0)]
    # search_query searches instead; search_type picks the side.
    searched = ok(post(client, "get_all", {"memory_type": "text_mem", "search_query": "peanut allergy"}, alice_key))
    assert searched[0]["memories"][0]["memory"] == SOFIA
    words = ok(
        post(
            client,
            "get_all",
            {"memory_type": "text_mem", "search_query": "satay", "search_type": "fulltext"},
            alice_key,
        )
    )
    assert [memory["memory"] for group in words for memory in group["memories"]] == [SOFIA]
    # The other memory kinds do not exist here.
    for kind in ("act_mem", "param_mem", "para_mem"):
        assert ok(post(client, "get_all", {"user_id": "u1", "memory_type": kind}, alice_key)) == []


def test_get_all_is_bounded(client: Client, alice_key: Persona) -> None:
    add(client, alice_key, [f"note number {i}" for i in range(memos.GET_ALL_LIMIT + 5)])
    listed = ok(post(client, "get_all", {"memory_type": "text_mem"}, alice_key))
    assert len(listed[0]["memories"]) == memos.GET_ALL_LIMIT
    assert listed[0]["total_nodes"] == memos.GET_ALL_LIMIT + 5
    assert listed[0]["memories"][0]["memory"] == f"note number {memos.GET_ALL_LIMIT + 4}"


def test_get_memory_pages_through_a_cube(client: Client, alice_key: Persona) -> None:
    texts = [f"fact {i}" for i in range(7)]
    add(client, alice_key, texts, session_id="s1")
    add(client, alice_key, "another session", session_id="s2")

    def page(**fields: Any) -> dict[str, Any]:
        data = ok(post(client, "get_memory", {"mem_cube_id": ALICE, "user_id": "u1", **fields}, alice_key))
        assert set(data) == {"text_mem", "pref_mem", "tool_mem", "skill_mem"}
        return data

    first = page(page=1, page_size=3)["text_mem"][0]
    assert first["cube_id"] == ALICE
    assert first["total_nodes"] == 8
    assert [memory["memory"] for memory in first["memories"]] == ["another session", "fact 6", "fact 5"]
    third = page(page=3, page_size=3)["text_mem"][0]
    assert [memory["memory"] for memory in third["memories"]] == ["fact 1", "fact 0"]
    assert page(page=4, page_size=3)["text_mem"][0]["memories"] == []
    everything = page()
    assert len(everything["text_mem"][0]["memories"]) == 8
    assert everything["pref_mem"] == [{"cube_id": ALICE, "memories": [], "total_nodes": 0}]
    assert page(include_preference=False, include_tool_memory=False)["pref_mem"] == []
    # A filter is applied in the database, so pages and totals count only what passes it.
    filtered = page(filter={"session_id": "s1"}, page_size=5)["text_mem"][0]
    assert filtered["total_nodes"] == 7
    assert len(filtered["memories"]) == 5
    assert "page_size must be from 1 to 100" in fails(
        post(client, "get_memory", {"mem_cube_id": ALICE, "page_size": 101}, alice_key), 400
    )
    assert "page" in fails(post(client, "get_memory", {"mem_cube_id": ALICE, "page": 0}, alice_key), 400)
    assert "mem_cube_id: Field required" in fails(post(client, "get_memory", {"user_id": "u1"}, alice_key), 400)


def test_get_one_memory_by_id(client: Client, alice_key: Persona) -> None:
    memory_id = add(client, alice_key, SOFIA)[0]["memory_id"]
    one = ok(client.get(f"/product/get_memory/{memory_id}", **alice_key.headers), "Memory retrieved successfully")
    assert (one["id"], one["memory"], one["ref_id"]) == (memory_id, SOFIA, f"[{memory_id}]")
    # A MemOS uuid is just an unknown id here.
    fails(client.get("/product/get_memory/7f3c1d2e-1111-2222-3333-444455556666", **alice_key.headers), 404)


def test_expired_memories_are_never_listed_or_found(client: Client, alice_key: Persona) -> None:
    access = alice_key.key.to_access()
    fleeting = memory_operations.write_memory(access, namespace=ALICE, text=GUITAR, ttl_ms=1)["id"]
    lasting = add(client, alice_key, SOFIA)[0]["memory_id"]
    time.sleep(0.01)
    listed = ok(post(client, "get_all", {"memory_type": "text_mem"}, alice_key))
    assert [memory["id"] for memory in listed[0]["memories"]] == [lasting]
    page = ok(post(client, "get_memory", {"mem_cube_id": ALICE}, alice_key))["text_mem"][0]
    assert (page["total_nodes"], [memory["id"] for memory in page["memories"]]) == (1, [lasting])
    fails(client.get(f"/product/get_memory/{fleeting}", **alice_key.headers), 404)


# --- /product/delete_memory -----------------------------------------------------------------------


def test_delete_memory_reports_what_was_deleted(client: Client, alice_key: Persona) -> None:
    travel = "org:alice:travel"
    kept, gone = (item["memory_id"] for item in add(client, alice_key, [SOFIA, RUNNING]))
    elsewhere = add(client, alice_key, GUITAR, writable_cube_ids=[travel])[0]["memory_id"]
    graph_services.create_entities(
        namespace=ALICE, entities=[{"name": "Sofia", "entityType": "person", "observations": ["plays football"]}]
    )
    observation = search(client, alice_key, "football")["text_mem"][0]["memories"][0]["id"]
    data = ok(
        post(client, "delete_memory", {"memory_ids": [gone, gone, "mem_999999", "not-an-id", observation]}, alice_key),
        "Memories deleted successfully",
    )
    assert data == {"status": "success", "deleted": [gone], "not_deleted": ["mem_999999", "not-an-id", observation]}
    assert gone not in found_ids(search(client, alice_key, RUNNING))
    # writable_cube_ids limits where deletion happens.
    limited = ok(
        post(client, "delete_memory", {"memory_ids": [kept, elsewhere], "writable_cube_ids": [travel]}, alice_key)
    )
    assert (limited["deleted"], limited["not_deleted"]) == ([elsewhere], [kept])
    assert "only deletion by memory_ids" in fails(post(client, "delete_memory", {"file_ids": ["f1"]}, alice_key), 400)
    assert "only deletion by memory_ids" in fails(
        post(client, "delete_memory", {"filter": {"user_id": "u1"}}, alice_key), 400
    )
    assert "memory_ids is required" in fails(post(client, "delete_memory", {"user_id": "u1"}, alice_key), 400)
    assert "limit is 1000" in fails(
        post(client, "delete_memory", {"memory_ids": [f"mem_{i}" for i in range(1, 1002)]}, alice_key), 400
    )


def test_a_memos_delete_is_recorded_restorable_and_purge_erases_the_history(client: Client, alice_key: Persona) -> None:
    access = alice_key.key.to_access()
    restorable, erased = (item["memory_id"] for item in add(client, alice_key, [SOFIA, RUNNING]))
    ok(post(client, "delete_memory", {"memory_ids": [restorable]}, alice_key))
    ok(post(client, "delete_memory", {"memory_ids": [erased], "purge": True}, alice_key))

    versions = perform(access, memory_ops.HISTORY, id=restorable)["versions"]
    assert [(v["action"], v["surface"]) for v in versions] == [("delete", "memos"), ("create", "memos")]
    perform(access, memory_ops.RESTORE, id=restorable)
    assert restorable in found_ids(search(client, alice_key, SOFIA))
    with pytest.raises(NotFound):
        perform(access, memory_ops.HISTORY, id=erased)


# --- grants: two tenants, and a reader -------------------------------------------------------------


def test_two_keys_never_see_each_others_memories(
    client: Client, alice_key: Persona, bob_key: Persona, carol_key: Persona
) -> None:
    alice_id = add(client, alice_key, KESTREL)[0]["memory_id"]
    bob_id = add(client, bob_key, "Bob's locker combination is 4-8-15.")[0]["memory_id"]
    no_read = f"This API key has no read grant for namespace {ALICE!r}."
    no_write = f"This API key has no write grant for namespace {ALICE!r}."

    # Search, default scope: each key sees only its own.
    assert found_ids(search(client, bob_key, "where is the launch code hidden?", top_k=50)) == [bob_id]
    assert found_ids(search(client, alice_key, "locker combination", top_k=50)) == [alice_id]
    # Naming the other's cube is a 403, on every route that reads or writes one.
    assert fails(post(client, "search", {"query": "launch code", "readable_cube_ids": [ALICE]}, bob_key), 403) == (
        no_read
    )
    assert fails(post(client, "search", {"query": "code", "readable_cube_ids": [BOB, ALICE]}, bob_key), 403) == no_read
    assert fails(post(client, "add", {"messages": "planted", "writable_cube_ids": [ALICE]}, bob_key), 403) == no_write
    assert fails(post(client, "get_all", {"memory_type": "text_mem", "mem_cube_ids": [ALICE]}, bob_key), 403) == (
        no_read
    )
    assert fails(post(client, "get_memory", {"mem_cube_id": ALICE}, bob_key), 403) == no_read
    assert fails(post(client, "chat/complete", {"query": "code?", "readable_cube_ids": [ALICE]}, bob_key), 403) == (
        no_read
    )
    assert fails(post(client, "chat/complete", {"query": "code?", "writable_cube_ids": [ALICE]}, bob_key), 403) == (
        no_write
    )
    assert fails(
        post(client, "delete_memory", {"memory_ids": [alice_id], "writable_cube_ids": [ALICE]}, bob_key), 403
    ) == (no_write)
    # get_all without cubes: only bob's own.
    listed = ok(post(client, "get_all", {"memory_type": "text_mem"}, bob_key))
    assert [group["cube_id"] for group in listed] == [BOB]
    # get_memory by id: the other's id is as unknown as a made-up one.
    assert fails(client.get(f"/product/get_memory/{alice_id}", **bob_key.headers), 404) == (
        f"Memory with ID {alice_id} not found"
    )
    # delete: not deleted, and the answer does not say whether it exists.
    assert ok(post(client, "delete_memory", {"memory_ids": [alice_id]}, bob_key))["not_deleted"] == [alice_id]
    # The chat of one never grounds on the other's memories.
    answer = ok(post(client, "chat/complete", {"query": "Where is the launch code hidden?"}, bob_key))
    assert KESTREL not in answer["response"]

    # Carol reads alice's cube but writes nothing there.
    assert found_ids(search(client, carol_key, "launch code", readable_cube_ids=[ALICE])) == [alice_id]
    assert ok(client.get(f"/product/get_memory/{alice_id}", **carol_key.headers))["memory"] == KESTREL
    assert fails(post(client, "add", {"messages": "carol was here"}, carol_key), 403) == no_write
    assert ok(post(client, "delete_memory", {"memory_ids": [alice_id]}, carol_key))["not_deleted"] == [alice_id]
    assert ok(client.get(f"/product/get_memory/{alice_id}", **alice_key.headers))["memory"] == KESTREL


# --- docs -----------------------------------------------------------------------------------------


def test_docs_and_schema_are_served(client: Client) -> None:
    docs = client.get("/product/docs")
    assert docs.status_code == 200
    assert b"<html" in docs.content.lower()
    schema = client.get("/product/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {path: next(iter(methods)) for path, methods in paths.items()} == {
        "/product/add": "post",
        "/product/search": "post",
        "/product/chat/complete": "post",
        "/product/get_all": "post",
        "/product/get_memory": "post",
        "/product/get_memory/{memory_id}": "get",
        "/product/delete_memory": "post",
    }
    add_request = schema.json()["components"]["schemas"]["AddRequest"]["properties"]
    assert {"user_id", "writable_cube_ids", "messages", "custom_tags", "async_mode", "mem_cube_id"} <= set(add_request)
