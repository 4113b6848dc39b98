"""Every read operation of the store: point reads, paging, traversal with real directions."""

from __future__ import annotations

from typing import Any

import pytest

from graph import selectors, services
from graph.exceptions import EntityNotFound, InvalidArgument
from graph.types import EntityDict, RelationDict


def person(name: str, *observations: str, kind: str = "person") -> EntityDict:
    return {"name": name, "entityType": kind, "observations": list(observations)}


def rel(source: str, target: str, kind: str = "knows") -> RelationDict:
    return {"from": source, "to": target, "relationType": kind}


@pytest.fixture
def chain(alice):
    """A -> B -> C -> D, plus A -> C (a shortcut) and E alone."""
    services.create_entities(namespace=alice, entities=[person(n, f"{n} fact") for n in "ABCDE"])
    services.create_relations(
        namespace=alice,
        relations=[rel("A", "B"), rel("B", "C"), rel("C", "D"), rel("A", "C", "shortcut")],
    )
    return alice


def test_get_entity_and_not_found(chain):
    assert selectors.get_entity(namespace=chain, name="A") == person("A", "A fact")
    with pytest.raises(EntityNotFound, match="Entity with name Z not found"):
        selectors.get_entity(namespace=chain, name="Z")


def test_open_nodes_returns_relations_at_either_end_and_skips_missing(chain):
    result = selectors.open_nodes(namespace=chain, names=["B", "Missing", "B"])
    assert result["entities"] == [person("B", "B fact")]
    assert result["relations"] == [rel("A", "B"), rel("B", "C")]


def test_batch_get_and_entity_exists_keep_the_request_order(chain):
    assert selectors.batch_get_entities(namespace=chain, names=["C", "Nope", "A"]) == {
        "entities": [person("C", "C fact"), None, person("A", "A fact")]
    }
    assert selectors.entity_exists(namespace=chain, names=["C", "Nope", "a"]) == {
        "names": ["C", "Nope", "a"],
        "exists": [True, False, False],
    }


def test_read_graph_pages_with_a_cursor_and_never_truncates_silently(alice):
    services.create_entities(namespace=alice, entities=[person(f"E{i:02}") for i in range(25)])
    services.create_relations(namespace=alice, relations=[rel(f"E{i:02}", f"E{i + 1:02}") for i in range(24)])
    seen: list[str] = []
    relations: list[RelationDict] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = selectors.read_graph(namespace=alice, limit=10, cursor=cursor)
        pages += 1
        seen += [e["name"] for e in page["entities"]]
        relations += page["relations"]
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            break
        cursor = page["nextCursor"]
    assert pages == 3
    assert seen == [f"E{i:02}" for i in range(25)]
    assert len(relations) == 24  # every relation exactly once, with the page of its `from` entity
    assert len({(r["from"], r["to"]) for r in relations}) == 24


def test_read_graph_offset_type_filter_and_bad_cursor(alice):
    services.create_entities(
        namespace=alice, entities=[person("P1"), person("X", kind="project"), person("P2"), person("P3")]
    )
    page = selectors.read_graph(namespace=alice, entity_type="person", offset=1, limit=1)
    assert [e["name"] for e in page["entities"]] == ["P2"]
    assert page["hasMore"] is True
    assert selectors.read_graph(namespace=alice, entity_type="nothing")["entities"] == []
    bad_cursors: list[Any] = ["!!!", "bm90LWFuLWlk", 42]
    for bad in bad_cursors:
        with pytest.raises(InvalidArgument, match="cursor"):
            selectors.read_graph(namespace=alice, cursor=bad)
    with pytest.raises(InvalidArgument, match="either cursor or offset"):
        selectors.read_graph(namespace=alice, cursor=page["nextCursor"], offset=3)


def test_graph_stats_and_type_lists(chain):
    services.create_entities(namespace=chain, entities=[person("Proj", kind="project")])
    assert selectors.graph_stats(namespace=chain) == {
        "entities": 6,
        "relations": 4,
        "observations": 5,
        "memories": 0,
        "entityTypes": 2,
        "relationTypes": 2,
    }
    assert selectors.list_entity_types(namespace=chain) == {
        "types": [{"name": "person", "count": 5}, {"name": "project", "count": 1}]
    }
    assert selectors.list_relation_types(namespace=chain) == {
        "types": [{"name": "knows", "count": 3}, {"name": "shortcut", "count": 1}]
    }
    # Types with no users left disappear from the lists.
    services.delete_entities(namespace=chain, entity_names=["Proj"])
    assert [t["name"] for t in selectors.list_entity_types(namespace=chain)["types"]] == ["person"]


def test_search_relations_filters_and_pages(chain):
    assert selectors.search_relations(namespace=chain, from_="A")["relations"] == [
        rel("A", "B"),
        rel("A", "C", "shortcut"),
    ]
    assert selectors.search_relations(namespace=chain, to="C", relation_type="knows")["relations"] == [rel("B", "C")]
    assert selectors.search_relations(namespace=chain, from_="Nobody")["relations"] == []
    first = selectors.search_relations(namespace=chain, limit=3)
    assert first["hasMore"] is True
    rest = selectors.search_relations(namespace=chain, limit=3, offset=first["nextOffset"])
    assert len(first["relations"]) + len(rest["relations"]) == 4


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("out", {"degree": 1}), ("in", {"degree": 2}), ("both", {"degree": 3}), (None, {"degree": 3})],
)
def test_degree_honours_direction(chain, direction, expected):
    result = selectors.degree(namespace=chain, name="C", direction=direction)
    assert result["degree"] == expected["degree"]
    assert (result["inDegree"], result["outDegree"]) == (2, 1)


def test_bad_direction_is_a_clear_error(chain):
    with pytest.raises(InvalidArgument, match="direction must be one of"):
        selectors.degree(namespace=chain, name="C", direction="sideways")


def test_get_neighbors_follows_the_direction_asked(chain):
    out = selectors.get_neighbors(namespace=chain, name="C", direction="out")
    assert [e["name"] for e in out["entities"]] == ["D"]
    incoming = selectors.get_neighbors(namespace=chain, name="C", direction="in")
    assert sorted(e["name"] for e in incoming["entities"]) == ["A", "B"]
    both = selectors.get_neighbors(namespace=chain, name="C")
    assert sorted(e["name"] for e in both["entities"]) == ["A", "B", "D"]
    two_out = selectors.get_neighbors(namespace=chain, name="A", direction="out", depth=2)
    assert two_out["distances"] == {"B": 1, "C": 1, "D": 2}
    typed = selectors.get_neighbors(namespace=chain, name="A", relation_type="shortcut")
    assert [e["name"] for e in typed["entities"]] == ["C"]
    assert typed["relations"] == [rel("A", "C", "shortcut")]
    assert selectors.get_neighbors(namespace=chain, name="A", depth=0)["entities"] == []
    assert selectors.get_neighbors(namespace=chain, name="E")["entities"] == []


def test_find_path_is_shortest_and_respects_direction(chain):
    path = selectors.find_path(namespace=chain, from_="A", to="D")
    assert path == {
        "found": True,
        "path": ["A", "C", "D"],
        "relations": [rel("A", "C", "shortcut"), rel("C", "D")],
        "length": 2,
    }
    # Undirected by default, so D reaches A; following only outgoing edges it cannot.
    assert selectors.find_path(namespace=chain, from_="D", to="A")["path"] == ["D", "C", "A"]
    assert selectors.find_path(namespace=chain, from_="D", to="A", direction="out")["found"] is False
    assert selectors.find_path(namespace=chain, from_="D", to="A", direction="in")["path"] == ["D", "C", "A"]
    assert selectors.find_path(namespace=chain, from_="A", to="E") == {
        "found": False,
        "path": [],
        "relations": [],
        "length": None,
    }
    assert selectors.find_path(namespace=chain, from_="A", to="D", max_depth=1)["found"] is False
    assert selectors.find_path(namespace=chain, from_="B", to="B")["path"] == ["B"]
    with pytest.raises(EntityNotFound):
        selectors.find_path(namespace=chain, from_="A", to="Z")


def test_find_all_paths_lists_simple_paths_shortest_first(chain):
    result = selectors.find_all_paths(namespace=chain, from_="A", to="D")
    assert result["paths"] == [["A", "C", "D"], ["A", "B", "C", "D"]]
    assert result["relations"][0] == [rel("A", "C", "shortcut"), rel("C", "D")]
    assert (result["count"], result["truncated"]) == (2, False)
    capped = selectors.find_all_paths(namespace=chain, from_="A", to="D", max_paths=1)
    assert (capped["paths"], capped["truncated"]) == ([["A", "C", "D"]], True)
    assert selectors.find_all_paths(namespace=chain, from_="A", to="D", max_depth=2)["paths"] == [["A", "C", "D"]]
    assert selectors.find_all_paths(namespace=chain, from_="D", to="A", direction="out")["paths"] == []


def test_extract_subgraph_collects_the_neighbourhood_and_its_internal_relations(chain):
    result = selectors.extract_subgraph(namespace=chain, names=["D"], depth=1)
    assert [e["name"] for e in result["entities"]] == ["D", "C"]
    assert result["relations"] == [rel("C", "D")]
    wider = selectors.extract_subgraph(namespace=chain, names=["D", "Missing"], depth=2)
    assert sorted(e["name"] for e in wider["entities"]) == ["A", "B", "C", "D"]
    assert len(wider["relations"]) == 4


def test_describe_entity_gives_relations_neighbours_and_degree(chain):
    result = selectors.describe_entity(namespace=chain, name="C")
    assert result["entity"] == person("C", "C fact")
    assert result["outgoing"] == [rel("C", "D")]
    assert result["incoming"] == [rel("B", "C"), rel("A", "C", "shortcut")]
    assert result["neighbors"] == ["D", "B", "A"]
    assert result["degree"]["degree"] == 3
    assert result["hasMoreRelations"] is False
    assert selectors.describe_entity(namespace=chain, name="C", limit=1)["hasMoreRelations"] is True


def test_expired_observations_are_not_returned(chain):
    from datetime import UTC, datetime

    from graph.models import Observation

    Observation.objects.filter(body="A fact").update(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
    assert selectors.get_entity(namespace=chain, name="A")["observations"] == []
    assert selectors.search_nodes(namespace=chain, query="fact", limit=10)["entities"][0]["name"] != "A"
