"""MemOS users on one key (`/product/*`): a Coze bot sends one server key for all of its users and
tells them apart by `user_id`. As in MemOS, each user_id has its own memories by default (its own
cube: the memories recorded with that user_id in the key's default namespace, also named by the
user_id itself); a cube named explicitly is shared by whoever may read it under the key's grants;
a request without user_id reaches everything the key can, as before. Two user_ids on one key, on
every route, through Django's test client with real keys, the real database and the real model.

Also chat's recording of the exchange: a side effect that never fails the answer (a read-only or
namespace-less key still gets its answer, and the envelope says the exchange was not recorded), and
nothing is recorded without a language model (a question is not a fact)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.compat.test_product_api import fails, found, found_ids, ok, post
from tests.conftest import ALICE, BOB, Persona, make_persona
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.django_db

BLOOD = "My blood type is AB negative."
BIKE = "I cycle to work every day on a red bike."
FAMILY = "org:alice:family"
RECIPE = "Grandma's lasagne needs three layers of bechamel."


def add(client: Client, persona: Persona, user: str | None, messages: Any, **fields: Any) -> list[dict[str, Any]]:
    return ok(post(client, "add", {**({"user_id": user} if user else {}), "messages": messages, **fields}, persona))


def search(client: Client, persona: Persona, user: str | None, query: str, **fields: Any) -> dict[str, Any]:
    body = {**({"user_id": user} if user else {}), "query": query, "top_k": 50, **fields}
    return ok(post(client, "search", body, persona))


def listed(groups: list[dict[str, Any]]) -> list[str]:
    return [memory["memory"] for group in groups for memory in group["memories"]]


def page(client: Client, persona: Persona, user: str | None, cube: str) -> list[str]:
    body = {**({"user_id": user} if user else {}), "mem_cube_id": cube}
    return listed(ok(post(client, "get_memory", body, persona))["text_mem"])


def get_one(client: Client, persona: Persona, memory_id: str, user: str | None = None) -> Any:
    query = {"user_id": user} if user else {}
    return client.get(f"/product/get_memory/{memory_id}", query, **persona.headers)


def chat(client: Client, persona: Persona, user: str | None, query: str, **fields: Any) -> Any:
    return post(client, "chat/complete", {**({"user_id": user} if user else {}), "query": query, **fields}, persona)


# --- each user_id its own memories ----------------------------------------------------------------


def test_one_user_never_reads_another_users_memories(client: Client, alice_key: Persona) -> None:
    (blood,) = add(client, alice_key, "alice-user", BLOOD)
    (bike,) = add(client, alice_key, "bob-user", BIKE)
    assert (blood["cube_id"], bike["cube_id"]) == (ALICE, ALICE)  # one namespace, two users

    # search: each finds only their own, even when asked about the other's.
    assert found(search(client, alice_key, "bob-user", "What is my blood type?")) == [BIKE]
    assert found(search(client, alice_key, "alice-user", "How do I get to work?")) == [BLOOD]
    # chat: the reported leak ("My blood type is AB negative" came back to bob).
    answer = ok(chat(client, alice_key, "bob-user", "What is my blood type?", add_message_on_answer=False))
    assert "AB negative" not in answer["response"]
    assert BIKE in answer["response"]
    mine = ok(chat(client, alice_key, "alice-user", "What is my blood type?", add_message_on_answer=False))
    assert BLOOD in mine["response"]
    # get_all: the user's own memories only (and search_query searches them only).
    everything = ok(post(client, "get_all", {"user_id": "bob-user", "memory_type": "text_mem"}, alice_key))
    assert listed(everything) == [BIKE]
    asked = {"user_id": "bob-user", "memory_type": "text_mem", "search_query": "blood type"}
    assert listed(ok(post(client, "get_all", asked, alice_key))) == [BIKE]
    # get_memory by id: another user's id is as unknown as a made-up one.
    assert fails(get_one(client, alice_key, blood["memory_id"], "bob-user"), 404) == (
        f"Memory with ID {blood['memory_id']} not found"
    )
    assert ok(get_one(client, alice_key, blood["memory_id"], "alice-user"))["memory"] == BLOOD
    # delete_memory: bob cannot delete alice's memory; alice can.
    refused = ok(post(client, "delete_memory", {"user_id": "bob-user", "memory_ids": [blood["memory_id"]]}, alice_key))
    assert (refused["deleted"], refused["not_deleted"]) == ([], [blood["memory_id"]])
    assert found(search(client, alice_key, "alice-user", "blood type")) == [BLOOD]
    done = ok(post(client, "delete_memory", {"user_id": "alice-user", "memory_ids": [blood["memory_id"]]}, alice_key))
    assert done["deleted"] == [blood["memory_id"]]
    assert found(search(client, alice_key, "alice-user", "blood type")) == []


def test_a_user_names_its_own_cube_by_its_user_id(client: Client, alice_key: Persona) -> None:
    # MemOS' default cube is the user_id: clients name it in writable/readable/mem_cube ids.
    (blood,) = add(client, alice_key, "alice-user", BLOOD, writable_cube_ids=["alice-user"])
    assert blood["cube_id"] == "alice-user"
    add(client, alice_key, "bob-user", BIKE, mem_cube_id="bob-user")

    assert page(client, alice_key, "alice-user", "alice-user") == [BLOOD]
    assert page(client, alice_key, "bob-user", "bob-user") == [BIKE]
    mine = search(client, alice_key, "bob-user", "blood type", readable_cube_ids=["bob-user"])
    assert [group["cube_id"] for group in mine["text_mem"]] == ["bob-user"]
    assert found(mine) == [BIKE]
    groups = ok(
        post(
            client,
            "get_all",
            {"user_id": "alice-user", "memory_type": "text_mem", "mem_cube_ids": "alice-user"},
            alice_key,
        )
    )
    assert [(group["cube_id"], listed([group])) for group in groups] == [("alice-user", [BLOOD])]
    # Another user's id names no cube of this user: it is a namespace, and this key has no grant for it.
    assert fails(post(client, "get_memory", {"user_id": "bob-user", "mem_cube_id": "alice-user"}, alice_key), 403)
    # Deleting within one's own cube only.
    attempt = {"user_id": "bob-user", "memory_ids": [blood["memory_id"]], "writable_cube_ids": ["bob-user"]}
    assert ok(post(client, "delete_memory", attempt, alice_key))["not_deleted"] == [blood["memory_id"]]


def test_a_named_cube_is_shared_by_the_users_of_the_key(client: Client, alice_key: Persona) -> None:
    add(client, alice_key, "alice-user", BLOOD)
    (recipe,) = add(client, alice_key, "alice-user", RECIPE, writable_cube_ids=[FAMILY])
    assert recipe["cube_id"] == FAMILY

    # Not bob's own memory...
    assert found(search(client, alice_key, "bob-user", "lasagne")) == []
    # ...but the cube, named, is readable by every user of the key, whoever recorded what is in it.
    assert found(search(client, alice_key, "bob-user", "lasagne", readable_cube_ids=[FAMILY])) == [RECIPE]
    assert page(client, alice_key, "bob-user", FAMILY) == [RECIPE]
    shared = {"user_id": "bob-user", "memory_type": "text_mem", "mem_cube_ids": [FAMILY]}
    assert listed(ok(post(client, "get_all", shared, alice_key))) == [RECIPE]
    grounded = ok(chat(client, alice_key, "bob-user", "How do I make lasagne?", readable_cube_ids=[FAMILY]))
    assert RECIPE in grounded["response"]
    # The key's default namespace named explicitly is shared too: both users' memories are in it.
    assert page(client, alice_key, "bob-user", ALICE) == [BLOOD]
    # Deleting in a named cube follows the key's grants.
    gone = {"user_id": "bob-user", "memory_ids": [recipe["memory_id"]], "writable_cube_ids": [FAMILY]}
    assert ok(post(client, "delete_memory", gone, alice_key))["deleted"] == [recipe["memory_id"]]


def test_without_user_id_the_key_reaches_every_users_memories(client: Client, alice_key: Persona) -> None:
    (blood,) = add(client, alice_key, "alice-user", BLOOD)
    add(client, alice_key, "bob-user", BIKE)
    add(client, alice_key, None, RECIPE, writable_cube_ids=[FAMILY])
    assert set(found(search(client, alice_key, None, "blood type bike lasagne"))) == {BLOOD, BIKE, RECIPE}
    assert set(listed(ok(post(client, "get_all", {"memory_type": "text_mem"}, alice_key)))) == {BLOOD, BIKE, RECIPE}
    assert ok(get_one(client, alice_key, blood["memory_id"]))["memory"] == BLOOD


def test_the_same_user_id_on_two_keys_is_two_users(client: Client, alice_key: Persona, bob_key: Persona) -> None:
    (blood,) = add(client, alice_key, "alice-user", BLOOD)
    (bike,) = add(client, bob_key, "alice-user", BIKE)
    assert found_ids(search(client, bob_key, "alice-user", "blood type")) == [bike["memory_id"]]
    assert found_ids(search(client, alice_key, "alice-user", "bike")) == [blood["memory_id"]]
    assert fails(get_one(client, bob_key, blood["memory_id"], "alice-user"), 404)
    answer = ok(chat(client, bob_key, "alice-user", "What is my blood type?", add_message_on_answer=False))
    assert "AB negative" not in answer["response"]
    other = ok(post(client, "get_all", {"user_id": "alice-user", "memory_type": "text_mem"}, bob_key))
    assert [group["cube_id"] for group in other] == [BOB]
    assert listed(other) == [BIKE]
    refused = {"user_id": "alice-user", "memory_ids": [blood["memory_id"]]}
    assert ok(post(client, "delete_memory", refused, bob_key))["not_deleted"] == [blood["memory_id"]]


# --- chat: recording the exchange never fails the answer ------------------------------------------


def test_chat_with_readable_cubes_and_no_writable_cube_answers(
    client: Client, alice_key: Persona, llm: FakeLLM
) -> None:
    add(client, alice_key, "alice-user", RECIPE, writable_cube_ids=[FAMILY])
    # A key without a default namespace (MemOS' APIChatCompleteRequest: readable cubes only).
    roaming = make_persona("roaming", [("org:alice:*", "write")], "")
    body = {"user_id": "alice-user", "query": "How do I make lasagne?", "readable_cube_ids": [FAMILY]}
    response = post(client, "chat/complete", body, roaming)
    assert response.status_code == 200, response.content
    envelope = response.json()
    assert envelope["data"]["response"] == "ANSWER: How do I make lasagne?"
    assert envelope["message"].startswith("Chat completed successfully")
    assert "not recorded" in envelope["message"]
    assert "default namespace" in envelope["message"]
    assert page(client, alice_key, None, FAMILY) == [RECIPE]  # nothing written anywhere
    # With a default namespace it is recorded where MemOS would: the user's own cube.
    data = ok(post(client, "chat/complete", body, alice_key), "Chat completed successfully")
    assert data["response"] == "ANSWER: How do I make lasagne?"
    assert page(client, alice_key, "alice-user", "alice-user") == ["ANSWER: How do I make lasagne?", body["query"]]
    assert page(client, alice_key, "bob-user", "bob-user") == []


def test_a_key_that_cannot_record_still_gets_its_answer(
    client: Client, alice_key: Persona, carol_key: Persona, llm: FakeLLM
) -> None:
    add(client, alice_key, None, RECIPE)
    response = chat(client, carol_key, None, "How do I make lasagne?")
    assert response.status_code == 200, response.content
    assert "not recorded" in response.json()["message"]
    assert RECIPE in llm.requests[0]["messages"][0]["content"]
    assert page(client, alice_key, None, ALICE) == [RECIPE]
    # A writable cube named explicitly is what the caller asked for: refused before the model runs.
    named = chat(client, carol_key, None, "Again?", writable_cube_ids=[ALICE])
    assert fails(named, 403) == f"This API key has no write grant for namespace {ALICE!r}."
    assert len(llm.requests) == 1


def test_without_a_model_questions_are_not_remembered_as_facts(client: Client, alice_key: Persona) -> None:
    add(client, alice_key, "alice-user", ["Sofia is allergic to peanuts.", "I live in Lisbon, near the river."])
    response = chat(client, alice_key, "alice-user", "What is Sofia allergic to?")
    assert response.status_code == 200, response.content
    envelope = response.json()
    assert "Sofia is allergic to peanuts." in envelope["data"]["response"]
    assert "not recorded" in envelope["message"]
    assert "language model" in envelope["message"]
    later = ok(chat(client, alice_key, "alice-user", "Where does the user live?"))
    assert "What is Sofia allergic to?" not in later["response"]
    assert "What is Sofia allergic to?" not in found(search(client, alice_key, "alice-user", "Sofia allergic"))
    assert len(page(client, alice_key, "alice-user", "alice-user")) == 2
