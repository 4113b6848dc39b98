"""PostgreSQL's forms of the schema SQLite keeps in FTS5 tables and triggers (graph/migrations/0002,
0005, 0008; vectors/migrations/0002, 0005; agents/migrations/0002).

The rows here are written with plain SQL, as an operator's `psql` session would: the invariants
hold however a row is written, which is why they are triggers. The same invariants on SQLite are
covered by tests/graph/test_invariants.py and the services' tests, which run on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction

from access.models import Namespace

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres_only(reason="PostgreSQL's triggers and generated tsvector columns"),
]


def one(sql: str, params: list[object] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        row = cursor.fetchone()
    return row[0] if row else None


def run(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


@pytest.fixture
def graph() -> dict[str, int]:
    """A namespace, an entity type and a relation type, written by hand."""
    namespace = Namespace.objects.create(name="org:schema:test")
    ids = {"ns": namespace.id}
    for kind, name in (("entity", "person"), ("relation", "knows")):
        ids[name] = int(
            one(
                "INSERT INTO graph_typedict(namespace_id, kind, name, count) VALUES (%s, %s, %s, 0) RETURNING id",
                [namespace.id, kind, name],
            )
        )
    return ids


def entity(ids: dict[str, int], name: str, search_name: str | None = None) -> int:
    return int(
        one(
            "INSERT INTO graph_entity(namespace_id, name, search_name, type_id, obs_count, out_deg, in_deg, "
            "created_at, updated_at) VALUES (%s, %s, %s, %s, 0, 0, 0, now(), now()) RETURNING id",
            [ids["ns"], name, search_name, ids["person"]],
        )
    )


def observation(ids: dict[str, int], entity_id: int | None, body: str) -> int:
    return int(
        one(
            "INSERT INTO graph_observation(namespace_id, entity_id, body, actor_id, tags, created_at) "
            "VALUES (%s, %s, %s, '', '[]', now()) RETURNING id",
            [ids["ns"], entity_id, body],
        )
    )


def counters(entity_id: int) -> tuple[object, ...]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT obs_count, out_deg, in_deg FROM graph_entity WHERE id = %s", [entity_id])
        return tuple(cursor.fetchone())


def test_counters_follow_rows_written_by_hand(graph: dict[str, int]) -> None:
    alice, bob = entity(graph, "Alice"), entity(graph, "Bob")
    assert one("SELECT count FROM graph_typedict WHERE id = %s", [graph["person"]]) == 2
    first = observation(graph, alice, "likes tea")
    observation(graph, alice, "lives in Lisbon")
    relation = one(
        "INSERT INTO graph_relation(namespace_id, from_id, to_id, type_id, created_at) "
        "VALUES (%s, %s, %s, %s, now()) RETURNING id",
        [graph["ns"], alice, bob, graph["knows"]],
    )
    assert counters(alice) == (2, 1, 0)
    assert counters(bob) == (0, 0, 1)
    assert one("SELECT count FROM graph_typedict WHERE id = %s", [graph["knows"]]) == 1

    # Closing a fact takes it out of the counts (open facts only); the type still counts it.
    run("UPDATE graph_observation SET valid_to = now() WHERE id = %s", [first])
    run("UPDATE graph_relation SET valid_to = now() WHERE id = %s", [relation])
    assert counters(alice) == (1, 0, 0)
    assert counters(bob) == (0, 0, 0)
    assert one("SELECT count FROM graph_typedict WHERE id = %s", [graph["knows"]]) == 1
    # Opening it again counts it again; deleting a closed fact changes nothing more.
    run("UPDATE graph_observation SET valid_to = NULL WHERE id = %s", [first])
    assert counters(alice) == (2, 0, 0)
    run("DELETE FROM graph_relation WHERE id = %s", [relation])
    assert counters(bob) == (0, 0, 0)
    assert one("SELECT count FROM graph_typedict WHERE id = %s", [graph["knows"]]) == 0

    # Moving an observation to another entity moves its count.
    run("UPDATE graph_observation SET entity_id = %s WHERE id = %s", [bob, first])
    assert counters(alice)[0] == 1
    assert counters(bob)[0] == 1


def test_the_search_vector_is_generated_from_the_index_form(graph: dict[str, int]) -> None:
    plain = entity(graph, "Grace Hopper")
    cjk = entity(graph, "部署配置", search_name="部署 署配 配置 置")
    found = one(
        "SELECT array_agg(id ORDER BY id) FROM graph_entity WHERE search_vector @@ to_tsquery('simple', %s)",
        ["hop:*"],
    )
    assert found == [plain]
    assert one("SELECT id FROM graph_entity WHERE search_vector @@ to_tsquery('simple', '署配')") == cjk
    # A rename re-indexes the row in the same statement (a generated column).
    run("UPDATE graph_entity SET name = 'Ada Lovelace' WHERE id = %s", [plain])
    assert one("SELECT count(*) FROM graph_entity WHERE search_vector @@ to_tsquery('simple', 'hop:*')") == 0
    assert one("SELECT id FROM graph_entity WHERE search_vector @@ to_tsquery('simple', 'lovelace')") == plain
    # GIN indexes serve it.
    assert one("SELECT indexdef FROM pg_indexes WHERE indexname = 'graph_observation_search_recent'") is not None


def test_vectors_follow_their_owners_through_the_change_log(graph: dict[str, int]) -> None:
    alice = entity(graph, "Alice")
    note = observation(graph, alice, "likes tea")
    embedding = one(
        "INSERT INTO vectors_embedding(namespace_id, owner_kind, owner_id, model, dims, vector, seq, created_at) "
        "VALUES (%s, 'observation', %s, 'm', 2, %s, 0, now()) RETURNING id",
        [graph["ns"], note, b"\x00" * 8],
    )
    change = one("SELECT max(seq) FROM vectors_change WHERE owner_id = %s AND NOT deleted", [note])
    assert change is not None
    # The row's seq is its change id, set by the trigger.
    assert one("SELECT seq FROM vectors_embedding WHERE id = %s", [embedding]) == change

    # Rewriting the text drops the vector (logged as deleted) and queues the text again.
    run("UPDATE graph_observation SET body = 'likes coffee' WHERE id = %s", [note])
    assert one("SELECT count(*) FROM vectors_embedding WHERE id = %s", [embedding]) == 0
    assert one("SELECT deleted FROM vectors_change WHERE owner_id = %s ORDER BY seq DESC LIMIT 1", [note]) is True
    assert one("SELECT attempts FROM vectors_pending WHERE owner_id = %s", [note]) == 0
    # Deleting the observation leaves the backlog with it.
    run("DELETE FROM graph_observation WHERE id = %s", [note])
    assert one("SELECT count(*) FROM vectors_pending WHERE owner_id = %s", [note]) == 0


def test_the_ledger_is_append_only_even_by_hand(ledger_wiped_after: None) -> None:
    user = get_user_model().objects.create_user(username="payer")
    entry = one(
        "INSERT INTO agents_ledgerentry(user_id, kind, credits, credits_after, tokens, note, actor, created_at) "
        "VALUES (%s, 'grant', 5, 5, 0, '', '', now()) RETURNING id",
        [user.id],
    )
    for statement in (
        "UPDATE agents_ledgerentry SET credits = 500 WHERE id = %s",
        "DELETE FROM agents_ledgerentry WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            run(statement, [entry])
    assert one("SELECT credits FROM agents_ledgerentry WHERE id = %s", [entry]) == 5
