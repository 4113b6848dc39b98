"""The memory operations as the runner declares them: what each reaches and needs, the scoped
delete behind the MemOS and MCP user scopes, `check` for orchestrations, the commit signal, and
listings narrowed by the graph's filter description (what the MemOS `filter` becomes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.dispatch import receiver

from access import operations as runner
from access.exceptions import NamespaceForbidden
from access.operations import Reach, perform
from access.permissions import Permission
from access.signals import operation_applied
from graph import observations
from graph.sql import db
from memory import operations
from memory.services import NewMemory
from tests.conftest import ALICE
from tests.memory import helpers as memories

pytestmark = pytest.mark.django_db


def test_each_memory_operation_is_declared_with_its_reach_and_permission() -> None:
    declared = runner.declared()
    expected = {
        operations.WRITE: (Reach.NAMESPACE, Permission.WRITE, "memories"),
        operations.CLEAR: (Reach.NAMESPACE, Permission.WRITE, "memories"),
        operations.DELETE: (Reach.NAMESPACES, Permission.WRITE, "memories"),
        operations.SEARCH: (Reach.NAMESPACES, Permission.READ, None),
        operations.LIST: (Reach.NAMESPACES, Permission.READ, None),
        operations.GET: (Reach.NAMESPACES, Permission.READ, None),
    }
    for name, (reach, permission, changes) in expected.items():
        operation = declared[name]
        assert (operation.reach, operation.permission, operation.changes) == (reach, permission, changes), name


def test_a_scoped_delete_reaches_only_that_actors_memories(alice_key) -> None:
    access = alice_key.key.to_access()
    mine = memories.write_memory(access, namespace=ALICE, text="u1 likes tea", actor_id="u1")
    theirs = memories.write_memory(access, namespace=ALICE, text="u2 likes coffee", actor_id="u2")
    elsewhere = memories.write_memory(access, namespace="org:alice:other", text="u1 elsewhere", actor_id="u1")

    def delete(memory_id: str) -> bool:
        outcome = perform(access, operations.DELETE, namespace=[ALICE], actor_in={ALICE: "u1"}, id=memory_id)
        return bool(outcome["deleted"])

    assert delete(theirs["id"]) is False  # another user's memory
    assert delete(elsewhere["id"]) is False  # outside the namespaces reached
    assert delete(mine["id"]) is True
    assert memories.delete_memory(access, id=theirs["id"]) == {"deleted": True, "id": theirs["id"]}


def test_a_delete_outside_the_reach_answers_like_an_unknown_id(alice_key, bob_key, carol_key) -> None:
    kept = memories.write_memory(alice_key.key.to_access(), namespace=ALICE, text="alice's note")
    unknown = "mem_999999"
    for persona in (bob_key, carol_key):  # no grant, and a read grant only
        access = persona.key.to_access()
        assert memories.delete_memory(access, id=kept["id"]) == {"deleted": False, "id": kept["id"]}
        assert memories.delete_memory(access, id=unknown) == {"deleted": False, "id": unknown}
    with pytest.raises(NamespaceForbidden):  # a namespace named explicitly must be writable
        perform(carol_key.key.to_access(), operations.DELETE, namespace=ALICE, id=kept["id"])
    assert perform(carol_key.key.to_access(), operations.GET, id=kept["id"])["text"] == "alice's note"


def test_check_refuses_as_perform_would_and_does_nothing_else(alice_key, carol_key) -> None:
    runner.check(alice_key.key.to_access(), operations.WRITE, namespace=ALICE)
    with pytest.raises(NamespaceForbidden):
        runner.check(carol_key.key.to_access(), operations.WRITE, namespace=ALICE)
    with pytest.raises(NamespaceForbidden):
        runner.check(carol_key.key.to_access(), operations.DELETE, namespace=[ALICE])
    assert runner.allowed(alice_key.key.to_access(), operations.WRITE, namespace=ALICE)
    assert not runner.allowed(carol_key.key.to_access(), operations.WRITE, namespace=ALICE)
    assert db().execute("SELECT count(*) FROM graph_namespace WHERE name = ?", (ALICE,)).fetchone()[0] == 0


def test_a_committed_write_is_announced_as_a_change_of_memories(alice_key, django_capture_on_commit_callbacks):
    seen: list[tuple[str, str | None, str | None]] = []

    @receiver(operation_applied, weak=False)
    def record(sender, operation, namespace, changes, **kwargs) -> None:
        seen.append((operation, namespace, changes))

    try:
        access = alice_key.key.to_access()
        with django_capture_on_commit_callbacks(execute=True):
            written = memories.write_memory(access, namespace=None, text="announced")
            memories.delete_memory(access, id=written["id"])
    finally:
        operation_applied.disconnect(record)
    assert seen == [(operations.WRITE, ALICE, "memories"), (operations.DELETE, None, "memories")]


def test_listings_are_narrowed_by_the_graphs_filter_description(alice_key) -> None:
    access = alice_key.key.to_access()
    memories.write_memories(
        access,
        namespace=ALICE,
        memories=[
            NewMemory(text="one", actor_id="u1", tags=("a", "b")),
            NewMemory(text="two", actor_id="u2", tags=("a",)),
            NewMemory(text="three", actor_id="u1", tags=("c",)),
        ],
    )
    memories.write_memory(access, namespace="org:alice:other", text="four", actor_id="u1", tags=["a"])

    def listed(where: observations.Where, namespace: list[str] | None = None) -> list[str]:
        page = perform(access, operations.LIST, namespace=namespace, limit=10, where=where)
        return [memory["text"] for memory in page["memories"]]

    assert listed(observations.Test("tags", "all", ("a", "b"))) == ["one"]
    assert listed(observations.Test("tags", "any", ("b", "c"))) == ["three", "one"]
    assert listed(observations.Test("actor", "in", ("u1",)), namespace=[ALICE]) == ["three", "one"]
    assert listed(observations.Test("namespace", "in", ("org:alice:other", "not a name", "org:nobody"))) == ["four"]
    either = observations.AnyOf((observations.Test("actor", "in", ("u2",)), observations.Test("tags", "all", ("c",))))
    assert listed(observations.AllOf((either, observations.Test("tags", "any", ("a", "c"))))) == ["three", "two"]
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert listed(observations.Test("created_at", "gt", (later,))) == []
    assert len(listed(observations.Test("created_at", "lt", (later,)))) == 4
    assert listed(False) == []
    assert len(listed(True)) == 4
