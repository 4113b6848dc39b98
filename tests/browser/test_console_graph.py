"""The console's graph view and entity pages in a real browser (Playwright + Debian's chromium)
against a real server: alice's graph, written through the REST API with her key, drawn with
Cytoscape, selected, expanded, found and filtered; bob sees none of it."""

from __future__ import annotations

import itertools
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.browser.console_harness import (
    HOSTILE,
    PHONE,
    api,
    assert_accessible,
    assert_not_pwned,
    create_entities,
    create_relations,
    no_horizontal_scroll,
    screenshot,
    signed_in,
)
from tests.mcp_endpoint.conftest import McpServer

HOSTILE_NAME = HOSTILE[1]
SLASHED = "docs/readme v2"


@pytest.fixture(scope="module")
def graph(console: McpServer) -> str:
    """alice's namespace with 29 entities: a project, its people, their places and tools, a chain,
    a hostile-named entity and one with '/' in its name."""
    namespace = console.namespace("alice")
    people = [f"Person {n}" for n in range(12)]
    places = [f"Place {n}" for n in range(8)]
    tools = [f"Tool {n}" for n in range(6)]
    chain = [f"Chain {n}" for n in range(8)]
    entities = [
        {"name": "Hub Project", "entityType": "project", "observations": ["started in spring", "has twelve people"]},
        *({"name": name, "entityType": "person", "observations": [f"{name} works here"]} for name in people),
        *({"name": name, "entityType": "place", "observations": []} for name in places),
        *({"name": name, "entityType": "tool", "observations": []} for name in tools),
        *({"name": name, "entityType": "link", "observations": ["a link in the chain"]} for name in chain),
        {"name": HOSTILE_NAME, "entityType": HOSTILE[0], "observations": [HOSTILE[0], HOSTILE[2]]},
        {"name": SLASHED, "entityType": "document", "observations": ["describes the project"]},
    ]
    create_entities(console, "alice", namespace, entities)
    relations = [{"from": name, "to": "Hub Project", "relationType": "works_on"} for name in people]
    relations += [{"from": name, "to": places[n % 8], "relationType": "lives_in"} for n, name in enumerate(people)]
    relations += [{"from": name, "to": people[n], "relationType": "used_by"} for n, name in enumerate(tools)]
    relations += [{"from": a, "to": b, "relationType": "next"} for a, b in itertools.pairwise(chain)]
    relations += [
        {"from": HOSTILE_NAME, "to": "Hub Project", "relationType": HOSTILE[2]},
        {"from": SLASHED, "to": "Hub Project", "relationType": "documents"},
    ]
    create_relations(console, "alice", namespace, relations)
    status, stats = api(console, "alice", "/v1/graph/graph_stats", {"namespace": namespace})
    assert status == 200
    assert stats["entities"] == 37
    return namespace


def _graph_url(namespace: str) -> str:
    return f"/console/namespaces/{namespace}/graph"


def _entity_url(namespace: str, name: str) -> str:
    return f"/console/namespaces/{namespace}/entities/{quote(name, safe='')}"


def _drawn(page: Page) -> int:
    count: int = page.evaluate("() => window.memoryhubGraph.nodes().length")
    return count


def _wait_for_drawn(page: Page, count: int) -> None:
    page.wait_for_function("(n) => window.memoryhubGraph && window.memoryhubGraph.nodes().length === n", arg=count)


def _open_graph(page: Page, namespace: str) -> None:
    page.goto(_graph_url(namespace))
    expect(page.locator("#graph-canvas[data-ready='true']")).to_be_visible()


def test_alice_draws_selects_filters_finds_and_expands_her_graph(console: McpServer, graph: str) -> None:
    # 37 entities, the sample draws at most 60: all of them, with every relation.
    with signed_in(console, "alice") as page:
        _open_graph(page, graph)
        assert _drawn(page) == 37
        assert page.evaluate("() => window.memoryhubGraph.edges().length") == 12 + 12 + 6 + 7 + 2
        panel = page.locator("#graph-panel")

        # Select a node by clicking it on the canvas: its observations show in the panel, as text.
        position = page.evaluate(
            "(name) => window.memoryhubGraph.getElementById(name).renderedPosition()", HOSTILE_NAME
        )
        box = page.locator("#graph-canvas").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + position["x"], box["y"] + position["y"])
        expect(panel.get_by_role("heading", name=HOSTILE_NAME)).to_be_visible()
        texts = panel.locator(".memory-text")
        expect(texts).to_have_text([HOSTILE[2], HOSTILE[0]])  # newest first
        assert_not_pwned(page)

        # Select from the text alternative by keyboard.
        page.locator("#graph-entity-list").get_by_role("button", name="Hub Project", exact=True).focus()
        page.keyboard.press("Enter")
        expect(panel.get_by_text("started in spring")).to_be_visible()
        expect(panel.get_by_role("link", name="Person 0", exact=True)).to_be_visible()

        # Filters reduce what is drawn (and bring it back).
        page.get_by_label("Entity type").select_option("place")
        _wait_for_drawn(page, 8)
        page.get_by_label("Entity type").select_option("")
        _wait_for_drawn(page, 37)
        page.get_by_label("Relation type").select_option("next")
        _wait_for_drawn(page, 8)
        assert page.evaluate("() => window.memoryhubGraph.edges().length") == 7
        page.get_by_label("Relation type").select_option("")
        _wait_for_drawn(page, 37)

        # Find a node: its neighbourhood is drawn and it is selected.
        page.get_by_label("Find a node").fill("Chain 3")
        page.get_by_role("button", name="Find", exact=True).click()
        page.locator("#graph-matches").get_by_role("button", name="Chain 3", exact=True).click()
        _wait_for_drawn(page, 3)
        expect(panel.get_by_role("heading", name="Chain 3")).to_be_visible()
        assert sorted(page.evaluate("() => window.memoryhubGraph.nodes().map(n => n.id())")) == [
            "Chain 2",
            "Chain 3",
            "Chain 4",
        ]

        # Expand a neighbourhood: its neighbours join the drawing.
        page.locator("#graph-entity-list").get_by_role("button", name="Chain 4", exact=True).click()
        expect(panel.get_by_role("heading", name="Chain 4")).to_be_visible()
        # Past the cap of nodes on screen an expansion is refused with a notice (the cap lowered
        # to what is drawn; the page's own is 400).
        page.evaluate("() => { window.memoryhubGraphConfig.maxOnScreen = 3; }")
        panel.get_by_role("button", name="Expand neighbourhood").click()
        expect(page.locator("#graph-notice")).to_contain_text("more than the 3 this view draws at once")
        expect(page.locator("#graph-notice").get_by_role("link")).to_have_attribute(
            "href", f"{_graph_url(graph)}?focus=Chain%204"
        )
        assert _drawn(page) == 3
        page.evaluate("() => { window.memoryhubGraphConfig.maxOnScreen = 400; }")
        panel.get_by_role("button", name="Expand neighbourhood").click()
        _wait_for_drawn(page, 4)
        expect(page.locator("#graph-notice")).to_contain_text("Added 1 neighbours of Chain 4")

        # Zoom buttons work for keyboard users.
        before = page.evaluate("() => window.memoryhubGraph.zoom()")
        page.get_by_role("button", name="Zoom in").click()
        assert page.evaluate("() => window.memoryhubGraph.zoom()") > before

        page.get_by_role("button", name="Sample", exact=True).click()
        _wait_for_drawn(page, 37)
        assert_not_pwned(page)
        assert_accessible(page)
        screenshot(page, "console-graph-1280")


def test_the_graph_fits_a_phone_and_focus_links_open_a_neighbourhood(console: McpServer, graph: str) -> None:
    with signed_in(console, "alice", width=PHONE) as page:
        page.goto(f"{_graph_url(graph)}?focus={quote(SLASHED)}")
        expect(page.locator("#graph-canvas[data-ready='true']")).to_be_visible()
        assert _drawn(page) == 2
        expect(page.locator("#graph-panel").get_by_role("heading", name=SLASHED)).to_be_visible()
        no_horizontal_scroll(page)
        assert_accessible(page)
        assert_not_pwned(page)
        screenshot(page, "console-graph-390")


def test_entity_pages_show_observations_relations_and_history(console: McpServer, graph: str) -> None:
    with signed_in(console, "alice") as page:
        _open_graph(page, graph)
        page.locator("#graph-entity-list").get_by_role("button", name=HOSTILE_NAME, exact=True).click()
        page.locator("#graph-panel").get_by_role("link", name="Open entity page").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE_NAME)
        expect(page.locator("table .memory-text")).to_have_text([HOSTILE[2], HOSTILE[0]])
        expect(page.get_by_role("link", name="Hub Project")).to_be_visible()
        expect(page.get_by_role("heading", name="History")).to_be_visible()
        assert page.locator(".entity-history li").count() >= 3  # the entity, its two observations, its relation
        assert_not_pwned(page)
        assert_accessible(page)
        screenshot(page, "console-entity-1280")

        page.get_by_role("link", name="Show it in the graph").click()
        expect(page.locator("#graph-canvas[data-ready='true']")).to_be_visible()
        assert _drawn(page) == 2

    with signed_in(console, "alice", width=PHONE) as page:
        page.goto(_entity_url(graph, SLASHED))
        expect(page.get_by_role("heading", level=1)).to_have_text(SLASHED)
        no_horizontal_scroll(page)
        assert_accessible(page)
        screenshot(page, "console-entity-390")


def test_bob_gets_the_403_page_for_alices_graph_and_entities(console: McpServer, graph: str) -> None:
    with signed_in(console, "bob") as page:
        for url in (_graph_url(graph), _entity_url(graph, "Hub Project"), _entity_url(graph, "nobody")):
            response = page.goto(url)
            assert response is not None
            assert response.status == 403
            expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
            assert "Person 0" not in page.content()
        response = page.goto(f"/console/namespaces/{graph}/graph.json?mode=sample")
        assert response is not None
        assert response.status == 403
        assert "Hub Project" not in page.content()
