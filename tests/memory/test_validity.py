"""Free memories in time, through the runner on a real SQLite database: current facts by default in
search (both sides: the ANN filter and the keyword condition), list and dedupe; asOf and
includeExpired; a past fact found by id, marked; supersede (scoping, conflicts, two threads at
once); update refuses a past fact; restore brings a version's validity back and refuses to reopen
a superseded memory."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from access.operations import perform
from access.permissions import Access
from graph import observations, validity
from graph.exceptions import Conflict, NotFound
from kernel.errors import InvalidArgument
from memory import operations
from memory.services import NewMemory
from memory.wire import parse_memory_id
from tests.conftest import ALICE
from tests.memory import helpers as memories
from vectors import backlog

pytestmark = pytest.mark.django_db

PAST = "2024-01-15T00:00:00Z"


def _write(access: Access, text: str, **options: Any) -> dict[str, Any]:
    (written,) = perform(access, operations.WRITE, namespace=ALICE, memories=[NewMemory(text=text, **options)])
    return dict(written)


def _search(access: Access, query: str, **options: Any) -> list[str]:
    backlog.drain()
    found = memories.search_memories(access, namespace=[ALICE], query=query, **options)
    return [hit["id"] for hit in found["results"]]


@pytest.fixture
def alice(alice_key: Any) -> Access:
    access: Access = alice_key.key.to_access()
    return access


def test_a_superseded_memory_leaves_every_current_read(alice: Access) -> None:
    old = _write(alice, "Dana's team lead is Priya", valid_from=PAST)["id"]
    done = perform(alice, operations.SUPERSEDE, id=old, text="Dana's team lead is Marco")
    new = done["id"]
    for mode in ("hybrid", "vector", "keyword"):
        assert _search(alice, "Dana team lead", mode=mode) == [new], mode
        assert _search(alice, "Dana team lead", mode=mode, as_of="2024-06-01") == [old], mode
        assert sorted(_search(alice, "Dana team lead", mode=mode, include_expired=True)) == sorted([old, new]), mode

    listed = perform(alice, operations.LIST, namespace=[ALICE], limit=10)
    assert [memory["id"] for memory in listed["memories"]] == [new]
    assert listed["total"] == 1
    then = perform(alice, operations.LIST, namespace=[ALICE], limit=10, as_of="2024-06-01T00:00:00Z")
    assert [memory["id"] for memory in then["memories"]] == [old]
    every = perform(alice, operations.LIST, namespace=[ALICE], limit=10, include_expired=True)
    assert {memory["id"]: memory["current"] for memory in every["memories"]} == {old: False, new: True}

    past = perform(alice, operations.GET, namespace=[ALICE], id=old)
    assert past is not None
    assert (past["current"], past["supersededBy"], past["validFrom"]) == (False, new, PAST)
    assert past["validTo"] == done["validFrom"]
    current = perform(alice, operations.GET, namespace=[ALICE], id=new)
    assert current is not None
    assert (current["current"], current["supersedes"], current["validTo"]) == (True, old, None)


def test_a_repeat_is_folded_into_a_current_memory_only(alice: Access) -> None:
    first = _write(alice, "the printer is on floor 2")["id"]
    perform(alice, operations.SUPERSEDE, id=first, text="the printer is on floor 3")
    again = _write(alice, "the printer is on floor 2")
    assert again["duplicateOf"] is None
    assert again["id"] != first
    # A past fact written with its end is stored as is, even beside the same current text.
    closed = _write(alice, "the printer is on floor 2", valid_from="2020-01-01", valid_to="2021-01-01")
    assert closed["duplicateOf"] is None
    assert closed["validTo"] == "2021-01-01T00:00:00Z"


def test_a_future_fact_is_not_current_yet(alice: Access) -> None:
    _write(alice, "the office moves to Lisbon", valid_from="2999-01-01")
    assert _search(alice, "office Lisbon") == []
    assert len(_search(alice, "office Lisbon", as_of="2999-06-01")) == 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"valid_from": "tomorrow"}, "validFrom"),
        ({"valid_from": 12}, "validFrom"),
        ({"valid_to": "2025-13-01"}, "validTo"),
        ({"valid_from": "2025-02-01", "valid_to": "2025-01-01"}, "validTo"),
        ({"valid_from": "2025-02-01", "valid_to": "2025-02-01"}, "validTo"),
    ],
)
def test_bad_validity_is_refused_naming_the_field(alice: Access, options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        _write(alice, "x", **options)
    assert refused.value.details["field"] == field
    assert perform(alice, operations.LIST, namespace=[ALICE], limit=10, include_expired=True)["total"] == 0


def test_bad_read_times_are_refused_naming_the_field(alice: Access) -> None:
    with pytest.raises(InvalidArgument) as refused:
        memories.search_memories(alice, namespace=[ALICE], query="x", as_of="last week")
    assert refused.value.details["field"] == "asOf"
    with pytest.raises(InvalidArgument) as refused:
        perform(alice, operations.LIST, namespace=[ALICE], limit=10, include_expired="yes")
    assert refused.value.details["field"] == "includeExpired"


def test_supersede_reaches_only_what_an_update_would(alice: Access, bob_key: Any) -> None:
    bob = bob_key.key.to_access()
    mine = _write(alice, "u1 sits at desk 4B", actor_id="u1")["id"]
    unknown = "mem_999999999"
    for access, options in ((bob, {}), (alice, {"namespace": [ALICE], "actor_in": {ALICE: "u2"}})):
        for ident in (mine, unknown):
            with pytest.raises(NotFound) as missing:
                perform(access, operations.SUPERSEDE, id=ident, text="desk 5C", **options)
            assert str(missing.value) == f"no memory {ident}"
    done = perform(alice, operations.SUPERSEDE, namespace=[ALICE], actor_in={ALICE: "u1"}, id=mine, text="desk 5C")
    new = perform(alice, operations.GET, namespace=[ALICE], id=done["id"])
    assert new is not None
    assert new["actorId"] == "u1"
    with pytest.raises(Conflict, match=f"already superseded by {done['id']}"):
        perform(alice, operations.SUPERSEDE, id=mine, text="desk 6D")
    with pytest.raises(InvalidArgument):
        perform(alice, operations.SUPERSEDE, id="ent_4", text="x")


def test_update_refuses_a_past_fact_and_restore_keeps_validity(alice: Access) -> None:
    old = _write(alice, "the standup is at 9:30", valid_from=PAST)["id"]
    new = perform(alice, operations.SUPERSEDE, id=old, text="the standup is at 10:00")["id"]
    with pytest.raises(Conflict, match=f"past fact \\(superseded by {new}\\)"):
        perform(alice, operations.UPDATE, id=old, text="the standup was at 9:45")

    versions = perform(alice, operations.HISTORY, id=old)["versions"]
    assert [version["action"] for version in versions] == ["close", "create"]
    close = versions[0]
    assert close["before"]["validTo"] is None
    assert close["after"]["validTo"] is not None
    assert close["after"]["validFrom"] == PAST
    # To the version where it was current: refused while its successor stands.
    with pytest.raises(Conflict, match=new):
        perform(alice, operations.RESTORE, id=old, version=1)
    # To the closed version: it stays closed.
    restored = perform(alice, operations.RESTORE, id=old, version=2)
    assert restored["state"]["validTo"] == close["after"]["validTo"]

    # Deleted and brought back: closed as it was, its successor still linked.
    assert memories.delete_memory(alice, id=old)["deleted"] is True
    back = perform(alice, operations.RESTORE, id=old)
    assert back["state"]["validTo"] == close["after"]["validTo"]
    shown = perform(alice, operations.GET, namespace=[ALICE], id=old)
    assert shown is not None
    assert (shown["current"], shown["supersededBy"]) == (False, new)
    assert _search(alice, "standup") == [new]


def test_restore_reopens_a_closed_memory_without_a_successor(alice: Access) -> None:
    ident = _write(alice, "the VPN needs a token")["id"]
    validity.close(validity.OBSERVATIONS, [parse_memory_id(ident)])  # as an extracted INVALIDATE does
    assert _search(alice, "VPN token") == []
    perform(alice, operations.RESTORE, id=ident, version=1)
    assert _search(alice, "VPN token") == [ident]
    shown = perform(alice, operations.GET, namespace=[ALICE], id=ident)
    assert shown is not None
    assert (shown["current"], shown["validTo"]) == (True, None)


@pytest.mark.django_db(transaction=True)
def test_two_threads_superseding_one_memory_leave_one_successor(alice_key: Any) -> None:
    alice = alice_key.key.to_access()
    old = _write(alice, "the on-call engineer is Sam")["id"]
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def supersede(index: int, text: str) -> None:
        try:
            barrier.wait()
            outcomes[index] = perform(alice, operations.SUPERSEDE, id=old, text=text)
        except Conflict as error:
            outcomes[index] = error
        finally:
            connection.close()  # each thread's own connection

    threads = [
        threading.Thread(target=supersede, args=(0, "the on-call engineer is Jo")),
        threading.Thread(target=supersede, args=(1, "the on-call engineer is Ria")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    lost = [outcome for outcome in outcomes if isinstance(outcome, Conflict)]
    assert (len(won), len(lost)) == (1, 1), outcomes
    assert won[0]["id"] in str(lost[0])
    every = perform(alice, operations.LIST, namespace=[ALICE], limit=10, include_expired=True)["memories"]
    assert [memory["id"] for memory in every if memory["current"]] == [won[0]["id"]]
    assert len(every) == 2


def test_a_superseded_observation_no_longer_lifts_its_entity(alice: Access) -> None:
    perform(
        alice,
        "create_entities",
        namespace=ALICE,
        entities=[{"name": "Dana", "entityType": "person", "observations": ["works in card refunds"]}],
    )
    backlog.drain()

    def score(query: str) -> float:
        found = perform(alice, "vector_search_entities", namespace=ALICE, query=query)
        return max((hit["score"] for hit in found["results"] if hit["entityName"] == "Dana"), default=0.0)

    before = score("card refunds")
    (hit,) = memories.search_memories(alice, namespace=[ALICE], query="card refunds")["results"]
    assert hit["entityName"] == "Dana"
    (row,) = observations.rows([parse_memory_id(hit["id"])]).values()
    # The store primitive an observation's supersession uses (the graph tools call it).
    validity.supersede(row.id, "works on the garden shed", namespace_ids=[row.namespace_id])
    backlog.drain()
    assert score("card refunds") < before
    (now,) = memories.search_memories(alice, namespace=[ALICE], query="card refunds")["results"]
    assert (now["text"], now["supersedes"]) == ("works on the garden shed", hit["id"])
