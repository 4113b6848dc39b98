"""The history of memories, observations, entities and relations (graph/history.py, memory/history.py)
through the runner on the real SQLite store: every write records a version with who, which surface
and which operation; update in place; restore after a delete (a memory, an observation with its
entity, an entity with its observations and relations, a relation) and to an older version; purge;
the retention job; two keys that must not see or restore each other's history; errors change nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from access.exceptions import NamespaceForbidden
from access.operations import perform
from access.permissions import Access
from graph import history, services
from graph.dedupe import note_mentions
from graph.exceptions import Conflict, EntityNotFound, InvalidArgument, NotFound, RetentionPassed
from graph.sql import db
from kernel import sql
from kernel.sql import stored_time
from memory import operations
from memory.services import NewMemory
from tests.conftest import ALICE, Persona
from vectors import backlog

pytestmark = pytest.mark.django_db


def via(persona: Persona, surface: str = "mcp") -> Access:
    return dataclasses.replace(persona.key.to_access(), surface=surface)


def versions(access: Access, wire_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = perform(access, operations.HISTORY, id=wire_id)["versions"]
    return found


def write(access: Access, text: str, **options: Any) -> str:
    (written,) = perform(access, operations.WRITE, namespace=ALICE, memories=[NewMemory(text=text, **options)])
    return str(written["id"])


def obs_id(namespace: str, entity: str, text: str) -> str:
    row = (
        db()
        .execute(
            "SELECT o.id FROM graph_observation o JOIN graph_entity e ON e.id = o.entity_id "
            "JOIN graph_namespace n ON n.id = e.namespace_id WHERE n.name = ? AND e.name = ? AND o.body = ?",
            (namespace, entity, text),
        )
        .fetchone()
    )
    return f"mem_{row[0]}"


def ent_id(namespace: str, name: str) -> str:
    row = (
        db()
        .execute(
            "SELECT e.id FROM graph_entity e JOIN graph_namespace n ON n.id = e.namespace_id "
            "WHERE n.name = ? AND e.name = ?",
            (namespace, name),
        )
        .fetchone()
    )
    return f"ent_{row[0]}"


def rel_ids(namespace: str) -> list[str]:
    rows = db().execute(
        "SELECT r.id FROM graph_relation r JOIN graph_namespace n ON n.id = r.namespace_id WHERE n.name = ? "
        "ORDER BY r.id",
        (namespace,),
    )
    return [f"rel_{row[0]}" for row in rows]


def graph_of(access: Access) -> dict[str, Any]:
    found: dict[str, Any] = perform(access, "read_graph", namespace=ALICE)
    return found


def version_count() -> int:
    return int(db().execute("SELECT count(*) FROM graph_version").fetchone()[0])


def seed_graph(access: Access) -> None:
    perform(
        access,
        "create_entities",
        namespace=ALICE,
        entities=[
            {"name": "Ada", "entityType": "person", "observations": ["wrote the first program", "born 1815"]},
            {"name": "Babbage", "entityType": "person", "observations": ["designed the engine"]},
        ],
    )
    perform(
        access,
        "create_relations",
        namespace=ALICE,
        relations=[
            {"from": "Ada", "to": "Babbage", "relationType": "worked with"},
            {"from": "Babbage", "to": "Ada", "relationType": "admired"},
        ],
    )


# --- recording -------------------------------------------------------------------------------------


def test_each_graph_write_records_who_changed_what_through_which_surface(alice_key: Persona) -> None:
    access = via(alice_key, "mcp")
    seed_graph(access)
    ada = ent_id(ALICE, "Ada")
    (created,) = versions(access, ada)
    assert created["action"] == "create"
    assert created["before"] is None
    assert created["after"] == {"name": "Ada", "entityType": "person"}
    assert created["surface"] == "mcp"
    assert created["operation"] == "create_entities"
    assert created["key"] == f"key:{alice_key.key.prefix}"
    assert created["userId"] == alice_key.user.pk
    assert created["namespace"] == ALICE
    assert created["changedAt"].endswith("Z")

    fact = obs_id(ALICE, "Ada", "born 1815")
    (first,) = versions(access, fact)
    assert first["after"]["text"] == "born 1815"
    assert first["after"]["entityName"] == "Ada"
    assert first["after"]["entityId"] == ada
    assert first["after"]["mentionCount"] == 1

    relation = rel_ids(ALICE)[0]
    (linked,) = versions(access, relation)
    assert linked["action"] == "create"
    assert linked["after"]["from"] == "Ada"
    assert linked["after"]["to"] == "Babbage"
    assert linked["after"]["relationType"] == "worked with"

    perform(
        via(alice_key, "rest"),
        "add_observations",
        namespace=ALICE,
        observations=[{"entityName": "Ada", "contents": ["translated Menabrea"]}],
    )
    added = versions(access, obs_id(ALICE, "Ada", "translated Menabrea"))
    assert [(v["action"], v["surface"], v["operation"]) for v in added] == [("create", "rest", "add_observations")]

    perform(access, "rename_entity", namespace=ALICE, name="Babbage", new_name="Charles Babbage")
    renamed = versions(access, ent_id(ALICE, "Charles Babbage"))[0]
    assert renamed["action"] == "rename"
    assert renamed["before"]["name"] == "Babbage"
    assert renamed["after"]["name"] == "Charles Babbage"
    assert renamed["version"] == 2

    perform(
        access, "delete_observations", namespace=ALICE, deletions=[{"entityName": "Ada", "observations": ["born 1815"]}]
    )
    gone = versions(access, fact)[0]
    assert (gone["action"], gone["after"], gone["before"]["text"]) == ("delete", None, "born 1815")

    perform(
        access,
        "delete_relations",
        namespace=ALICE,
        relations=[{"from": "Ada", "to": "Charles Babbage", "relationType": "worked with"}],
    )
    assert versions(access, relation)[0]["action"] == "delete"


def test_merge_records_the_source_its_moved_and_dropped_observations_and_relations(alice_key: Persona) -> None:
    access = via(alice_key)
    seed_graph(access)
    perform(
        access,
        "add_observations",
        namespace=ALICE,
        observations=[
            {"entityName": "Babbage", "contents": ["born 1815"]}  # the same text as Ada's: dropped
        ],
    )
    moved = obs_id(ALICE, "Babbage", "designed the engine")
    dropped = obs_id(ALICE, "Babbage", "born 1815")
    babbage = ent_id(ALICE, "Babbage")
    loops, kept = rel_ids(ALICE)
    perform(access, "merge_entities", namespace=ALICE, source="Babbage", target="Ada")

    assert versions(access, babbage)[0]["action"] == "merge"
    assert versions(access, babbage)[0]["after"] is None
    change = versions(access, moved)[0]
    assert change["action"] == "merge"
    assert (change["before"]["entityName"], change["after"]["entityName"]) == ("Babbage", "Ada")
    assert versions(access, dropped)[0]["after"] is None
    # Both relations become self-loops on Ada: dropped.
    assert versions(access, loops)[0]["after"] is None
    assert versions(access, kept)[0]["after"] is None
    # The target's history shows what it received.
    entity_history = perform(access, "entity_history", namespace=ALICE, name="Ada")
    assert moved in {v["id"] for v in entity_history["versions"]}
    # The source is found by its name though it is gone.
    old = perform(access, "entity_history", namespace=ALICE, name="Babbage")
    assert old["entities"] == [babbage]


def test_memory_writes_record_their_actor_and_every_change(alice_key: Persona) -> None:
    rest = via(alice_key, "rest")
    memory = write(rest, "the door code is 1234", actor_id="u7", tags=["home"])
    (created,) = versions(rest, memory)
    assert created["after"]["text"] == "the door code is 1234"
    assert created["after"]["tags"] == ["home"]
    assert created["actorId"] == "u7"
    assert created["after"]["actorId"] == "u7"
    assert created["after"]["entityId"] is None
    assert (created["surface"], created["operation"]) == ("rest", operations.WRITE)

    updated = perform(via(alice_key, "memos"), operations.UPDATE, id=memory, text="the door code is 4321")
    assert updated == {"id": memory, "text": "the door code is 4321", "namespace": ALICE, "version": 2}
    change = versions(rest, memory)[0]
    assert (change["action"], change["surface"]) == ("update", "memos")
    assert change["before"]["text"] == "the door code is 1234"
    assert change["after"]["text"] == "the door code is 4321"

    perform(rest, operations.DELETE, id=memory)
    assert versions(rest, memory)[0]["action"] == "delete"

    other = write(rest, "a second memory", actor_id="u7")
    perform(rest, operations.CLEAR, namespace=ALICE, actor_id="u7")
    assert versions(rest, other)[0]["action"] == "delete"
    assert versions(rest, other)[0]["operation"] == operations.CLEAR


@pytest.mark.postgres_only(reason="server-side binding is PostgreSQL's (kernel/sql.py PostgresConnection)")
def test_recording_versions_runs_bound_on_the_server_so_postgresql_can_prepare_it(alice_key: Persona) -> None:
    """Each kind of version the history writes (a row's snapshot, a batch of new rows, the next
    version of an existing one) is typed by the server: none falls back to inlined values,
    which would be planned anew on every write."""
    rest = via(alice_key, "rest")
    memory = write(rest, "the door code is 1234")
    perform(rest, operations.UPDATE, id=memory, text="the door code is 4321")
    perform(rest, operations.DELETE, id=memory)
    services.create_entities(
        namespace=ALICE, entities=[{"name": "Ada", "entityType": "person", "observations": ["wrote a program"]}]
    )
    services.add_observations(namespace=ALICE, observations=[{"entityName": "Ada", "contents": ["met Babbage"]}])
    assert len(versions(rest, memory)) == 3
    recorded = [(key[0], bound) for key, bound in sql._server_bound.items() if "INSERT INTO graph_version" in key[0]]
    assert len(recorded) >= 2
    assert [statement for statement, bound in recorded if not bound] == []


def test_expiry_is_recorded_by_the_purge_job_and_can_be_undone(alice_key: Persona) -> None:
    access = via(alice_key)
    memory = write(access, "a passing thought", ttl_ms=60_000)
    db().execute(
        "UPDATE graph_observation SET expires_at = ? WHERE id = ?", (stored_time(timezone.now()), int(memory[4:]))
    )
    assert services.purge_expired() == 1
    expired = versions(access, memory)[0]
    assert (expired["action"], expired["surface"], expired["after"]) == ("expire", "system", None)
    restored = perform(access, operations.RESTORE, id=memory)
    # It comes back without the expiry that already passed.
    assert restored["state"]["expiresAt"] is None
    assert restored["state"]["text"] == "a passing thought"


def test_an_import_records_surface_import(alice_key: Persona) -> None:
    services.import_graph(
        namespace=ALICE,
        entities=[{"name": "Imported", "entityType": "thing", "observations": ["from a file"]}],
        relations=[],
    )
    found = perform(via(alice_key), "entity_history", namespace=ALICE, name="Imported")
    assert {(v["surface"], v["operation"]) for v in found["versions"]} == {("import", "import_graph")}


# --- update in place -------------------------------------------------------------------------------


def test_update_keeps_the_id_and_the_keyword_index_follows(alice_key: Persona) -> None:
    access = via(alice_key)
    memory = write(access, "the meeting is on Tuesday")
    perform(access, operations.UPDATE, id=memory, text="the meeting moved to Thursday")
    found = perform(access, operations.SEARCH, namespace=ALICE, query="Thursday", mode="keyword")
    assert [hit["id"] for hit in found["results"]] == [memory]
    gone = perform(access, operations.SEARCH, namespace=ALICE, query="Tuesday", mode="keyword")
    assert gone["results"] == []


def test_update_drops_the_old_vector_and_embeds_the_new_text(alice_key: Persona) -> None:
    access = via(alice_key)
    memory = write(access, "my favourite fruit is the mango")

    def vector() -> bytes | None:
        row = (
            db()
            .execute(
                "SELECT vector FROM vectors_embedding WHERE owner_kind = 'observation' AND owner_id = ?",
                (int(memory[4:]),),
            )
            .fetchone()
        )
        return row[0] if row else None

    backlog.drain()  # the drainer a server runs: the text has its vector
    old = vector()
    assert old is not None
    perform(access, operations.UPDATE, id=memory, text="the train to Lyon leaves at 7:42 from platform 3")
    # The old vector is gone (a new one is there, or queued behind the write); a search by
    # meaning finds the new text in the very next call either way.
    assert vector() != old
    found = perform(access, operations.SEARCH, namespace=ALICE, query="when does the Lyon train depart", mode="vector")
    assert found["results"][0]["id"] == memory


def test_bad_updates_are_refused_and_change_nothing(alice_key: Persona, bob_key: Persona) -> None:
    access = via(alice_key)
    memory = write(access, "keep me")
    seed_graph(access)
    before = version_count()
    with pytest.raises(InvalidArgument) as empty:
        perform(access, operations.UPDATE, id=memory, text="   ")
    assert empty.value.details["field"] == "text"
    with pytest.raises(InvalidArgument) as oversized:
        perform(access, operations.UPDATE, id=memory, text="x" * 70_000)
    assert oversized.value.message.startswith("text is 70000 bytes")
    with pytest.raises(NotFound):
        perform(access, operations.UPDATE, id="mem_999999", text="new")
    with pytest.raises(InvalidArgument):
        perform(access, operations.UPDATE, id="ent_1", text="new")
    with pytest.raises(NotFound):  # bob cannot write Alice's namespace: her memory is "not found"
        perform(via(bob_key), operations.UPDATE, id=memory, text="bob was here")
    with pytest.raises(Conflict):  # Ada has this text already
        perform(access, operations.UPDATE, id=obs_id(ALICE, "Ada", "born 1815"), text="wrote the first program")
    assert version_count() == before
    assert perform(access, operations.GET, id=memory)["text"] == "keep me"


# --- restore ---------------------------------------------------------------------------------------


def test_a_deleted_memory_comes_back_with_its_id_and_fields(alice_key: Persona) -> None:
    access = via(alice_key)
    memory = write(access, "remember the milk", actor_id="u1", tags=["shopping"])
    perform(access, operations.DELETE, id=memory)
    assert perform(access, operations.GET, id=memory) is None
    restored = perform(via(alice_key, "rest"), operations.RESTORE, id=memory)
    assert restored["id"] == memory
    assert restored["restoredFrom"] == 2
    assert restored["version"] == 3
    got = perform(access, operations.GET, id=memory)
    assert (got["text"], got["actorId"], got["tags"]) == ("remember the milk", "u1", ["shopping"])
    last = versions(access, memory)[0]
    assert (last["action"], last["surface"], last["before"]) == ("restore", "rest", None)
    found = perform(access, operations.SEARCH, namespace=ALICE, query="milk", mode="keyword")
    assert [hit["id"] for hit in found["results"]] == [memory]


def test_a_live_memory_restored_to_an_older_version(alice_key: Persona) -> None:
    access = via(alice_key)
    memory = write(access, "version one")
    perform(access, operations.UPDATE, id=memory, text="version two")
    perform(access, operations.UPDATE, id=memory, text="version three")
    restored = perform(access, operations.RESTORE, id=memory, version=1)
    assert restored["restoredFrom"] == 1
    assert restored["version"] == 4
    assert perform(access, operations.GET, id=memory)["text"] == "version one"
    change = versions(access, memory)[0]
    assert (change["action"], change["before"]["text"], change["after"]["text"]) == (
        "restore",
        "version three",
        "version one",
    )


def test_a_renamed_entity_restored_to_its_first_version_gets_its_name_back(alice_key: Persona) -> None:
    access = via(alice_key)
    seed_graph(access)
    ada = ent_id(ALICE, "Ada")
    perform(access, "rename_entity", namespace=ALICE, name="Ada", new_name="Ada Lovelace")
    restored = perform(access, operations.RESTORE, id=ada, version=1)
    assert restored["state"] == {"name": "Ada", "entityType": "person"}
    assert perform(access, "get_entity", namespace=ALICE, name="Ada")["observations"] == [
        "wrote the first program",
        "born 1815",
    ]
    assert [v["action"] for v in versions(access, ada)] == ["restore", "rename", "create"]


def test_a_deleted_entity_comes_back_with_what_the_same_call_deleted(alice_key: Persona) -> None:
    access = via(alice_key)
    seed_graph(access)
    before = graph_of(access)
    ada = ent_id(ALICE, "Ada")
    perform(access, "delete_entities", namespace=ALICE, entity_names=["Ada"])
    assert [e["name"] for e in graph_of(access)["entities"]] == ["Babbage"]
    restored = perform(access, operations.RESTORE, id=ada)
    assert restored["id"] == ada
    assert restored["kind"] == "entity"
    assert len(restored["alsoRestored"]) == 4  # two observations, two relations
    assert graph_of(access) == before
    stats = perform(access, "graph_stats", namespace=ALICE)
    assert (stats["entities"], stats["observations"], stats["relations"]) == (2, 3, 2)
    found = perform(access, "search_nodes", namespace=ALICE, query="program")
    assert [e["name"] for e in found["entities"]] == ["Ada"]


def test_a_deleted_entity_keeps_relations_whose_other_end_is_gone_out(alice_key: Persona) -> None:
    access = via(alice_key)
    seed_graph(access)
    ada = ent_id(ALICE, "Ada")
    perform(access, "delete_entities", namespace=ALICE, entity_names=["Ada"])
    perform(access, "delete_entities", namespace=ALICE, entity_names=["Babbage"])
    restored = perform(access, operations.RESTORE, id=ada)
    assert len(restored["alsoRestored"]) == 2  # its observations; Babbage is still gone
    assert graph_of(access)["relations"] == []


def test_an_observation_whose_entity_is_gone_brings_the_entity_back(alice_key: Persona) -> None:
    access = via(alice_key)
    seed_graph(access)
    fact = obs_id(ALICE, "Ada", "born 1815")
    ada = ent_id(ALICE, "Ada")
    perform(access, "delete_entities", namespace=ALICE, entity_names=["Ada"])
    restored = perform(access, operations.RESTORE, id=fact)
    assert restored["alsoRestored"] == [ada]
    entity = perform(access, "get_entity", namespace=ALICE, name="Ada")
    assert entity["observations"] == ["born 1815"]


def test_restoring_into_a_taken_name_is_refused_and_changes_nothing(alice_key: Persona) -> None:
    access = via(alice_key)
    seed_graph(access)
    fact = obs_id(ALICE, "Ada", "born 1815")
    ada = ent_id(ALICE, "Ada")
    perform(access, "delete_entities", namespace=ALICE, entity_names=["Ada"])
    perform(access, "create_entities", namespace=ALICE, entities=[{"name": "Ada", "entityType": "ship"}])
    before, count = graph_of(access), version_count()
    for wire_id in (ada, fact):
        with pytest.raises(Conflict) as refused:
            perform(access, operations.RESTORE, id=wire_id)
        assert "Ada" in refused.value.message
    assert graph_of(access) == before
    assert version_count() == count


def test_deletes_through_the_official_tools_are_restorable(alice_key: Persona) -> None:
    access = via(alice_key)
    seed_graph(access)
    before = graph_of(access)
    fact = obs_id(ALICE, "Ada", "born 1815")
    relation = rel_ids(ALICE)[0]
    assert perform(
        access, "delete_observations", namespace=ALICE, deletions=[{"entityName": "Ada", "observations": ["born 1815"]}]
    ) == {"success": True, "message": "Observations deleted successfully", "deleted": 1}
    perform(
        access,
        "delete_relations",
        namespace=ALICE,
        relations=[{"from": "Ada", "to": "Babbage", "relationType": "worked with"}],
    )
    perform(access, operations.RESTORE, id=fact)
    perform(access, operations.RESTORE, id=relation)
    after = graph_of(access)
    # Same content; read_graph lists an entity's observations in id order, so the order is kept too.
    assert after == before


def test_restore_errors_change_nothing(alice_key: Persona) -> None:
    access = via(alice_key)
    memory = write(access, "still here")
    gone = write(access, "deleted")
    perform(access, operations.DELETE, id=gone)
    count = version_count()
    with pytest.raises(NotFound):
        perform(access, operations.RESTORE, id="mem_999999")
    with pytest.raises(NotFound) as no_version:
        perform(access, operations.RESTORE, id=gone, version=7)
    assert "versions are 1 to 2" in no_version.value.message
    with pytest.raises(InvalidArgument) as live:
        perform(access, operations.RESTORE, id=memory)
    assert live.value.details["field"] == "version"
    with pytest.raises(InvalidArgument):
        perform(access, operations.RESTORE, id=memory, version=0)
    with pytest.raises(InvalidArgument):
        perform(access, operations.RESTORE, id="memory-12")
    assert version_count() == count
    # A mention keeps a count, not the memory's fields: it is no state to go back to.
    note_mentions(
        db().execute("SELECT namespace_id FROM graph_observation WHERE id = ?", (int(memory[4:]),)).fetchone()[0],
        {int(memory[4:]): 1},
    )
    with pytest.raises(InvalidArgument) as mention:
        perform(access, operations.RESTORE, id=memory, version=2)
    assert "mention" in mention.value.message
    assert perform(access, operations.GET, id=memory)["text"] == "still here"


# --- two tenants -----------------------------------------------------------------------------------


def test_keys_do_not_see_or_restore_each_others_history(
    alice_key: Persona, bob_key: Persona, carol_key: Persona
) -> None:
    alice, bob, carol = via(alice_key), via(bob_key), via(carol_key)
    secret = write(alice, "the vault code is 4417")
    perform(alice, operations.UPDATE, id=secret, text="the vault code is 9000")
    seed_graph(alice)
    ada = ent_id(ALICE, "Ada")
    perform(alice, "delete_entities", namespace=ALICE, entity_names=["Ada"])
    perform(alice, operations.DELETE, id=secret)
    count = version_count()

    for wire_id in (secret, ada):
        with pytest.raises(NotFound):
            perform(bob, operations.HISTORY, id=wire_id)
        for caller in (bob, carol):  # carol may read Alice's namespace, not restore in it
            with pytest.raises(NotFound):
                perform(caller, operations.RESTORE, id=wire_id)
    with pytest.raises(NamespaceForbidden, match="no read grant"):
        perform(bob, "entity_history", namespace=ALICE, name="Ada")
    with pytest.raises(EntityNotFound):  # Bob's own namespace holds no Ada
        perform(bob, "entity_history", name="Ada")
    # Carol reads the history (a read grant is enough).
    assert [v["action"] for v in versions(carol, secret)] == ["delete", "update", "create"]
    assert version_count() == count


# --- purge and retention ---------------------------------------------------------------------------


def test_purge_removes_the_memory_and_all_its_versions(alice_key: Persona, bob_key: Persona) -> None:
    access = via(alice_key)
    memory = write(access, "my phone number is 555-0100")
    perform(access, operations.UPDATE, id=memory, text="my phone number is 555-0199")
    kept = write(access, "an unrelated memory")
    assert perform(access, operations.DELETE, id=memory, purge=True) == {"deleted": True, "id": memory}
    assert db().execute("SELECT count(*) FROM graph_version WHERE object_id = ?", (int(memory[4:]),)).fetchone()[0] == 0
    with pytest.raises(NotFound):
        perform(access, operations.HISTORY, id=memory)
    with pytest.raises(NotFound):
        perform(access, operations.RESTORE, id=memory)
    assert len(versions(access, kept)) == 1

    # A memory deleted earlier can be purged afterwards; Bob cannot purge Alice's.
    earlier = write(access, "deleted first, erased later")
    perform(access, operations.DELETE, id=earlier)
    assert perform(via(bob_key), operations.DELETE, id=earlier, purge=True)["deleted"] is False
    assert len(versions(access, earlier)) == 2
    assert perform(access, operations.DELETE, id=earlier, purge=True)["deleted"] is True
    with pytest.raises(NotFound):
        perform(access, operations.HISTORY, id=earlier)
    with pytest.raises(InvalidArgument):
        perform(access, operations.DELETE, id=kept, purge="yes")


def _age(wire_id: str, days: int) -> None:
    kind, object_id = history.parse_id(wire_id)
    db().execute(
        "UPDATE graph_version SET changed_at = ? WHERE kind = ? AND object_id = ?",
        (stored_time(timezone.now() - timedelta(days=days)), kind, object_id),
    )


@override_settings(MEMORYHUB_HISTORY_RETENTION_DAYS=30)
def test_the_retention_job_purges_only_what_was_removed_long_ago(alice_key: Persona) -> None:
    access = via(alice_key)
    old_delete = write(access, "deleted long ago")
    recent_delete = write(access, "deleted yesterday")
    live_old = write(access, "written long ago, still here")
    for memory in (old_delete, recent_delete):
        perform(access, operations.DELETE, id=memory)
    _age(old_delete, 31)
    _age(recent_delete, 1)
    _age(live_old, 400)

    with pytest.raises(RetentionPassed):
        perform(access, operations.RESTORE, id=old_delete)
    from graph.tasks import purge_history_task

    assert purge_history_task.run() == {"purgedVersions": 2}
    with pytest.raises(NotFound):
        perform(access, operations.HISTORY, id=old_delete)
    assert len(versions(access, recent_delete)) == 2
    assert len(versions(access, live_old)) == 1
    perform(access, operations.RESTORE, id=recent_delete)
    assert perform(access, operations.GET, id=recent_delete)["text"] == "deleted yesterday"
