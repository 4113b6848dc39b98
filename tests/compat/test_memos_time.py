"""MemOS in time (`/product/*`): a message's chat_time is its memory's valid_from; search and
get_all return current memories, `as_of` / `include_expired` (and the camelCase asOf /
includeExpired) what was valid then / every memory, with valid_from, valid_to, supersedes,
superseded_by, source_id, extracted_by in the metadata and status archived once superseded. Two
user_ids of one key never see each other's memories, past ones included. Django's test client, real
keys, the real database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.compat.test_product_api import fails, found_ids, ok, post
from tests.conftest import Persona
from vectors import backlog

pytestmark = pytest.mark.django_db

OLD = "I work at Acme as an engineer"
NEW = "I work at Globex as an engineer"


def _add(client: Client, persona: Persona, user: str, text: str, chat_time: str | None = None) -> str:
    message = {"role": "user", "content": text, **({"chat_time": chat_time} if chat_time else {})}
    (added,) = ok(post(client, "add", {"user_id": user, "messages": [message]}, persona))
    return str(added["memory_id"])


def _search(client: Client, persona: Persona, user: str, **fields: Any) -> dict[str, Any]:
    backlog.drain()
    return ok(post(client, "search", {"user_id": user, "query": "where do I work", "top_k": 10, **fields}, persona))


def _items(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {memory["id"]: memory["metadata"] for group in data["text_mem"] for memory in group["memories"]}


def test_past_memories_of_one_user_and_not_of_another(client: Client, alice_key: Persona) -> None:
    old = _add(client, alice_key, "dana", OLD, chat_time="2023-01-10 09:00:00")
    other = _add(client, alice_key, "lee", "I work at Initech", chat_time="2023-01-10T09:00:00Z")
    superseded = client.post(
        "/v1/memory/supersede",
        json.dumps({"id": old, "text": NEW}),
        content_type="application/json",
        **alice_key.headers,
    )
    assert superseded.status_code == 200, superseded.content
    new = superseded.json()["id"]

    now = _search(client, alice_key, "dana")
    assert found_ids(now) == [new]
    assert _items(now)[new]["status"] == "activated"
    assert _items(now)[new]["supersedes"] == old

    for asked in ({"as_of": "2023-06-01"}, {"asOf": "2023-06-01T00:00:00Z"}):
        then = _search(client, alice_key, "dana", **asked)
        assert found_ids(then) == [old]
        metadata = _items(then)[old]
        assert metadata["valid_from"] == "2023-01-10T09:00:00Z"
        assert metadata["valid_to"] == superseded.json()["validFrom"]
        assert (metadata["superseded_by"], metadata["status"]) == (new, "archived")
        assert (metadata["source_id"], metadata["extracted_by"]) == (None, None)

    for asked in ({"include_expired": True}, {"includeExpired": True}):
        every = _items(_search(client, alice_key, "dana", **asked))
        assert {ident: metadata["status"] for ident, metadata in every.items()} == {
            old: "archived",
            new: "activated",
        }
        # The other user: only their own, whatever the time asked about.
        assert set(_items(_search(client, alice_key, "lee", **asked))) == {other}
    assert found_ids(_search(client, alice_key, "lee", as_of="2023-06-01")) == [other]

    listed = ok(post(client, "get_all", {"user_id": "dana", "memory_type": "text_mem"}, alice_key))
    assert [memory["id"] for group in listed for memory in group["memories"]] == [new]
    listed = ok(
        post(client, "get_all", {"user_id": "dana", "memory_type": "text_mem", "include_expired": True}, alice_key)
    )
    assert sorted(memory["id"] for group in listed for memory in group["memories"]) == sorted([old, new])
    listed = ok(
        post(client, "get_all", {"user_id": "lee", "memory_type": "text_mem", "include_expired": True}, alice_key)
    )
    assert [memory["id"] for group in listed for memory in group["memories"]] == [other]


def test_another_key_cannot_supersede_or_see_the_past(client: Client, alice_key: Persona, bob_key: Persona) -> None:
    old = _add(client, alice_key, "dana", OLD, chat_time="2023-01-10T09:00:00Z")
    answer = client.post(
        "/v1/memory/supersede",
        json.dumps({"id": old, "text": NEW}),
        content_type="application/json",
        **bob_key.headers,
    )
    unknown = client.post(
        "/v1/memory/supersede",
        json.dumps({"id": "mem_999999999", "text": NEW}),
        content_type="application/json",
        **bob_key.headers,
    )
    assert answer.status_code == unknown.status_code == 404
    assert answer.content.decode() == unknown.content.decode().replace("mem_999999999", old)
    for asked in ({"as_of": "2023-06-01"}, {"include_expired": True}):
        assert found_ids(_search(client, bob_key, "dana", **asked)) == []
    assert found_ids(_search(client, alice_key, "dana")) == [old]


def test_bad_times_are_refused_naming_the_field(client: Client, alice_key: Persona) -> None:
    bad_time = post(
        client,
        "add",
        {"user_id": "dana", "messages": [{"role": "user", "content": "hi", "chat_time": "teatime"}]},
        alice_key,
    )
    assert "chat_time" in fails(bad_time, 400)
    assert "asOf" in fails(post(client, "search", {"query": "x", "as_of": "soon"}, alice_key), 400)
    assert fails(post(client, "search", {"query": "x", "include_expired": "yes"}, alice_key), 400)
    assert found_ids(_search(client, alice_key, "dana", include_expired=True)) == []
