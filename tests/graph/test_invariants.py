"""Property tests: random operation sequences against the real store, checked against a model.

After every operation the store must read back exactly what a plain Python model of the graph
says, and after every sequence the materialized state (counters, type counts, the two FTS5
indexes) must equal what the base tables say. The triggers of migration 0002 are what keeps them
in sync, so these tests are the check that no write path bypasses or confuses them.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph import selectors, services
from graph.exceptions import EntityAlreadyExists, EntityNotFound, InvalidArgument
from graph.fts import build_match, index_text
from graph.sql import db

NAMES = ["A", "B", "C", "D", "E", "部署", "Ünïcode", "🙂"]
ENTITY_TYPES = ["person", "project", "部门"]
RELATION_TYPES = ["knows", "uses", "依赖"]
OBSERVATIONS = ["likes coffee", "Café crème", "部署配置使用8080端口", 'says "AND" OR NOT', "x", "🙂 emoji"]

Triple = tuple[str, str, str]


def unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def triple(relation: dict) -> Triple:
    return (relation["from"], relation["to"], relation["relationType"])


# --- the model ---------------------------------------------------------------------------------------


@dataclass
class Node:
    order: int  # creation order: read_graph lists entities oldest first
    kind: str
    # (creation order, body): the store lists observations oldest first, also after a merge
    # has interleaved two entities' observations.
    observations: list[tuple[int, str]] = field(default_factory=list)

    def bodies(self) -> list[str]:
        return [body for _, body in sorted(self.observations)]


@dataclass
class Model:
    nodes: dict[str, Node] = field(default_factory=dict)
    relations: set[Triple] = field(default_factory=set)
    clock: itertools.count = field(default_factory=itertools.count)

    def entity(self, name: str) -> dict:
        node = self.nodes[name]
        return {"name": name, "entityType": node.kind, "observations": node.bodies()}

    def entities(self) -> list[dict]:
        return [self.entity(name) for name in sorted(self.nodes, key=lambda name: self.nodes[name].order)]

    def insert(self, entities: list[dict]) -> None:
        """Like services._insert_entities: all entity rows, then all their observation rows."""
        for item in entities:
            self.nodes[item["name"]] = Node(next(self.clock), item["entityType"])
        for item in entities:
            self.append(item["name"], item["observations"])

    def append(self, name: str, bodies: list[str]) -> None:
        self.nodes[name].observations.extend((next(self.clock), body) for body in bodies)


# --- operations: each calls the store, applies the same change to the model, checks the result ---


def create_entities(namespace: str, model: Model, items: list[dict]) -> None:
    result = services.create_entities(namespace=namespace, entities=items)
    created: list[dict] = []
    skipped: list[str] = []
    for item in items:
        if item["name"] in model.nodes or item["name"] in {e["name"] for e in created}:
            skipped.append(item["name"])
        else:
            created.append({**item, "observations": unique(item["observations"])})
    model.insert(created)
    assert result["entities"] == created
    assert [s["name"] for s in result["skipped"]] == skipped


def upsert_entities(namespace: str, model: Model, items: list[dict]) -> None:
    result = services.upsert_entities(namespace=namespace, entities=items)
    merged: dict[str, dict] = {}
    for item in items:
        if item["name"] in merged:
            first = merged[item["name"]]
            first["observations"] = unique(first["observations"] + item["observations"])
        else:
            merged[item["name"]] = {**item, "observations": unique(item["observations"])}
    existing = [name for name in merged if name in model.nodes]
    to_create = [entity for name, entity in merged.items() if name not in model.nodes]
    model.insert(to_create)
    added: dict[str, list[str]] = {}
    # The store looks the existing entities up through the unique (namespace, name) index, so it
    # appends their observations in name order. Only a later merge can tell (it interleaves two
    # entities' observations by age), and then the model must agree on which row is older.
    for name in sorted(existing):
        present = set(model.nodes[name].bodies())
        added[name] = [body for body in merged[name]["observations"] if body not in present]
        model.append(name, added[name])
    assert result["created"] == to_create
    assert result["updated"] == [{"name": name, "addedObservations": added[name]} for name in existing]


def create_relations(namespace: str, model: Model, items: list[dict]) -> None:
    result = services.create_relations(namespace=namespace, relations=items)
    created = []
    for relation in items:
        key = triple(relation)
        if relation["from"] in model.nodes and relation["to"] in model.nodes and key not in model.relations:
            model.relations.add(key)
            created.append(relation)
    assert result["relations"] == created
    assert len(result["skipped"]) == len(items) - len(created)


def add_observations(namespace: str, model: Model, items: list[dict]) -> None:
    missing = [item["entityName"] for item in items if item["entityName"] not in model.nodes]
    if missing:
        # All or nothing: the caller compares the whole graph with the (unchanged) model next.
        with pytest.raises(EntityNotFound) as error:
            services.add_observations(namespace=namespace, observations=items)
        assert error.value.details == {"name": missing[0]}
        return
    result = services.add_observations(namespace=namespace, observations=items)
    expected = []
    for item in items:
        present = set(model.nodes[item["entityName"]].bodies())
        added = [body for body in unique(item["contents"]) if body not in present]
        model.append(item["entityName"], added)
        expected.append({"entityName": item["entityName"], "addedObservations": added})
    assert result["results"] == expected


def delete_entities(namespace: str, model: Model, names: list[str]) -> None:
    result = services.delete_entities(namespace=namespace, entity_names=names)
    gone = {name for name in names if name in model.nodes}
    for name in gone:
        del model.nodes[name]
    model.relations = {r for r in model.relations if r[0] not in gone and r[1] not in gone}
    assert result["deleted"] == len(gone)


def delete_observations(namespace: str, model: Model, items: list[dict]) -> None:
    result = services.delete_observations(namespace=namespace, deletions=items)
    deleted = 0
    for item in items:
        node = model.nodes.get(item["entityName"])
        if node is None:
            continue
        kept = [(order, body) for order, body in node.observations if body not in item["observations"]]
        deleted += len(node.observations) - len(kept)
        node.observations = kept
    assert result["deleted"] == deleted


def delete_relations(namespace: str, model: Model, items: list[dict]) -> None:
    result = services.delete_relations(namespace=namespace, relations=items)
    deleted = 0
    for relation in items:
        if triple(relation) in model.relations:
            model.relations.remove(triple(relation))
            deleted += 1
    assert result["deleted"] == deleted


def merge_entities(namespace: str, model: Model, names: tuple[str, str]) -> None:
    source, target = names
    if source == target:
        with pytest.raises(InvalidArgument):
            services.merge_entities(namespace=namespace, source=source, target=target)
        return
    for name in (source, target):
        if name not in model.nodes:
            with pytest.raises(EntityNotFound) as error:
                services.merge_entities(namespace=namespace, source=source, target=target)
            assert error.value.details == {"name": name}
            return
    result = services.merge_entities(namespace=namespace, source=source, target=target)
    gone = model.nodes.pop(source)
    kept = model.nodes[target]
    present = set(kept.bodies())
    moved = dropped = 0
    for order, body in sorted(gone.observations):
        if body in present:
            dropped += 1
        else:
            present.add(body)
            kept.observations.append((order, body))  # keeps its age (and row id)
            moved += 1
    touching = {r for r in model.relations if source in (r[0], r[1])}
    relations = model.relations - touching
    moved_relations = dropped_relations = 0
    for start, end, kind in touching:
        repointed = (target if start == source else start, target if end == source else end, kind)
        # Only self-loops can collide among themselves, and they are dropped: order is irrelevant.
        if repointed[0] == repointed[1] or repointed in relations:
            dropped_relations += 1
        else:
            relations.add(repointed)
            moved_relations += 1
    model.relations = relations
    assert result == {
        "entity": model.entity(target),
        "movedObservations": moved,
        "droppedDuplicateObservations": dropped,
        "movedRelations": moved_relations,
        "droppedRelations": dropped_relations,
    }


def rename_entity(namespace: str, model: Model, names: tuple[str, str]) -> None:
    name, new_name = names
    if name not in model.nodes:
        with pytest.raises(EntityNotFound) as error:
            services.rename_entity(namespace=namespace, name=name, new_name=new_name)
        assert error.value.details == {"name": name}
        return
    if new_name != name and new_name in model.nodes:
        with pytest.raises(EntityAlreadyExists) as error:
            services.rename_entity(namespace=namespace, name=name, new_name=new_name)
        assert error.value.details == {"name": new_name}
        return
    result = services.rename_entity(namespace=namespace, name=name, new_name=new_name)
    model.nodes[new_name] = model.nodes.pop(name)

    def renamed(end: str) -> str:
        return new_name if end == name else end

    model.relations = {(renamed(start), renamed(end), kind) for start, end, kind in model.relations}
    assert result == model.entity(new_name)


OPERATIONS = {
    "create_entities": create_entities,
    "upsert_entities": upsert_entities,
    "create_relations": create_relations,
    "add_observations": add_observations,
    "delete_entities": delete_entities,
    "delete_observations": delete_observations,
    "delete_relations": delete_relations,
    "merge_entities": merge_entities,
    "rename_entity": rename_entity,
}


# --- strategies ----------------------------------------------------------------------------------


names = st.sampled_from(NAMES)
bodies = st.lists(st.sampled_from(OBSERVATIONS), max_size=3)
entity_items = st.lists(
    st.fixed_dictionaries({"name": names, "entityType": st.sampled_from(ENTITY_TYPES), "observations": bodies}),
    min_size=1,
    max_size=3,
)
relation_items = st.lists(
    st.fixed_dictionaries({"from": names, "to": names, "relationType": st.sampled_from(RELATION_TYPES)}),
    min_size=1,
    max_size=3,
)
operations = st.one_of(
    st.tuples(st.just("create_entities"), entity_items),
    st.tuples(st.just("upsert_entities"), entity_items),
    st.tuples(st.just("create_relations"), relation_items),
    st.tuples(
        st.just("add_observations"),
        st.lists(st.fixed_dictionaries({"entityName": names, "contents": bodies}), min_size=1, max_size=2),
    ),
    st.tuples(st.just("delete_entities"), st.lists(names, min_size=1, max_size=2)),
    st.tuples(
        st.just("delete_observations"),
        st.lists(st.fixed_dictionaries({"entityName": names, "observations": bodies}), min_size=1, max_size=2),
    ),
    st.tuples(st.just("delete_relations"), relation_items),
    st.tuples(st.just("merge_entities"), st.tuples(names, names)),
    st.tuples(st.just("rename_entity"), st.tuples(names, names)),
)


# --- checks --------------------------------------------------------------------------------------


def assert_store_matches(namespace: str, model: Model) -> None:
    page = selectors.read_graph(namespace=namespace)
    assert page["hasMore"] is False
    assert page["entities"] == model.entities()
    relations = [triple(r) for r in page["relations"]]
    assert len(relations) == len(set(relations))
    assert set(relations) == model.relations


@functools.cache
def _tokenizer() -> sqlite3.Connection:
    """A private in-memory FTS5 table with the store's tokenizer: what the index should hold."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE doc USING fts5(text, tokenize='unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE doc_terms USING fts5vocab(doc, instance)")
    return conn


def expected_terms(rows: list[tuple[int, str]]) -> Counter:
    conn = _tokenizer()
    conn.execute("DELETE FROM doc")
    conn.executemany("INSERT INTO doc(rowid, text) VALUES (?, ?)", rows)
    return Counter(conn.execute("SELECT doc, term, offset FROM doc_terms"))


def indexed_terms(table: str) -> Counter:
    conn = db()
    # A TEMP vocabulary table over the real index; it goes away with the test's rollback.
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{table}_terms USING fts5vocab(main, {table}, instance)")
    return Counter(conn.execute(f"SELECT doc, term, offset FROM temp.{table}_terms"))


def assert_materialized_state_is_consistent(namespace: str) -> None:
    conn = db()

    # FTS5's own check of each index (raises sqlite3.DatabaseError when it is corrupt)...
    conn.execute("INSERT INTO obs_fts(obs_fts) VALUES ('integrity-check')")
    conn.execute("INSERT INTO name_fts(name_fts) VALUES ('integrity-check')")
    # ...and, since SQLite 3.40 does not compare an external-content index with its content, the
    # comparison itself: every row indexed exactly as its text tokenizes, and nothing else.
    for table, view, column in (
        ("name_fts", "graph_entity_fts_src", "name"),
        ("obs_fts", "graph_observation_fts_src", "body"),
    ):
        content = conn.execute(f"SELECT id, {column} FROM {view}").fetchall()
        assert indexed_terms(table) == expected_terms(content), table

    # Rows point at entities and types of their own namespace.
    assert conn.execute(
        "SELECT count(*) FROM graph_observation o JOIN graph_entity e ON e.id = o.entity_id "
        "WHERE o.namespace_id != e.namespace_id"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM graph_relation r JOIN graph_entity f ON f.id = r.from_id "
        "JOIN graph_entity t ON t.id = r.to_id JOIN graph_typedict ty ON ty.id = r.type_id "
        "WHERE f.namespace_id != r.namespace_id OR t.namespace_id != r.namespace_id "
        "OR ty.namespace_id != r.namespace_id OR ty.kind != 'relation'"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM graph_entity e JOIN graph_typedict ty ON ty.id = e.type_id "
        "WHERE ty.namespace_id != e.namespace_id OR ty.kind != 'entity'"
    ).fetchone() == (0,)

    row = conn.execute("SELECT id FROM graph_namespace WHERE name = ?", (namespace,)).fetchone()
    if row is None:  # only deletes and failed calls so far: reads never create a namespace
        return
    ns_id = row[0]

    counters = conn.execute(
        "SELECT e.name, e.obs_count, (SELECT count(*) FROM graph_observation o WHERE o.entity_id = e.id), "
        "e.out_deg, (SELECT count(*) FROM graph_relation r WHERE r.from_id = e.id), "
        "e.in_deg, (SELECT count(*) FROM graph_relation r WHERE r.to_id = e.id) "
        "FROM graph_entity e WHERE e.namespace_id = ?",
        (ns_id,),
    ).fetchall()
    for name, obs_count, observations, out_deg, outgoing, in_deg, incoming in counters:
        assert (obs_count, out_deg, in_deg) == (observations, outgoing, incoming), name

    types = conn.execute(
        "SELECT t.kind, t.name, t.count, CASE t.kind "
        "WHEN 'entity' THEN (SELECT count(*) FROM graph_entity e WHERE e.type_id = t.id) "
        "ELSE (SELECT count(*) FROM graph_relation r WHERE r.type_id = t.id) END "
        "FROM graph_typedict t WHERE t.namespace_id = ?",
        (ns_id,),
    ).fetchall()
    for kind, name, count, users in types:
        assert count == users, (kind, name)

    # The stored search forms are the ones fts.py computes from the text.
    entities = conn.execute("SELECT id, name, search_name FROM graph_entity WHERE namespace_id = ?", (ns_id,))
    for entity_id, name, search_name in entities.fetchall():
        assert search_name == index_text(name), name
        match = build_match(name)
        if match is None:  # no token characters (e.g. "🙂"): nothing to search by
            continue
        hits = {r[0] for r in conn.execute("SELECT rowid FROM name_fts WHERE name_fts MATCH ?", (match,))}
        assert entity_id in hits, name
        assert name in [e["name"] for e in selectors.search_nodes(namespace=namespace, query=name)["entities"]]
    observations = conn.execute(
        "SELECT id, body, search_text FROM graph_observation WHERE namespace_id = ?", (ns_id,)
    ).fetchall()
    for observation_id, body, search_text in observations:
        assert search_text == index_text(body), body
        match = build_match(body)
        if match is None:
            continue
        hits = {r[0] for r in conn.execute("SELECT rowid FROM obs_fts WHERE obs_fts MATCH ?", (match,))}
        assert observation_id in hits, body


# --- the properties --------------------------------------------------------------------------------


# The db fixture is function-scoped, so all examples share one test transaction. That is safe:
# every example works in a namespace of its own (a fresh uuid), and the global checks (FTS
# integrity and index contents) must hold whatever the other namespaces contain.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(operations, max_size=25))
def test_it_keeps_the_store_equal_to_a_model_under_random_operations(db, steps):
    namespace = f"prop:{uuid4().hex}"
    model = Model()
    for operation, arguments in steps:
        OPERATIONS[operation](namespace, model, arguments)
        assert_store_matches(namespace, model)
    assert_materialized_state_is_consistent(namespace)


def _acceptable(text: str) -> bool:
    return bool(text.strip()) and "\x00" not in text


any_text = st.text(min_size=1, max_size=12).filter(_acceptable)


# Same sharing argument: a namespace per example. This one feeds arbitrary Unicode through the
# JSON-batched inserts, the CJK rewriting and the tokenizer.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(
        st.fixed_dictionaries(
            {"name": any_text, "entityType": any_text, "observations": st.lists(any_text, max_size=3)}
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda item: item["name"],
    ),
    new_name=any_text,
)
def test_it_stores_and_indexes_arbitrary_text_exactly(db, items, new_name):
    namespace = f"prop:{uuid4().hex}"
    model = Model()
    create_entities(namespace, model, items)
    create_relations(
        namespace,
        model,
        [{"from": a["name"], "to": b["name"], "relationType": b["entityType"]} for a, b in itertools.pairwise(items)],
    )
    assert_store_matches(namespace, model)
    rename_entity(namespace, model, (items[0]["name"], new_name))
    assert_store_matches(namespace, model)
    delete_observations(
        namespace, model, [{"entityName": items[-1]["name"], "observations": items[-1]["observations"][:1]}]
    )
    assert_store_matches(namespace, model)
    assert_materialized_state_is_consistent(namespace)
