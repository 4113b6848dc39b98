"""Writers at once: each call is one transaction, and two calls writing the same things at the
same moment neither fail nor store anything twice.

On SQLite the writers take turns at the one write lock (BEGIN IMMEDIATE); on PostgreSQL they
really run at once, and the services' reads-then-writes rely on INSERT ... ON CONFLICT and on
SELECT ... FOR UPDATE of the entities they write to (graph/services.py `lock_entities`).
"""

from __future__ import annotations

from functools import partial

import pytest

from graph import services
from graph.sql import db
from tests.threads import at_once

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 8


def counts(namespace: str) -> tuple[int, int, int]:
    ns_id = db().execute("SELECT id FROM graph_namespace WHERE name = ?", (namespace,)).fetchone()[0]
    entities = db().execute("SELECT count(*) FROM graph_entity WHERE namespace_id = ?", (ns_id,)).fetchone()[0]
    observations = (
        db()
        .execute(
            "SELECT count(*), count(DISTINCT entity_id || ':' || body) FROM graph_observation WHERE namespace_id = ?",
            (ns_id,),
        )
        .fetchone()
    )
    return entities, observations[0], observations[1]


def test_two_upserts_of_the_same_new_entity_store_it_once() -> None:
    for round_ in range(ROUNDS):
        namespace = f"org:race:upsert{round_}"
        entity = {"name": "Dana", "entityType": "person", "observations": ["likes tea", "lives in Paris"]}
        results = at_once(*[partial(services.upsert_entities, namespace=namespace, entities=[entity])] * 2)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sorted(len(r["created"]) for r in results) == [0, 1]
        assert counts(namespace) == (1, 2, 2)


def test_two_creates_of_the_same_entity_create_it_once_and_report_the_other_skipped() -> None:
    for round_ in range(ROUNDS):
        namespace = f"org:race:create{round_}"
        entity = {"name": "Dana", "entityType": "person", "observations": ["likes tea"]}
        results = at_once(*[partial(services.create_entities, namespace=namespace, entities=[entity])] * 2)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sorted(len(r["entities"]) for r in results) == [0, 1]
        assert sorted(len(r["skipped"]) for r in results) == [0, 1]
        assert counts(namespace) == (1, 1, 1)


def test_two_calls_adding_the_same_observation_store_it_once_and_mention_it() -> None:
    for round_ in range(ROUNDS):
        namespace = f"org:race:add{round_}"
        services.create_entities(
            namespace=namespace, entities=[{"name": "Dana", "entityType": "person", "observations": []}]
        )
        addition = [{"entityName": "Dana", "contents": ["likes tea"]}]
        results = at_once(*[partial(services.add_observations, namespace=namespace, observations=addition)] * 2)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sorted(len(r["results"][0]["addedObservations"]) for r in results) == [0, 1]
        assert counts(namespace) == (1, 1, 1)
        mentions = db().execute(
            "SELECT mention_count FROM graph_observation WHERE body = 'likes tea' "
            "AND namespace_id = (SELECT id FROM graph_namespace WHERE name = ?)",
            (namespace,),
        )
        assert mentions.fetchone()[0] == 2


def test_two_relations_at_once_create_the_edge_once() -> None:
    for round_ in range(ROUNDS):
        namespace = f"org:race:relate{round_}"
        services.create_entities(
            namespace=namespace,
            entities=[{"name": n, "entityType": "person", "observations": []} for n in ("A", "B")],
        )
        relation = [{"from": "A", "to": "B", "relationType": "knows"}]
        results = at_once(*[partial(services.create_relations, namespace=namespace, relations=relation)] * 2)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sorted(len(r["relations"]) for r in results) == [0, 1]
        assert [s["reason"] for r in results for s in r["skipped"]] == [services.RELATION_EXISTS]


def test_a_functional_type_keeps_one_current_relation_when_two_replace_it_at_once() -> None:
    for round_ in range(ROUNDS):
        namespace = f"org:race:functional{round_}"
        services.create_entities(
            namespace=namespace,
            entities=[
                {"name": n, "entityType": "x", "observations": []} for n in ("Dana", "Acme", "Globex", "Initech")
            ],
        )
        services.declare_relation_type(namespace=namespace, relation_type="works_at", functional=True)
        services.create_relations(
            namespace=namespace, relations=[{"from": "Dana", "to": "Acme", "relationType": "works_at"}]
        )
        results = at_once(
            *[
                partial(
                    services.create_relations,
                    namespace=namespace,
                    relations=[{"from": "Dana", "to": target, "relationType": "works_at"}],
                )
                for target in ("Globex", "Initech")
            ]
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        current = (
            db()
            .execute(
                "SELECT count(*) FROM graph_relation r JOIN graph_namespace n ON n.id = r.namespace_id "
                "WHERE n.name = ? AND r.valid_to IS NULL",
                (namespace,),
            )
            .fetchone()[0]
        )
        assert current == 1
