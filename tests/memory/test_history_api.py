"""The history over REST through the whole Django stack: POST /v1/memory/{history,update,restore},
/v1/memory/delete with `purge`, and /v1/graph/entity_history; status codes and error shapes for
bad input (nothing changes), and two keys that cannot read, change or restore each other's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from graph.sql import db
from tests.conftest import ALICE, Persona

pytestmark = pytest.mark.django_db


def post(client: Client, path: str, body: dict[str, Any], persona: Persona) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **persona.headers)


def write(client: Client, persona: Persona, text: str) -> str:
    response = post(client, "/v1/memory/write", {"text": text, "namespace": ALICE}, persona)
    assert response.status_code == 200, response.content
    return str(response.json()["id"])


def version_count() -> int:
    return int(db().execute("SELECT count(*) FROM graph_version").fetchone()[0])


def test_update_history_delete_restore_and_purge(client: Client, alice_key: Persona) -> None:
    memory = write(client, alice_key, "lunch is at noon")
    updated = post(client, "/v1/memory/update", {"id": memory, "text": "lunch moved to 1pm"}, alice_key)
    assert updated.status_code == 200
    assert updated.json() == {"id": memory, "text": "lunch moved to 1pm", "namespace": ALICE, "version": 2}

    history = post(client, "/v1/memory/history", {"id": memory}, alice_key).json()
    assert history["id"] == memory
    update, create = history["versions"]
    assert (update["action"], update["surface"], update["operation"]) == ("update", "rest", "memory_update")
    assert update["key"] == f"key:{alice_key.key.prefix}"
    assert update["userId"] == alice_key.user.pk
    assert (update["before"]["text"], update["after"]["text"]) == ("lunch is at noon", "lunch moved to 1pm")
    assert create["action"] == "create"

    assert post(client, "/v1/memory/delete", {"id": memory}, alice_key).json() == {"deleted": True, "id": memory}
    restored = post(client, "/v1/memory/restore", {"id": memory}, alice_key)
    assert restored.status_code == 200
    assert restored.json()["state"]["text"] == "lunch moved to 1pm"
    older = post(client, "/v1/memory/restore", {"id": memory, "version": 1}, alice_key).json()
    assert older["state"]["text"] == "lunch is at noon"

    purged = post(client, "/v1/memory/delete", {"id": memory, "purge": True}, alice_key)
    assert purged.json() == {"deleted": True, "id": memory}
    assert post(client, "/v1/memory/history", {"id": memory}, alice_key).status_code == 404
    assert post(client, "/v1/memory/restore", {"id": memory}, alice_key).status_code == 404


def test_entity_history_over_rest(client: Client, alice_key: Persona, bob_key: Persona) -> None:
    body = {"entities": [{"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]}]}
    assert post(client, "/v1/graph/create_entities", {**body, "namespace": ALICE}, alice_key).status_code == 200
    renamed = post(
        client, "/v1/graph/rename_entity", {"name": "Ada", "newName": "Ada Lovelace", "namespace": ALICE}, alice_key
    )
    assert renamed.status_code == 200
    found = post(client, "/v1/graph/entity_history", {"name": "Ada", "namespace": ALICE}, alice_key)
    assert found.status_code == 200
    result = found.json()
    assert len(result["entities"]) == 1
    assert [(v["kind"], v["action"]) for v in result["versions"]] == [
        ("entity", "rename"),
        ("observation", "create"),
        ("entity", "create"),
    ]
    by_new_name = post(client, "/v1/graph/entity_history", {"name": "Ada Lovelace", "namespace": ALICE}, alice_key)
    assert by_new_name.json() == {**result, "name": "Ada Lovelace"}
    refused = post(client, "/v1/graph/entity_history", {"name": "Ada", "namespace": ALICE}, bob_key)
    assert refused.status_code == 403
    missing = post(client, "/v1/graph/entity_history", {"name": "Nobody", "namespace": ALICE}, alice_key)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/memory/update", {"text": ""}, 400, "text"),
        ("/v1/memory/update", {"text": "   "}, 400, "text"),
        ("/v1/memory/update", {"text": "x" * 70_000}, 400, None),
        ("/v1/memory/update", {"id": "mem_999999", "text": "new"}, 404, None),
        ("/v1/memory/update", {"id": "ent_1", "text": "new"}, 400, "id"),
        ("/v1/memory/restore", {"version": 5}, 404, None),
        ("/v1/memory/restore", {"version": 0}, 400, "version"),
        ("/v1/memory/restore", {"version": "1"}, 400, "version"),
        ("/v1/memory/restore", {}, 400, "version"),  # a live memory: which version?
        ("/v1/memory/restore", {"id": "nonsense"}, 400, "id"),
        ("/v1/memory/history", {"id": "mem_999999"}, 404, None),
        ("/v1/memory/delete", {"purge": "yes"}, 400, "purge"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    client: Client, alice_key: Persona, path: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    memory = write(client, alice_key, "keep me as I am")
    count = version_count()
    response = post(client, path, {"id": memory, **body}, alice_key)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["message"]
    if field is not None:
        assert field in json.dumps(error)
    assert version_count() == count
    got = post(client, "/v1/memory/history", {"id": memory}, alice_key).json()
    assert [v["action"] for v in got["versions"]] == ["create"]


def test_keys_do_not_reach_each_others_history(
    client: Client, alice_key: Persona, bob_key: Persona, carol_key: Persona
) -> None:
    memory = write(client, alice_key, "the vault code is 4417")
    gone = write(client, alice_key, "the old vault code was 1111")
    post(client, "/v1/memory/delete", {"id": gone}, alice_key)
    count = version_count()
    for path, body in (
        ("/v1/memory/history", {"id": memory}),
        ("/v1/memory/history", {"id": gone}),
        ("/v1/memory/update", {"id": memory, "text": "bob was here"}),
        ("/v1/memory/restore", {"id": gone}),
        ("/v1/memory/restore", {"id": memory, "version": 1}),
    ):
        response = post(client, path, body, bob_key)
        assert response.status_code == 404, (path, response.content)
        assert "4417" not in response.content.decode()
        assert "1111" not in response.content.decode()
    # Carol may read Alice's namespace: she reads the history, she cannot restore or purge.
    assert post(client, "/v1/memory/history", {"id": gone}, carol_key).status_code == 200
    assert post(client, "/v1/memory/restore", {"id": gone}, carol_key).status_code == 404
    assert post(client, "/v1/memory/delete", {"id": gone, "purge": True}, carol_key).json()["deleted"] is False
    assert version_count() == count
