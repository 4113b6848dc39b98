"""Every write operation of the store, on the real SQLite database, with the official memory
server's semantics where it is sane and the documented fixes where it is not."""

from __future__ import annotations

import pytest

from graph import selectors, services
from graph.exceptions import EntityAlreadyExists, EntityNotFound, InvalidArgument, LimitExceeded
from graph.sql import db
from graph.types import EntityDict, RelationDict
from kernel.sql import POSTGRES


def person(name: str, *observations: str, kind: str = "person") -> EntityDict:
    return {"name": name, "entityType": kind, "observations": list(observations)}


def rel(source: str, target: str, kind: str = "knows") -> RelationDict:
    return {"from": source, "to": target, "relationType": kind}


def graph_of(namespace: str) -> tuple[list[EntityDict], list[RelationDict]]:
    page = selectors.read_graph(namespace=namespace, limit=1000)
    return page["entities"], page["relations"]


# --- create_entities ----------------------------------------------------------------------------


def test_it_creates_entities_and_returns_only_new_ones(alice):
    first = services.create_entities(namespace=alice, entities=[person("Alice", "likes tea"), person("Bob")])
    assert [e["name"] for e in first["entities"]] == ["Alice", "Bob"]
    assert first["skipped"] == []

    again = services.create_entities(namespace=alice, entities=[person("Alice", "new fact", kind="robot")])
    assert again["entities"] == []
    assert again["skipped"] == [{"name": "Alice", "reason": "an entity with this name already exists"}]
    # The existing entity is untouched: type and observations are not merged.
    assert selectors.get_entity(namespace=alice, name="Alice") == person("Alice", "likes tea")


def test_it_stores_duplicates_inside_one_call_once(alice):
    result = services.create_entities(
        namespace=alice, entities=[person("Alice", "a", "a", "b"), person("Alice", "c", kind="robot")]
    )
    assert result["entities"] == [person("Alice", "a", "b")]
    assert result["skipped"] == [{"name": "Alice", "reason": "duplicate of an earlier entity in this request"}]
    entities, _ = graph_of(alice)
    assert entities == [person("Alice", "a", "b")]


def test_names_are_case_sensitive_and_unicode_round_trips(alice):
    names = ["Foo", "foo", "Zoë", "東京タワー", "데이터", "🙂 smile", "ﬁ ligature", "RTL שלום"]
    services.create_entities(namespace=alice, entities=[person(n, f"obs of {n}") for n in names])
    entities, _ = graph_of(alice)
    assert [e["name"] for e in entities] == names
    assert selectors.get_entity(namespace=alice, name="🙂 smile")["observations"] == ["obs of 🙂 smile"]


# --- create_relations ---------------------------------------------------------------------------


def test_it_skips_relations_to_missing_entities_with_the_reason(alice):
    services.create_entities(namespace=alice, entities=[person("Alice"), person("Bob")])
    result = services.create_relations(
        namespace=alice,
        relations=[rel("Alice", "Bob"), rel("Alice", "Ghost"), rel("Nobody", "Ghost"), rel("Alice", "Bob")],
    )
    assert result["relations"] == [rel("Alice", "Bob")]
    assert result["skipped"] == [
        {"relation": rel("Alice", "Ghost"), "reason": "entity 'Ghost' does not exist"},
        {
            "relation": rel("Nobody", "Ghost"),
            "reason": "entity 'Nobody' does not exist and entity 'Ghost' does not exist",
        },
        {"relation": rel("Alice", "Bob"), "reason": "duplicate of an earlier relation in this request"},
    ]
    again = services.create_relations(namespace=alice, relations=[rel("Alice", "Bob"), rel("Alice", "Bob", "likes")])
    assert again["relations"] == [rel("Alice", "Bob", "likes")]
    assert again["skipped"] == [{"relation": rel("Alice", "Bob"), "reason": "this relation already exists"}]
    assert selectors.graph_stats(namespace=alice)["relations"] == 2


# --- add_observations ---------------------------------------------------------------------------


def test_it_adds_only_new_observations(alice):
    services.create_entities(namespace=alice, entities=[person("Alice", "likes tea")])
    result = services.add_observations(
        namespace=alice, observations=[{"entityName": "Alice", "contents": ["likes tea", "runs", "runs"]}]
    )
    assert result == {"results": [{"entityName": "Alice", "addedObservations": ["runs"]}]}
    assert selectors.get_entity(namespace=alice, name="Alice")["observations"] == ["likes tea", "runs"]


def test_add_observations_is_all_or_nothing(alice):
    services.create_entities(namespace=alice, entities=[person("Alice")])
    with pytest.raises(EntityNotFound, match=r"^Entity with name Ghost not found$"):
        services.add_observations(
            namespace=alice,
            observations=[{"entityName": "Alice", "contents": ["x"]}, {"entityName": "Ghost", "contents": ["y"]}],
        )
    assert selectors.get_entity(namespace=alice, name="Alice")["observations"] == []


def test_add_observations_in_an_unknown_namespace_is_not_found(alice):
    with pytest.raises(EntityNotFound):
        services.add_observations(namespace="org:nobody", observations=[{"entityName": "A", "contents": ["x"]}])


# --- deletes ------------------------------------------------------------------------------------


def test_delete_entities_cascades_to_relations_and_ignores_missing_names(alice):
    services.create_entities(namespace=alice, entities=[person("A", "x"), person("B"), person("C")])
    services.create_relations(namespace=alice, relations=[rel("A", "B"), rel("B", "C"), rel("C", "A")])
    result = services.delete_entities(namespace=alice, entity_names=["B", "Ghost"])
    assert result == {"success": True, "message": "Entities deleted successfully", "deleted": 1}
    entities, relations = graph_of(alice)
    assert [e["name"] for e in entities] == ["A", "C"]
    assert relations == [rel("C", "A")]
    assert selectors.degree(namespace=alice, name="A") == {
        "name": "A",
        "direction": "both",
        "degree": 1,
        "inDegree": 1,
        "outDegree": 0,
    }


def test_delete_observations_and_relations_are_silent_no_ops_when_missing(alice):
    services.create_entities(namespace=alice, entities=[person("A", "x", "y"), person("B")])
    services.create_relations(namespace=alice, relations=[rel("A", "B")])
    deleted = services.delete_observations(
        namespace=alice,
        deletions=[{"entityName": "A", "observations": ["x", "nope"]}, {"entityName": "Ghost", "observations": ["x"]}],
    )
    assert deleted == {"success": True, "message": "Observations deleted successfully", "deleted": 1}
    assert selectors.get_entity(namespace=alice, name="A")["observations"] == ["y"]
    gone = services.delete_relations(namespace=alice, relations=[rel("A", "B"), rel("B", "A"), rel("A", "Ghost")])
    assert gone == {"success": True, "message": "Relations deleted successfully", "deleted": 1}
    assert graph_of(alice)[1] == []


# --- upsert, merge, rename ----------------------------------------------------------------------


def test_upsert_creates_or_appends_and_keeps_the_type(alice):
    services.create_entities(namespace=alice, entities=[person("A", "x")])
    result = services.upsert_entities(
        namespace=alice, entities=[person("A", "x", "y", kind="robot"), person("B", "b"), person("A", "z")]
    )
    assert result == {
        "created": [person("B", "b")],
        "updated": [{"name": "A", "addedObservations": ["y", "z"]}],
    }
    assert selectors.get_entity(namespace=alice, name="A") == person("A", "x", "y", "z")
    # Idempotent: the same call again adds nothing.
    assert services.upsert_entities(namespace=alice, entities=[person("A", "y")])["updated"] == [
        {"name": "A", "addedObservations": []}
    ]


def test_merge_moves_observations_and_relations_then_deletes_the_source(alice):
    services.create_entities(
        namespace=alice, entities=[person("Bob", "shared", "bob only"), person("Robert", "shared"), person("C")]
    )
    services.create_relations(
        namespace=alice,
        relations=[rel("Bob", "C"), rel("Robert", "C"), rel("C", "Bob", "follows"), rel("Bob", "Robert", "alias")],
    )
    result = services.merge_entities(namespace=alice, source="Bob", target="Robert")
    assert result == {
        # Observations keep their creation order: Bob's "bob only" is older than Robert's "shared".
        "entity": person("Robert", "bob only", "shared"),
        "movedObservations": 1,
        "droppedDuplicateObservations": 1,
        "movedRelations": 1,  # C -follows-> Bob becomes C -follows-> Robert
        "droppedRelations": 2,  # Bob->C duplicates Robert->C; Bob->Robert would be a self-loop
    }
    entities, relations = graph_of(alice)
    assert [e["name"] for e in entities] == ["Robert", "C"]
    assert sorted((r["from"], r["to"], r["relationType"]) for r in relations) == [
        ("C", "Robert", "follows"),
        ("Robert", "C", "knows"),
    ]


def test_merge_rejects_missing_or_identical_entities(alice):
    services.create_entities(namespace=alice, entities=[person("A")])
    with pytest.raises(EntityNotFound):
        services.merge_entities(namespace=alice, source="A", target="Ghost")
    with pytest.raises(InvalidArgument):
        services.merge_entities(namespace=alice, source="A", target="A")


def test_rename_keeps_observations_and_relations(alice):
    services.create_entities(namespace=alice, entities=[person("A", "x"), person("B")])
    services.create_relations(namespace=alice, relations=[rel("A", "B")])
    assert services.rename_entity(namespace=alice, name="A", new_name="Alpha") == person("Alpha", "x")
    assert graph_of(alice)[1] == [rel("Alpha", "B")]
    assert selectors.search_nodes(namespace=alice, query="Alpha")["entities"][0]["name"] == "Alpha"
    assert selectors.search_nodes(namespace=alice, query='"A"')["entities"] == []  # exact word, not prefix
    with pytest.raises(EntityAlreadyExists):
        services.rename_entity(namespace=alice, name="Alpha", new_name="B")
    with pytest.raises(EntityNotFound):
        services.rename_entity(namespace=alice, name="A", new_name="C")


def test_compact_runs_fts_and_planner_maintenance(alice):
    services.create_entities(namespace=alice, entities=[person(f"E{i}", "x") for i in range(50)])
    services.delete_entities(namespace=alice, entity_names=[f"E{i}" for i in range(25)])
    result = services.compact()
    assert result["success"] is True
    assert result["freedPages"] >= 0
    assert selectors.graph_stats(namespace=alice)["entities"] == 25


# --- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "limit_name"),
    [
        (lambda ns: services.create_entities(namespace=ns, entities=[person("x" * 1025)]), "MAX_NAME_BYTES"),
        (lambda ns: services.create_entities(namespace=ns, entities=[person("é" * 513)]), "MAX_NAME_BYTES"),
        (
            lambda ns: services.create_entities(namespace=ns, entities=[person("A", "o" * 65537)]),
            "MAX_OBSERVATION_BYTES",
        ),
        (
            lambda ns: services.create_entities(namespace=ns, entities=[person(f"E{i}") for i in range(1001)]),
            "MAX_ITEMS_PER_REQUEST",
        ),
        (lambda ns: selectors.search_nodes(namespace=ns, query="x", limit=1001), "MAX_SEARCH_LIMIT"),
        (lambda ns: selectors.get_neighbors(namespace=ns, name="A", depth=17), "MAX_NEIGHBOR_DEPTH"),
        (lambda ns: selectors.find_all_paths(namespace=ns, from_="A", to="A", max_depth=11), "MAX_PATH_DEPTH"),
        (lambda ns: selectors.find_all_paths(namespace=ns, from_="A", to="A", max_paths=101), "MAX_PATHS"),
    ],
)
def test_limits_raise_a_named_error_and_write_nothing(alice, call, limit_name):
    services.create_entities(namespace=alice, entities=[person("A")])
    with pytest.raises(LimitExceeded) as raised:
        call(alice)
    assert raised.value.details["limit"] == limit_name
    assert limit_name in raised.value.message
    assert [e["name"] for e in graph_of(alice)[0]] == ["A"]


def test_exactly_at_the_limits_is_accepted(alice):
    result = services.create_entities(
        namespace=alice, entities=[person("n" * 1024, "o" * 65536)] + [person(f"E{i}") for i in range(999)]
    )
    assert len(result["entities"]) == 1000


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "", "entityType": "t"},
        {"name": "   ", "entityType": "t"},
        {"name": "A", "entityType": ""},
        {"name": 5, "entityType": "t"},
        {"name": "A\x00B", "entityType": "t"},
        {"name": "A", "entityType": "t", "observations": "not a list"},
        {"name": "A", "entityType": "t", "observations": [""]},
        {"name": "\ud800", "entityType": "t"},
        "not an object",
    ],
)
def test_bad_input_is_rejected_before_anything_is_written(alice, bad):
    with pytest.raises(InvalidArgument):
        services.create_entities(namespace=alice, entities=[person("Good"), bad])
    assert graph_of(alice)[0] == []


@pytest.mark.parametrize("namespace", ["", "a b", "org:*", "org::team", ":org", "x" * 256, "org/team"])
def test_invalid_namespaces_are_rejected(db, namespace):
    with pytest.raises(InvalidArgument, match="namespace"):
        services.create_entities(namespace=namespace, entities=[person("A")])


# --- namespaces are isolated --------------------------------------------------------------------


def test_two_namespaces_with_the_same_names_never_see_each_other(alice, bob):
    services.create_entities(namespace=alice, entities=[person("Shared", "alice secret"), person("OnlyAlice")])
    services.create_entities(namespace=bob, entities=[person("Shared", "bob secret", kind="robot")])
    services.create_relations(namespace=alice, relations=[rel("Shared", "OnlyAlice")])

    assert selectors.get_entity(namespace=bob, name="Shared") == person("Shared", "bob secret", kind="robot")
    assert selectors.open_nodes(namespace=bob, names=["Shared", "OnlyAlice"]) == {
        "entities": [person("Shared", "bob secret", kind="robot")],
        "relations": [],
    }
    assert selectors.search_nodes(namespace=bob, query="alice")["entities"] == []
    assert selectors.graph_stats(namespace=bob)["entities"] == 1
    with pytest.raises(EntityNotFound):
        selectors.get_entity(namespace=bob, name="OnlyAlice")
    # Relations cannot reach across namespaces either.
    skipped = services.create_relations(namespace=bob, relations=[rel("Shared", "OnlyAlice")])["skipped"]
    assert skipped[0]["reason"] == "entity 'OnlyAlice' does not exist"
    # Deleting in one namespace leaves the other alone.
    services.delete_entities(namespace=bob, entity_names=["Shared"])
    assert selectors.get_entity(namespace=alice, name="Shared")["observations"] == ["alice secret"]
    assert selectors.read_graph(namespace=bob)["entities"] == []
    assert selectors.read_graph(namespace="org:unknown")["entities"] == []


def _rows_changed() -> int:
    """Rows written so far: by this connection (SQLite), or in this transaction (PostgreSQL)."""
    if POSTGRES:
        (count,) = (
            db()
            .execute("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables")
            .fetchone()
        )
        return int(count)
    return db().total_changes


def test_each_call_is_one_transaction(alice, django_assert_max_num_queries):
    # A 1,000-entity batch is a handful of statements, not one per item: executemany batches the
    # inserts inside a single BEGIN IMMEDIATE ... COMMIT.
    before = _rows_changed()
    services.create_entities(namespace=alice, entities=[person(f"E{i}", "a", "b") for i in range(1000)])
    assert _rows_changed() - before >= 3000
    assert selectors.graph_stats(namespace=alice) == {
        "entities": 1000,
        "relations": 0,
        "observations": 2000,
        "memories": 0,
        "entityTypes": 1,
        "relationTypes": 0,
    }
