"""Facts in time on the graph: current reads by default, asOf and includeExpired on the five
reads, supersede_observation, functional relation types (declare_relation_type), merge/restore
with closed rows, and export/import keeping validity and lineage.

The clock is moved by hand (django.utils.timezone.now, which every stored time comes from), so
each period of a history has its own time to ask about."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from graph import history, selectors, services
from graph.exceptions import Conflict, InvalidArgument, NotFound

START = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.moment = START
        monkeypatch.setattr(timezone, "now", lambda: self.moment)

    def advance(self, days: int = 1) -> str:
        """Move on; returns an ISO time inside the period that just ended."""
        inside = (self.moment + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        self.moment += timedelta(days=days)
        return inside


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def person(name: str, *observations: str) -> dict[str, Any]:
    return {"name": name, "entityType": "person", "observations": list(observations)}


def works_at(source: str, target: str) -> dict[str, str]:
    return {"from": source, "to": target, "relationType": "works_at"}


def triples(relations: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["from"], r["to"], r["relationType"]) for r in relations]


def seed_history(namespace: str, clock: Clock) -> tuple[str, str, str]:
    """Dana: Acme, then Globex, then Acme again (works_at functional); her city Berlin -> Paris.
    Returns an ISO time inside each of the three periods."""
    services.create_entities(
        namespace=namespace,
        entities=[
            person("Dana", "lives in Berlin"),
            *({"name": n, "entityType": "org", "observations": []} for n in ("Acme", "Globex")),
        ],
    )
    services.create_relations(namespace=namespace, relations=[works_at("Dana", "Acme")])
    first = clock.advance()
    services.declare_relation_type(namespace=namespace, relation_type="works_at", functional=True)
    created = services.create_relations(namespace=namespace, relations=[works_at("Dana", "Globex")])
    assert triples(created["closed"]) == [("Dana", "Acme", "works_at")]
    assert created["closed"][0]["current"] is False
    services.supersede_observation(namespace=namespace, entity_name="Dana", old="lives in Berlin", new="lives in Paris")
    second = clock.advance()
    again = services.create_relations(namespace=namespace, relations=[works_at("Dana", "Acme")])
    assert triples(again["relations"]) == [("Dana", "Acme", "works_at")]
    assert triples(again["closed"]) == [("Dana", "Globex", "works_at")]
    third = clock.advance()
    return first, second, third


def test_current_reads_leave_closed_facts_out_and_asof_answers_each_period(alice: str, clock: Clock) -> None:
    first, second, third = seed_history(alice, clock)

    now = selectors.open_nodes(namespace=alice, names=["Dana"])
    assert now["entities"][0]["observations"] == ["lives in Paris"]
    assert "observationDetails" not in now["entities"][0]
    assert triples(now["relations"]) == [("Dana", "Acme", "works_at")]
    assert set(now["relations"][0]) == {"from", "to", "relationType"}

    for at, employer, city in ((first, "Acme", "Berlin"), (second, "Globex", "Paris"), (third, "Acme", "Paris")):
        page = selectors.open_nodes(namespace=alice, names=["Dana"], as_of=at)
        assert page["entities"][0]["observations"] == [f"lives in {city}"], at
        assert triples(page["relations"]) == [("Dana", employer, "works_at")], at
        assert {"validFrom", "validTo", "current"} <= set(page["relations"][0])
        neighbours = selectors.get_neighbors(namespace=alice, name="Dana", as_of=at)
        assert [e["name"] for e in neighbours["entities"]] == [employer]
        graph = selectors.read_graph(namespace=alice, as_of=at)
        assert triples(graph["relations"]) == [("Dana", employer, "works_at")]
        path = selectors.find_path(namespace=alice, from_="Dana", to="Globex", as_of=at)
        assert path["found"] is (employer == "Globex")

    everything = selectors.open_nodes(namespace=alice, names=["Dana"], include_expired=True)
    assert triples(everything["relations"]) == [
        ("Dana", "Acme", "works_at"),
        ("Dana", "Globex", "works_at"),
        ("Dana", "Acme", "works_at"),
    ]
    assert [r["current"] for r in everything["relations"]] == [False, False, True]
    details = everything["entities"][0]["observationDetails"]
    assert [(d["text"], d["current"]) for d in details] == [("lives in Berlin", False), ("lives in Paris", True)]
    assert details[0]["supersededBy"] == details[1]["id"]
    assert details[1]["supersedes"] == details[0]["id"]
    assert details[0]["validTo"] == details[1]["validFrom"]

    # Current reads: no closed fact anywhere.
    assert selectors.find_path(namespace=alice, from_="Dana", to="Globex")["found"] is False
    assert [e["name"] for e in selectors.get_neighbors(namespace=alice, name="Dana")["entities"]] == ["Acme"]
    assert triples(selectors.read_graph(namespace=alice)["relations"]) == [("Dana", "Acme", "works_at")]
    assert selectors.search_relations(namespace=alice, from_="Dana")["relations"] == [works_at("Dana", "Acme")]
    described = selectors.describe_entity(namespace=alice, name="Dana")
    assert described["outgoing"] == [works_at("Dana", "Acme")]
    assert described["entity"]["observations"] == ["lives in Paris"]
    assert selectors.degree(namespace=alice, name="Dana")["outDegree"] == 1
    assert selectors.graph_stats(namespace=alice)["relations"] == 1
    assert selectors.graph_stats(namespace=alice)["observations"] == 1
    assert selectors.list_relation_types(namespace=alice)["types"] == [
        {"name": "works_at", "count": 1, "functional": True}
    ]
    assert selectors.extract_subgraph(namespace=alice, names=["Dana"])["relations"] == [works_at("Dana", "Acme")]


def test_search_nodes_matches_through_current_observations_only(alice: str, clock: Clock) -> None:
    first, _, _ = seed_history(alice, clock)
    for query in ("Berlin", "🏙"):
        if query == "🏙":
            services.create_entities(namespace=alice, entities=[person("Eve", "likes 🏙 views")])
            services.supersede_observation(namespace=alice, entity_name="Eve", old="likes 🏙 views", new="likes hills")
            assert selectors.search_nodes(namespace=alice, query=query)["entities"] == []
            assert [
                e["name"]
                for e in selectors.search_nodes(namespace=alice, query=query, include_expired=True)["entities"]
            ] == ["Eve"]
            continue
        assert selectors.search_nodes(namespace=alice, query=query)["entities"] == []
        found = selectors.search_nodes(namespace=alice, query=query, as_of=first)
        assert [e["name"] for e in found["entities"]] == ["Dana"]
        assert found["entities"][0]["observations"] == ["lives in Berlin"]
        assert found["entities"][0]["observationDetails"][0]["text"] == "lives in Berlin"
    assert [e["name"] for e in selectors.search_nodes(namespace=alice, query="Paris")["entities"]] == ["Dana"]


def test_bad_asof_and_include_expired_are_refused(alice: str) -> None:
    services.create_entities(namespace=alice, entities=[person("Dana")])
    for call in (
        lambda **kw: selectors.search_nodes(namespace=alice, query="Dana", **kw),
        lambda **kw: selectors.open_nodes(namespace=alice, names=["Dana"], **kw),
        lambda **kw: selectors.read_graph(namespace=alice, **kw),
        lambda **kw: selectors.get_neighbors(namespace=alice, name="Dana", **kw),
        lambda **kw: selectors.find_path(namespace=alice, from_="Dana", to="Dana", **kw),
    ):
        with pytest.raises(InvalidArgument, match="asOf"):
            call(as_of="last tuesday")
        with pytest.raises(InvalidArgument, match="includeExpired"):
            call(include_expired="yes")


def test_supersede_observation_errors(alice: str, bob: str) -> None:
    services.create_entities(namespace=alice, entities=[person("Dana", "team lead is Priya")])
    done = services.supersede_observation(
        namespace=alice, entity_name="Dana", old="team lead is Priya", new="team lead is Marco"
    )
    assert done["id"].startswith("mem_")
    assert done["supersedes"].startswith("mem_")
    assert (done["entityName"], done["old"], done["new"]) == ("Dana", "team lead is Priya", "team lead is Marco")
    with pytest.raises(Conflict, match=done["id"]):
        services.supersede_observation(
            namespace=alice, entity_name="Dana", old="team lead is Priya", new="team lead is Ana"
        )
    with pytest.raises(NotFound):
        services.supersede_observation(namespace=alice, entity_name="Dana", old="never said", new="x")
    with pytest.raises(InvalidArgument):
        services.supersede_observation(
            namespace=alice, entity_name="Dana", old="team lead is Marco", new="team lead is Marco"
        )
    # Another namespace cannot reach it.
    with pytest.raises(Exception, match="Dana"):
        services.supersede_observation(namespace=bob, entity_name="Dana", old="team lead is Marco", new="x")
    # The closed text can be said again: it is a new current fact.
    added = services.add_observations(
        namespace=alice, observations=[{"entityName": "Dana", "contents": ["team lead is Priya"]}]
    )
    assert added["results"][0]["addedObservations"] == ["team lead is Priya"]
    actions = [v.action for v in history.versions(history.OBSERVATION, int(done["supersedes"][4:]), [_ns(alice)])]
    assert "close" in actions


def test_declare_with_duplicates_is_refused_listing_them_unless_close_older(alice: str, clock: Clock) -> None:
    services.create_entities(
        namespace=alice,
        entities=[
            person("Dana"),
            person("Lee"),
            *({"name": n, "entityType": "org", "observations": []} for n in ("Acme", "Globex")),
        ],
    )
    services.create_relations(namespace=alice, relations=[works_at("Dana", "Acme"), works_at("Lee", "Acme")])
    clock.advance()
    services.create_relations(namespace=alice, relations=[works_at("Dana", "Globex")])
    with pytest.raises(InvalidArgument) as refused:
        services.declare_relation_type(namespace=alice, relation_type="works_at", functional=True)
    assert "Dana -works_at-> Acme" in str(refused.value)
    assert "Dana -works_at-> Globex" in str(refused.value)
    assert "closeOlder" in str(refused.value)
    assert selectors.list_relation_types(namespace=alice)["types"] == [{"name": "works_at", "count": 3}]

    declared = services.declare_relation_type(
        namespace=alice, relation_type="works_at", functional=True, close_older=True
    )
    assert declared["functional"] is True
    assert triples(declared["closed"]) == [("Dana", "Acme", "works_at")]
    assert triples(selectors.read_graph(namespace=alice)["relations"]) == [
        ("Lee", "Acme", "works_at"),
        ("Dana", "Globex", "works_at"),
    ]
    # Off again: relations of the type no longer replace each other.
    services.declare_relation_type(namespace=alice, relation_type="works_at", functional=False)
    created = services.create_relations(namespace=alice, relations=[works_at("Dana", "Acme")])
    assert "closed" not in created
    assert len(selectors.search_relations(namespace=alice, from_="Dana")["relations"]) == 2


def test_functional_in_one_call_and_per_namespace(alice: str, bob: str) -> None:
    for namespace in (alice, bob):
        services.create_entities(
            namespace=namespace,
            entities=[
                person("Dana"),
                *({"name": n, "entityType": "org", "observations": []} for n in ("Acme", "Globex")),
            ],
        )
    services.declare_relation_type(namespace=alice, relation_type="works_at", functional=True)
    created = services.create_relations(
        namespace=alice, relations=[works_at("Dana", "Acme"), works_at("Dana", "Globex")]
    )
    assert triples(created["relations"]) == [("Dana", "Globex", "works_at")]
    assert created["skipped"][0]["relation"] == works_at("Dana", "Acme")
    # Bob's works_at is not functional.
    both = services.create_relations(namespace=bob, relations=[works_at("Dana", "Acme"), works_at("Dana", "Globex")])
    assert len(both["relations"]) == 2
    assert "closed" not in both


def test_merge_and_restore_consider_current_edges_only(alice: str, clock: Clock) -> None:
    seed_history(alice, clock)
    services.create_entities(namespace=alice, entities=[person("D2", "lives in Berlin")])
    services.create_relations(namespace=alice, relations=[works_at("D2", "Globex")])
    merged = services.merge_entities(namespace=alice, source="D2", target="Dana")
    # D2's current Globex edge does not duplicate Dana's closed one: it moves. (works_at is
    # functional, but a merge moves edges as they are.)
    assert merged["movedRelations"] == 1
    assert merged["droppedRelations"] == 0
    # D2's "lives in Berlin" is current; Dana's is closed: it moves too.
    assert merged["movedObservations"] == 1
    everything = selectors.open_nodes(namespace=alice, names=["Dana"], include_expired=True)
    assert len(everything["relations"]) == 4

    # A deleted closed relation comes back closed.
    closed_edge = next(r for r in everything["relations"] if not r["current"] and r["to"] == "Globex")
    services.delete_relations(namespace=alice, relations=[works_at("Dana", "Globex")])
    deleted = [
        v
        for v in history.entity_history(namespace=alice, name="Dana")["versions"]
        if v["kind"] == "relation" and v["action"] == "delete"
    ]
    assert deleted
    for version in deleted:
        if version["before"]["validTo"] is not None:
            services.restore(namespace_ids=[_ns(alice)], kind=history.RELATION, object_id=int(version["id"][4:]))
    back = selectors.open_nodes(namespace=alice, names=["Dana"], include_expired=True)
    restored = [r for r in back["relations"] if r["to"] == "Globex" and not r["current"]]
    assert restored
    assert restored[0]["validTo"] == closed_edge["validTo"]


def _ns(namespace: str) -> int:
    from access import namespaces

    found = namespaces.lookup(namespace)
    assert found is not None
    return found


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    extra = ["--no-progress"] if command == "import_memory" else []
    call_command(command, *args, *extra, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_export_import_round_trip_keeps_validity_and_lineage(alice: str, bob: str, clock: Clock, tmp_path) -> None:
    first, second, _ = seed_history(alice, clock)
    exported = run("export_memory", "--namespace", alice)
    lines = [json.loads(line) for line in exported.splitlines()]
    dana = next(line for line in lines if line.get("name") == "Dana")
    assert dana["observations"] == ["lives in Paris"]
    assert [d["text"] for d in dana["observationDetails"]] == ["lives in Berlin", "lives in Paris"]
    assert [line.get("validTo") is None for line in lines if line["type"] == "relation"] == [False, False, True]

    path = tmp_path / "dana.jsonl"
    path.write_text(exported, encoding="utf-8")
    run("import_memory", str(path), "--namespace", bob)
    for at in (first, second, None):
        assert _view(alice, at) == _view(bob, at)
    back = selectors.open_nodes(namespace=bob, names=["Dana"], include_expired=True)["entities"][0][
        "observationDetails"
    ]
    assert back[1]["supersedes"] == back[0]["id"]
    assert back[0]["supersededBy"] == back[1]["id"]
    # Idempotent, and it exports the same again.
    second_run = run("import_memory", str(path), "--namespace", bob)
    assert "0 entities created, 0 observations added, 0 relations created" in second_run
    again = [json.loads(line) for line in run("export_memory", "--namespace", bob).splitlines()]
    assert [_without_ids(line) for line in again] == [_without_ids(line) for line in lines]
    # JSON too.
    document = json.loads(selectors.export_graph(namespace=alice, format="json")["content"])
    assert "observationDetails" in document["entities"][0]


def test_free_memories_round_trip_with_validity_and_lineage(alice: str, bob: str, clock: Clock, tmp_path) -> None:
    # Free memories are written and superseded through the memory layer, as every surface does.
    from graph import validity
    from graph.sql import db
    from memory.services import NewMemory, write_memories

    [priya, _] = write_memories(
        namespace=alice,
        memories=[
            NewMemory(text="Dana's team lead is Priya", actor_id="u1", tags=["team"]),
            NewMemory(text="Dana lived in Rome", valid_from="2019-01-01T00:00:00Z", valid_to="2021-06-30T00:00:00Z"),
        ],
    )
    clock.advance()
    priya_id = int(priya["id"].removeprefix("mem_"))
    ns_id = db().execute("SELECT namespace_id FROM graph_observation WHERE id = ?", (priya_id,)).fetchone()[0]
    validity.supersede(priya_id, "Dana's team lead is Marco", namespace_ids=[ns_id], free_only=True)

    exported = run("export_memory", "--namespace", alice)
    memories = [line for line in map(json.loads, exported.splitlines()) if line["type"] == "memory"]
    assert [(m["text"], m["validTo"] is None) for m in memories] == [
        ("Dana's team lead is Priya", False),
        ("Dana lived in Rome", False),
        ("Dana's team lead is Marco", True),
    ]
    assert memories[2]["supersedes"] == memories[0]["id"] == priya["id"]
    assert (memories[1]["validFrom"], memories[1]["validTo"]) == ("2019-01-01T00:00:00Z", "2021-06-30T00:00:00Z")
    assert (memories[2]["actorId"], memories[2]["tags"]) == ("u1", ["team"])

    path = tmp_path / "memories.jsonl"
    path.write_text(exported, encoding="utf-8")
    assert "3 memories added" in run("import_memory", str(path), "--namespace", bob)
    assert "0 memories added" in run("import_memory", str(path), "--namespace", bob)
    back = [line for line in map(json.loads, run("export_memory", "--namespace", bob).splitlines())]
    assert [_without_memory_ids(m) for m in back if m["type"] == "memory"] == [_without_memory_ids(m) for m in memories]
    # The lineage points at the imported rows, not at the file's ids.
    assert back[2]["supersedes"] == back[0]["id"] != memories[0]["id"]
    # The imported Priya is closed and has its successor.
    bob_id = (
        db()
        .execute("SELECT id FROM graph_observation WHERE body = ? AND namespace_id != ?", (memories[0]["text"], ns_id))
        .fetchone()[0]
    )
    assert validity.successor(bob_id) is not None
    # JSON carries them too; a graph without free memories exports no "memories" key.
    document = json.loads(selectors.export_graph(namespace=alice, format="json")["content"])
    assert [m["text"] for m in document["memories"]] == [m["text"] for m in memories]
    services.create_entities(namespace="plain:graph", entities=[person("Ada")])
    assert "memories" not in json.loads(selectors.export_graph(namespace="plain:graph", format="json")["content"])


def _without_memory_ids(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k not in ("id", "supersedes", "sourceId")}


def _view(namespace: str, at: str | None) -> Any:
    page = selectors.open_nodes(namespace=namespace, names=["Dana"], as_of=at)
    return page["entities"][0]["observations"], triples(page["relations"])


def _without_ids(line: dict[str, Any]) -> dict[str, Any]:
    if "observationDetails" not in line:
        return line
    return {
        **line,
        "observationDetails": [
            {k: v for k, v in d.items() if k not in ("id", "supersedes")} for d in line["observationDetails"]
        ],
    }


def test_the_admin_shows_validity_and_declares_functional_types(alice: str, root_key, client) -> None:
    from django.urls import reverse

    from graph.models import TypeDict

    client.force_login(root_key.user)
    services.create_entities(
        namespace=alice,
        entities=[person("Dana"), *({"name": n, "entityType": "org", "observations": []} for n in ("Acme", "Globex"))],
    )
    services.create_relations(namespace=alice, relations=[works_at("Dana", "Acme"), works_at("Dana", "Globex")])
    kind = TypeDict.objects.get(namespace__name=alice, kind="relation", name="works_at")
    changelist = reverse("admin:graph_typedict_changelist")
    data = {"action": "make_functional", "_selected_action": [kind.pk]}
    refused = client.post(changelist, data, follow=True)
    assert "Dana -works_at-&gt; Acme" in refused.content.decode()
    kind.refresh_from_db()
    assert kind.functional is False

    services.delete_relations(namespace=alice, relations=[works_at("Dana", "Acme")])
    client.post(changelist, data, follow=True)
    kind.refresh_from_db()
    assert kind.functional is True
    closed = services.create_relations(namespace=alice, relations=[works_at("Dana", "Acme")])["closed"]
    assert triples(closed) == [("Dana", "Globex", "works_at")]
    page = client.get(reverse("admin:graph_relation_changelist"))
    assert page.status_code == 200
    assert "valid to" in page.content.decode().lower()
    entity = services_entity_id(alice, "Dana")
    assert client.get(reverse("admin:graph_entity_change", args=[entity])).status_code == 200


def services_entity_id(namespace: str, name: str) -> int:
    from graph.models import Entity

    return Entity.objects.get(namespace__name=namespace, name=name).pk
