"""The read tools agents call most are few SQLite statements each: the sqlite3 module gives up
the GIL around every statement, and under load the database thread then waits to get it back
(bench/load.py measured +5 to +25% get_entity calls a second from two statements fewer). These
tests pin the counts, and that the one-statement reads keep their answers and their namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from graph import selectors, services
from graph.exceptions import EntityNotFound
from graph.sql import db
from kernel.sql import POSTGRES, PostgresConnection


@contextmanager
def statements() -> Iterator[list[str]]:
    """The statements the code under the block runs (not FTS5's own inner ones)."""
    seen: list[str] = []
    if POSTGRES:
        # Every statement goes through kernel.sql's connection (one round trip each).
        execute = PostgresConnection.execute

        def traced(self: PostgresConnection, statement: str, params: Any = ()) -> Any:
            seen.append(statement)
            return execute(self, statement, params)

        PostgresConnection.execute = traced
        try:
            yield seen
        finally:
            PostgresConnection.execute = execute
        return
    db().set_trace_callback(lambda sql: None if sql.startswith("--") else seen.append(sql))
    try:
        yield seen
    finally:
        db().set_trace_callback(None)


def counted(read: Callable[[], Any]) -> tuple[Any, int]:
    with statements() as seen:
        result = read()
    return result, len(seen)


@pytest.fixture
def graphs(alice: str, bob: str) -> tuple[str, str]:
    services.create_entities(
        namespace=alice,
        entities=[
            {"name": "Ada", "entityType": "person", "observations": ["writes the release notes", "likes tea"]},
            {"name": "Bob", "entityType": "person", "observations": ["reviews releases"]},
            {"name": "Cy", "entityType": "robot", "observations": ["deploys on Fridays"]},
        ],
    )
    services.create_relations(
        namespace=alice,
        relations=[
            {"from": "Ada", "to": "Bob", "relationType": "mentors"},
            {"from": "Cy", "to": "Ada", "relationType": "helps"},
        ],
    )
    services.create_entities(
        namespace=bob, entities=[{"name": "Ada", "entityType": "ghost", "observations": ["bob's own Ada"]}]
    )
    return alice, bob


def test_get_entity_is_one_statement(graphs: tuple[str, str]) -> None:
    alice, bob = graphs
    entity, count = counted(lambda: selectors.get_entity(namespace=alice, name="Ada"))
    assert count == 1
    assert entity == {"name": "Ada", "entityType": "person", "observations": ["writes the release notes", "likes tea"]}
    assert selectors.get_entity(namespace=bob, name="Ada")["observations"] == ["bob's own Ada"]
    for namespace, name in ((alice, "Nobody"), (bob, "Cy"), ("org:nobody:here", "Ada")):
        with pytest.raises(EntityNotFound):
            selectors.get_entity(namespace=namespace, name=name)


def test_open_nodes_is_one_statement_in_the_order_asked(graphs: tuple[str, str]) -> None:
    alice, bob = graphs
    page, count = counted(lambda: selectors.open_nodes(namespace=alice, names=["Cy", "Nobody", "Ada", "Cy"]))
    assert count == 1
    assert [e["name"] for e in page["entities"]] == ["Cy", "Ada"]
    assert page["relations"] == [
        {"from": "Ada", "to": "Bob", "relationType": "mentors"},
        {"from": "Cy", "to": "Ada", "relationType": "helps"},
    ]
    other = selectors.open_nodes(namespace=bob, names=["Ada", "Cy"])
    assert other == {
        "entities": [{"name": "Ada", "entityType": "ghost", "observations": ["bob's own Ada"]}],
        "relations": [],
    }
    assert selectors.open_nodes(namespace="org:nobody:here", names=["Ada"]) == {"entities": [], "relations": []}


def test_a_word_search_is_six_statements(graphs: tuple[str, str]) -> None:
    alice, bob = graphs
    # Namespace, both vocabularies at once (SQLite; PostgreSQL's GIN index needs none), names,
    # observations, entity types (fewer matched than a page holds), and the page with its relations.
    page, count = counted(lambda: selectors.search_nodes(namespace=alice, query="release"))
    assert count == (5 if POSTGRES else 6)
    assert {e["name"] for e in page["entities"]} == {"Ada", "Bob"}
    assert {r["relationType"] for r in page["relations"]} == {"mentors", "helps"}
    assert selectors.search_nodes(namespace=bob, query="release")["entities"] == []
