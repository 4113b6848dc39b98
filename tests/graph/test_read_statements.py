"""The read tools agents call most are few statements each. On SQLite the sqlite3 module gives up
the GIL around every statement, and under load the database thread then waits to get it back
(bench/load.py measured +5 to +25% get_entity calls a second from two statements fewer); on
PostgreSQL every statement is a round trip. These tests pin the counts, and that the folded
reads keep their answers and their namespace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from graph import recent, selectors, services
from graph.exceptions import EntityNotFound
from kernel.sql import POSTGRES
from tests.graph.statements import statements


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


def assert_not_found(read: Callable[..., Any], graphs: tuple[str, str]) -> None:
    """`read(namespace=, name=)` raises EntityNotFound for a missing name, for another namespace's
    entity, and in a namespace that does not exist."""
    alice, bob = graphs
    for namespace, name in ((alice, "Nobody"), (bob, "Cy"), ("org:nobody:here", "Ada")):
        with pytest.raises(EntityNotFound):
            read(namespace=namespace, name=name)


def test_get_entity_is_one_statement(graphs: tuple[str, str]) -> None:
    alice, bob = graphs
    entity, count = counted(lambda: selectors.get_entity(namespace=alice, name="Ada"))
    assert count == 1
    assert entity == {"name": "Ada", "entityType": "person", "observations": ["writes the release notes", "likes tea"]}
    assert selectors.get_entity(namespace=bob, name="Ada")["observations"] == ["bob's own Ada"]
    assert_not_found(selectors.get_entity, graphs)


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


def test_a_word_search_is_five_statements(graphs: tuple[str, str]) -> None:
    alice, bob = graphs
    # The namespace with its entity types, both vocabularies at once (SQLite; PostgreSQL's GIN
    # index needs none), names, observations, and the page with its relations.
    # PostgreSQL: the word statistics are read once per process every few minutes, not by each search.
    recent.statistics("graph_entity")
    recent.statistics("graph_observation")
    page, count = counted(lambda: selectors.search_nodes(namespace=alice, query="release"))
    assert count == (4 if POSTGRES else 5)
    assert {e["name"] for e in page["entities"]} == {"Ada", "Bob"}
    assert {r["relationType"] for r in page["relations"]} == {"mentors", "helps"}
    assert selectors.search_nodes(namespace=bob, query="release")["entities"] == []


def test_degree_is_one_statement(graphs: tuple[str, str]) -> None:
    alice, bob = graphs
    result, count = counted(lambda: selectors.degree(namespace=alice, name="Ada"))
    assert count == 1
    assert (result["inDegree"], result["outDegree"], result["degree"]) == (1, 1, 2)
    assert selectors.degree(namespace=bob, name="Ada")["degree"] == 0
    assert_not_found(selectors.degree, graphs)


def test_describe_entity_is_two_statements(graphs: tuple[str, str]) -> None:
    alice, bob = graphs
    # The entity with its id and degree, then its relations both ways.
    described, count = counted(lambda: selectors.describe_entity(namespace=alice, name="Ada"))
    assert count == 2
    assert described == {
        "entity": {"name": "Ada", "entityType": "person", "observations": ["writes the release notes", "likes tea"]},
        "degree": {"name": "Ada", "direction": "both", "degree": 2, "inDegree": 1, "outDegree": 1},
        "outgoing": [{"from": "Ada", "to": "Bob", "relationType": "mentors"}],
        "incoming": [{"from": "Cy", "to": "Ada", "relationType": "helps"}],
        "neighbors": ["Bob", "Cy"],
        "hasMoreRelations": False,
    }
    limited = selectors.describe_entity(namespace=alice, name="Ada", limit=1)
    assert (len(limited["outgoing"]), len(limited["incoming"]), limited["hasMoreRelations"]) == (1, 1, False)
    services.create_relations(namespace=alice, relations=[{"from": "Ada", "to": "Cy", "relationType": "thanks"}])
    limited = selectors.describe_entity(namespace=alice, name="Ada", limit=1)
    assert limited["outgoing"] == [{"from": "Ada", "to": "Bob", "relationType": "mentors"}]
    assert limited["hasMoreRelations"] is True
    other = selectors.describe_entity(namespace=bob, name="Ada")
    assert (other["outgoing"], other["incoming"], other["neighbors"]) == ([], [], [])
    assert_not_found(selectors.describe_entity, graphs)


def test_neighbours_both_ways_are_four_statements(graphs: tuple[str, str]) -> None:
    alice, bob = graphs
    # The centre's id, one step both ways, the neighbours, the relations walked.
    around, count = counted(lambda: selectors.get_neighbors(namespace=alice, name="Ada"))
    assert count == 4
    assert around["distances"] == {"Bob": 1, "Cy": 1}
    assert [r["relationType"] for r in around["relations"]] == ["mentors", "helps"]
    assert selectors.get_neighbors(namespace=alice, name="Ada", direction="in")["distances"] == {"Cy": 1}
    assert selectors.get_neighbors(namespace=alice, name="Cy", depth=2)["distances"] == {"Ada": 1, "Bob": 2}
    assert selectors.get_neighbors(namespace=bob, name="Ada")["distances"] == {}
    assert_not_found(selectors.get_neighbors, graphs)


def test_a_path_starts_with_one_statement_for_both_ends(graphs: tuple[str, str]) -> None:
    alice, bob = graphs
    # Both ends, one step from each side (both ways each), the relations, the names.
    path, count = counted(lambda: selectors.find_path(namespace=alice, from_="Cy", to="Bob"))
    assert count == 5
    assert path["path"] == ["Cy", "Ada", "Bob"]
    assert selectors.find_path(namespace=alice, from_="Bob", to="Cy", direction="out")["found"] is False
    for ends in (("Cy", "Nobody"), ("Nobody", "Cy")):
        with pytest.raises(EntityNotFound, match="Nobody"):
            selectors.find_path(namespace=alice, from_=ends[0], to=ends[1])
    with pytest.raises(EntityNotFound):
        selectors.find_path(namespace=bob, from_="Ada", to="Cy")
