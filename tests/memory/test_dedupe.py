"""Dedupe without an LLM (memory/dedupe.py): the judge on its evaluation set, and repeats folded
into the memory they repeat through the services, the REST memory API, the MemOS API, the graph's
add_observations / upsert_entities (service and REST) and the admin's per-namespace setting. Real
SQLite, the real built-in embedder, Django's test client through the whole stack. The MCP tools
are tested against a real server in tests/mcp_endpoint/test_dedupe_tools.py."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from access import namespaces
from access.operations import perform
from bench import dedupe as evaluation
from graph import services as graph_services
from graph.models import Observation, Version
from memory import dedupe, operations
from memory.services import NewMemory
from memory.wire import parse_memory_id
from tests.access.test_admin import changeform_data, url
from tests.conftest import ALICE, BOB, Persona

pytestmark = pytest.mark.django_db

# The share of the set's true duplicates merged when it was built (bench/RESULTS.md, "Dedupe"),
# less a small margin: the judge may get stricter, not much blinder.
MIN_SHARE_MERGED = 0.75

SERVER = "The staging database runs on port 5432."


def post(client: Client, route: str, body: Any, persona: Persona) -> Any:
    return client.post(route, json.dumps(body), content_type="application/json", **persona.headers)


def write(client: Client, persona: Persona, text: str, **fields: Any) -> dict[str, Any]:
    response = post(client, "/v1/memory/write", {"namespace": persona.namespace, "text": text, **fields}, persona)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def search(client: Client, persona: Persona, query: str) -> list[dict[str, Any]]:
    response = post(client, "/v1/memory/search", {"query": query, "namespace": persona.namespace}, persona)
    assert response.status_code == 200, response.content
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def row(memory_id: str) -> Observation:
    return Observation.objects.get(pk=parse_memory_id(memory_id))


def mentions(memory_id: str) -> list[Version]:
    return list(
        Version.objects.filter(kind="observation", object_id=parse_memory_id(memory_id), action="mention").order_by(
            "version"
        )
    )


# --- the judge on the evaluation set --------------------------------------------------------------


def test_the_evaluation_set_has_no_wrong_merge():
    pairs = evaluation.load()
    assert len(pairs) >= 150
    assert {pair["lang"] for pair in pairs} == {"en", "zh"}
    outcome = evaluation.evaluate(pairs)
    assert outcome["wrong"] == []
    assert outcome["merged"] / outcome["duplicates"] >= MIN_SHARE_MERGED


@pytest.mark.parametrize(
    ("existing", "new"),
    [
        ("The admin dashboard is served on port 8080.", "The admin dashboard is served on port 8081."),
        ("We pinned Django to v2.3.0.", "We pinned Django to v2.3.1."),
        ("Anna leads the data team.", "Anne leads the data team."),
        ("张伟是数据组的负责人", "张维是数据组的负责人"),
        ("The worker retries failed jobs.", "The worker doesn't retry failed jobs."),
        ("Alice reports to Bob.", "Bob reports to Alice."),
        ("ok", "no"),
    ],
)
def test_texts_that_differ_in_an_identifier_negation_or_role_are_never_the_same(existing, new):
    assert dedupe.match([new], [(1, existing)]) == {}


def test_within_one_call_a_repeat_folds_into_its_first_occurrence():
    texts = ["Bob is allergic to peanuts.", "Please remember that Bob is allergic to peanuts!", "Bob likes tea."]
    assert dedupe.within(texts) == {1: 0}


# --- free memories through the REST memory API ------------------------------------------------------


def test_a_repeat_is_not_stored_and_the_memory_it_repeats_is_mentioned(client, alice_key):
    first = write(client, alice_key, SERVER)
    assert first["duplicateOf"] is None
    again = write(client, alice_key, "Please remember that the staging database runs on port 5432!")
    assert again["duplicateOf"] == again["id"] == first["id"]
    assert (again["createdAt"], again["expiresAt"]) == (first["createdAt"], first["expiresAt"])
    assert Observation.objects.filter(namespace__name=ALICE).count() == 1

    stored = row(first["id"])
    assert stored.mention_count == 2
    assert stored.last_seen_at is not None
    (mention,) = mentions(first["id"])
    assert mention.after is not None
    assert (mention.before, mention.after["mentionCount"]) == ({"mentionCount": 1}, 2)
    assert (mention.surface, mention.operation, mention.key_id) == ("rest", operations.WRITE, alice_key.key.pk)

    (hit,) = search(client, alice_key, "staging database port")
    assert (hit["id"], hit["mentionCount"]) == (first["id"], 2)
    assert hit["lastSeen"] >= hit["createdAt"]


def test_near_misses_are_stored_apart(client, alice_key):
    texts = [
        SERVER,
        "The staging database runs on port 5433.",
        "The staging database doesn't run on port 5432.",
        "The production database runs on port 5432.",
    ]
    written = [write(client, alice_key, text) for text in texts]
    assert [memory["duplicateOf"] for memory in written] == [None] * 4
    assert len({memory["id"] for memory in written}) == 4


def test_dedupe_false_stores_the_repeat(client, alice_key):
    first = write(client, alice_key, SERVER)
    again = write(client, alice_key, SERVER, dedupe=False)
    assert again["duplicateOf"] is None
    assert again["id"] != first["id"]
    assert row(first["id"]).mention_count == 1


def test_dedupe_must_be_a_boolean_and_a_refused_write_changes_nothing(client, alice_key):
    response = post(client, "/v1/memory/write", {"namespace": ALICE, "text": SERVER, "dedupe": "no"}, alice_key)
    assert response.status_code == 400, response.content
    assert "dedupe" in response.json()["error"]["details"]["fields"]
    assert not Observation.objects.filter(namespace__name=ALICE).exists()


def test_the_namespace_setting_turns_dedupe_off(client, alice_key):
    first = write(client, alice_key, SERVER)
    assert namespaces.set_dedupe(ALICE, False)
    again = write(client, alice_key, SERVER)
    assert again["duplicateOf"] is None
    assert again["id"] != first["id"]
    assert namespaces.set_dedupe(ALICE, True)
    third = write(client, alice_key, SERVER)
    assert third["duplicateOf"] == first["id"]


def test_two_keys_in_two_namespaces_never_dedupe_into_each_other(client, alice_key, bob_key):
    mine = write(client, alice_key, SERVER)
    theirs = write(client, bob_key, SERVER)
    assert theirs["duplicateOf"] is None
    assert theirs["id"] != mine["id"]
    assert row(mine["id"]).mention_count == row(theirs["id"]).mention_count == 1
    assert [hit["id"] for hit in search(client, bob_key, "staging database")] == [theirs["id"]]


def test_two_actors_of_one_namespace_never_dedupe_into_each_other(client, alice_key):
    anna = write(client, alice_key, SERVER, actorId="anna")
    ben = write(client, alice_key, SERVER, actorId="ben")
    nobody = write(client, alice_key, SERVER)
    assert [ben["duplicateOf"], nobody["duplicateOf"]] == [None, None]
    assert len({anna["id"], ben["id"], nobody["id"]}) == 3
    assert write(client, alice_key, SERVER, actorId="anna")["duplicateOf"] == anna["id"]


def test_an_expired_memory_is_not_repeated(client, alice_key):
    gone = write(client, alice_key, SERVER, ttlMs=1)
    time.sleep(0.01)
    fresh = write(client, alice_key, SERVER)
    assert fresh["duplicateOf"] is None
    assert fresh["id"] != gone["id"]


def test_repeats_within_one_write_are_stored_once(alice_key):
    texts = [SERVER, "Bob likes tea.", "the staging database runs on port 5432", "Bob likes tea!"]
    written = perform(
        alice_key.key.to_access(), operations.WRITE, namespace=ALICE, memories=[NewMemory(text=t) for t in texts]
    )
    assert [memory["duplicateOf"] for memory in written] == [None, None, written[0]["id"], written[1]["id"]]
    assert [memory["id"] for memory in written[2:]] == [written[0]["id"], written[1]["id"]]
    assert Observation.objects.filter(namespace__name=ALICE).count() == 2
    assert row(written[0]["id"]).mention_count == 2


def test_memories_from_before_keys_are_keyed_on_the_next_write_and_found(client, alice_key):
    first = write(client, alice_key, SERVER)
    # As a database from before dedupe keys holds it.
    Observation.objects.filter(pk=parse_memory_id(first["id"])).update(dedupe_key=None)
    again = write(client, alice_key, "Please note: the staging database runs on port 5432")
    assert again["duplicateOf"] == first["id"]
    assert row(first["id"]).dedupe_key == dedupe.key_of(SERVER)


def test_a_memory_rewritten_by_an_update_is_keyed_by_its_new_text(client, alice_key):
    first = write(client, alice_key, "Bob likes tea.")
    response = post(client, "/v1/memory/update", {"id": first["id"], "text": SERVER, "namespace": ALICE}, alice_key)
    assert response.status_code == 200, response.content
    assert row(first["id"]).dedupe_key is None  # the old text's key is gone with it
    assert write(client, alice_key, "the staging database runs on port 5432!")["duplicateOf"] == first["id"]
    assert write(client, alice_key, "Bob likes tea")["duplicateOf"] is None


def test_the_key_is_the_same_for_every_two_texts_the_judge_finds_the_same():
    merged = [pair for pair in evaluation.load() if dedupe.match([pair["new"]], [(1, pair["existing"])])]
    assert merged
    assert all(dedupe.key_of(pair["new"]) == dedupe.key_of(pair["existing"]) for pair in merged)


# --- the MemOS API ------------------------------------------------------------------------------------


def add(client: Client, persona: Persona, user: str, text: str, **fields: Any) -> dict[str, Any]:
    response = post(client, "/product/add", {"user_id": user, "messages": text, **fields}, persona)
    assert response.status_code == 200, response.content
    (added,) = response.json()["data"]
    return dict(added)


def test_memos_add_reports_a_repeat_and_keeps_users_apart(client, alice_key):
    first = add(client, alice_key, "u1", SERVER)
    assert first["duplicate_of"] is None
    again = add(client, alice_key, "u1", "Note that the staging database runs on port 5432")
    assert again["duplicate_of"] == again["memory_id"] == first["memory_id"]
    other = add(client, alice_key, "u2", SERVER)
    assert other["duplicate_of"] is None
    assert other["memory_id"] != first["memory_id"]
    forced = add(client, alice_key, "u1", SERVER, dedupe=False)
    assert forced["duplicate_of"] is None
    assert forced["memory_id"] != first["memory_id"]
    assert row(first["memory_id"]).mention_count == 2

    response = client.get(f"/product/get_memory/{first['memory_id']}", **alice_key.headers)
    assert response.status_code == 200, response.content
    metadata = response.json()["data"]["metadata"]
    assert metadata["mention_count"] == 2
    assert metadata["last_seen"] >= metadata["created_at"]


# --- observations of one entity --------------------------------------------------------------------


def create_ada(namespace: str = ALICE) -> None:
    graph_services.create_entities(
        namespace=namespace,
        entities=[{"name": "Ada", "entityType": "person", "observations": ["Ada's favourite colour is blue."]}],
    )


def ada_observations(namespace: str = ALICE) -> list[Observation]:
    return list(Observation.objects.filter(namespace__name=namespace, entity__name="Ada").order_by("id"))


def test_add_observations_folds_a_repeat_into_the_entity_observation(alice):
    create_ada()
    (original,) = ada_observations()
    result = graph_services.add_observations(
        namespace=ALICE,
        observations=[
            {"entityName": "Ada", "contents": ["Ada's favorite color is blue!", "Ada's favourite colour is red."]}
        ],
    )
    assert result["results"][0]["addedObservations"] == ["Ada's favourite colour is red."]
    original.refresh_from_db()
    assert original.mention_count == 2
    assert [(version.after or {})["mentionCount"] for version in mentions(f"mem_{original.pk}")] == [2]
    graph_services.add_observations(
        namespace=ALICE,
        observations=[{"entityName": "Ada", "contents": ["Ada's favorite color is blue!"]}],
        dedupe=False,
    )
    assert len(ada_observations()) == 3


def test_upsert_entities_folds_repeats_and_the_namespace_setting_turns_it_off(alice):
    create_ada()
    result = graph_services.upsert_entities(
        namespace=ALICE,
        entities=[
            {"name": "Ada", "entityType": "person", "observations": ["Please note: Ada's favorite color is blue"]}
        ],
    )
    assert result["updated"] == [{"name": "Ada", "addedObservations": []}]
    assert namespaces.set_dedupe(ALICE, False)
    result = graph_services.upsert_entities(
        namespace=ALICE,
        entities=[
            {"name": "Ada", "entityType": "person", "observations": ["Please note: Ada's favorite color is blue"]}
        ],
    )
    assert result["updated"] == [{"name": "Ada", "addedObservations": ["Please note: Ada's favorite color is blue"]}]


def test_rest_add_observations_and_upsert_take_the_dedupe_flag(client, alice_key, bob_key):
    create_ada(ALICE)
    create_ada(BOB)
    repeat = "Ada's favorite color is blue!"
    body = {"observations": [{"entityName": "Ada", "contents": [repeat]}]}
    folded = post(client, "/v1/graph/add_observations", body, alice_key)
    assert folded.status_code == 200, folded.content
    assert folded.json()["results"][0]["addedObservations"] == []
    # Bob's namespace is his own: Alice's write mentioned only hers.
    assert [o.mention_count for o in ada_observations(ALICE)] == [2]
    assert [o.mention_count for o in ada_observations(BOB)] == [1]

    kept = post(client, "/v1/graph/add_observations", {**body, "dedupe": False}, alice_key)
    assert kept.json()["results"][0]["addedObservations"] == [repeat]
    refused = post(client, "/v1/graph/add_observations", {**body, "dedupe": "false"}, alice_key)
    assert refused.status_code == 400, refused.content
    upsert = {
        "entities": [{"name": "Ada", "entityType": "person", "observations": ["Ada's favourite colour is BLUE."]}]
    }
    response = post(client, "/v1/graph/upsert_entities", {**upsert, "dedupe": None}, bob_key)
    assert response.json()["updated"] == [{"name": "Ada", "addedObservations": []}]
    response = post(client, "/v1/graph/upsert_entities", {**upsert, "dedupe": False}, bob_key)
    assert response.json()["updated"] == [{"name": "Ada", "addedObservations": ["Ada's favourite colour is BLUE."]}]


# --- the admin ----------------------------------------------------------------------------------------


def test_the_admin_edits_the_namespace_setting(client, root_key, alice_key):
    write(client, alice_key, SERVER)
    client.force_login(root_key.user)
    namespace = namespaces.lookup(ALICE)
    page = client.get(url("graph_namespace_change", namespace))
    assert page.status_code == 200
    assert list(page.context["adminform"].form.fields) == ["dedupe"]
    data = changeform_data(page)
    data.pop("dedupe", None)  # unchecked
    response = client.post(url("graph_namespace_change", namespace), data)
    assert response.status_code == 302, response.content
    assert not Observation.objects.get(namespace__name=ALICE).namespace.dedupe
    client.logout()
    assert write(client, alice_key, SERVER)["duplicateOf"] is None
