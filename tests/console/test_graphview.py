"""The console's graph view, its JSON and entity pages (console/graphview.py, graph/browse.py),
through the Django client against a real SQLite database. Data is written through the REST API
with each persona's key, so history rows carry a real key and surface."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from access.models import NamespaceAllowance
from access.operations import perform
from access.permissions import Access, Grant, Permission
from graph import browse
from tests.conftest import Persona

ALICE_NS = "org:alice:notes"
BOB_NS = "org:bob:notes"
HOSTILE_NAME = '"><img src=x onerror=alert(1)>'
HOSTILE_SCRIPT = "<script>window.__pwned = 1</script>"
HOSTILE_LINK = "javascript:alert(1)"
SLASHED = "projects/2025 plan"


def _api(client: Client, persona: Persona, operation: str, body: dict[str, Any]) -> Any:
    response = client.post(
        f"/v1/graph/{operation}", json.dumps(body), content_type="application/json", **persona.headers
    )
    assert response.status_code == 200, response.content
    return response.json()


def _entity(name: str, entity_type: str = "person", *observations: str) -> dict[str, Any]:
    return {"name": name, "entityType": entity_type, "observations": list(observations)}


@pytest.fixture
def alice_user(alice_key: Persona) -> Persona:
    NamespaceAllowance.objects.create(user=alice_key.user, pattern="org:alice:*", permission="write")
    return alice_key


@pytest.fixture
def bob_user(bob_key: Persona) -> Persona:
    NamespaceAllowance.objects.create(user=bob_key.user, pattern="org:bob:*", permission="write")
    return bob_key


@pytest.fixture
def star(alice_user: Persona) -> Persona:
    """alice's graph: a hub with five spokes, a pair, a hostile entity and one with '/' in its name."""
    client = Client()
    spokes = [f"spoke-{n}" for n in range(5)]
    _api(
        client,
        alice_user,
        "create_entities",
        {
            "namespace": ALICE_NS,
            "entities": [
                _entity("Hub", "project", "the centre of it all"),
                *(_entity(name, "person") for name in spokes),
                _entity("Lone A", "place"),
                _entity("Lone B", "place"),
                _entity(HOSTILE_NAME, "<b>type</b>", HOSTILE_SCRIPT, HOSTILE_LINK),
                _entity(SLASHED, "plan", "due in\nMarch"),
            ],
        },
    )
    relations = [{"from": name, "to": "Hub", "relationType": "works_on"} for name in spokes]
    relations += [
        {"from": "Lone A", "to": "Lone B", "relationType": "near"},
        {"from": HOSTILE_NAME, "to": "Hub", "relationType": "<i>rel</i>"},
        {"from": SLASHED, "to": "Hub", "relationType": "plans"},
    ]
    _api(client, alice_user, "create_relations", {"namespace": ALICE_NS, "relations": relations})
    return alice_user


def _signed_in(persona: Persona) -> Client:
    client = Client()
    client.force_login(persona.user)
    return client


def _owner() -> Access:
    return Access(grants=(Grant("org:alice:*", Permission.WRITE),))


# --- the ops ---------------------------------------------------------------------------------------


def test_the_sample_is_the_most_connected_first_with_the_relations_among_them(star: Persona) -> None:
    drawing = perform(_owner(), "graph_sample", namespace=ALICE_NS, limit=3)
    names = [node["name"] for node in drawing["nodes"]]
    assert names[0] == "Hub"  # 7 relations in
    assert len(names) == 3
    assert drawing["truncated"] is True
    assert all(r["from"] in names and r["to"] in names for r in drawing["relations"])
    whole = perform(_owner(), "graph_sample", namespace=ALICE_NS)
    assert len(whole["nodes"]) == 10
    assert whole["truncated"] is False
    assert {"from": "spoke-0", "to": "Hub", "relationType": "works_on"} in whole["relations"]
    hub = whole["nodes"][0]
    assert hub == {"name": "Hub", "entityType": "project", "observationCount": 1, "degree": 7}


def test_the_sample_filters_by_entity_and_relation_type_and_is_capped(star: Persona) -> None:
    places = perform(_owner(), "graph_sample", namespace=ALICE_NS, entity_type="place")
    assert {node["name"] for node in places["nodes"]} == {"Lone A", "Lone B"}
    assert places["relations"] == [{"from": "Lone A", "to": "Lone B", "relationType": "near"}]
    near = perform(_owner(), "graph_sample", namespace=ALICE_NS, relation_type="works_on")
    assert {node["name"] for node in near["nodes"]} == {"Hub", *(f"spoke-{n}" for n in range(5))}
    assert {r["relationType"] for r in near["relations"]} == {"works_on"}
    assert perform(_owner(), "graph_sample", namespace=ALICE_NS, entity_type="no such")["nodes"] == []
    capped = perform(_owner(), "graph_sample", namespace=ALICE_NS, limit=10_000)
    assert len(capped["nodes"]) <= browse.MAX_SAMPLE


def test_a_neighbourhood_is_bounded_and_keeps_the_seed_first(star: Persona) -> None:
    one = perform(_owner(), "graph_neighbourhood", namespace=ALICE_NS, names=["spoke-0"])
    assert [node["name"] for node in one["nodes"]] == ["spoke-0", "Hub"]
    two = perform(_owner(), "graph_neighbourhood", namespace=ALICE_NS, names=["spoke-0"], depth=2)
    assert len(two["nodes"]) == 8
    assert two["nodes"][0]["name"] == "spoke-0"
    cut = perform(_owner(), "graph_neighbourhood", namespace=ALICE_NS, names=["Hub"], limit=3)
    assert len(cut["nodes"]) == 3
    assert cut["truncated"] is True
    people = perform(_owner(), "graph_neighbourhood", namespace=ALICE_NS, names=["Hub"], entity_type="person")
    assert {node["entityType"] for node in people["nodes"][1:]} == {"person"}


# --- graph page and graph.json ---------------------------------------------------------------------


def test_the_graph_page_serves_the_sample_as_a_list_and_as_data_for_the_script(star: Persona) -> None:
    response = _signed_in(star).get(reverse("console:graph", args=[ALICE_NS]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'src="/static/vendor/cytoscape/cytoscape.min.js"' in html
    assert 'id="graph-canvas"' in html
    assert 'aria-label="Knowledge graph of' in html
    hub_url = reverse("console:entity", args=[ALICE_NS, "Hub"])
    assert f'href="{hub_url}"' in html
    config = json.loads(html.split('<script id="graph-config" type="application/json">')[1].split("</script>")[0])
    assert config["drawing"]["nodes"][0]["name"] == "Hub"
    assert config["dataUrl"] == reverse("console:graph-data", args=[ALICE_NS])
    assert '<option value="works_on">works_on (5)</option>' in html


def test_the_graph_page_focuses_on_an_entity(star: Persona) -> None:
    client = _signed_in(star)
    response = client.get(reverse("console:graph", args=[ALICE_NS]), {"focus": SLASHED})
    assert response.status_code == 200
    names = [node["name"] for node in response.context["drawing"]["nodes"]]
    assert names[:2] == [SLASHED, "Hub"]
    missing = client.get(reverse("console:graph", args=[ALICE_NS]), {"focus": "nobody"})
    assert missing.status_code == 404
    assert "There is no entity called" in missing.content.decode()


def _data(client: Client, namespace: str = ALICE_NS, **params: Any) -> Any:
    return client.get(reverse("console:graph-data", args=[namespace]), params)


def test_graph_json_modes(star: Persona) -> None:
    client = _signed_in(star)
    sample = _data(client, mode="sample", entityType="person")
    assert sample.status_code == 200
    assert {node["entityType"] for node in sample.json()["nodes"]} == {"person"}
    around = _data(client, mode="neighbours", name="Lone A").json()
    assert [node["name"] for node in around["nodes"]] == ["Lone A", "Lone B"]
    assert around["relations"] == [{"from": "Lone A", "to": "Lone B", "relationType": "near"}]
    found = _data(client, mode="find", q="spoke").json()
    assert {match["name"] for match in found["matches"]} == {f"spoke-{n}" for n in range(5)}
    facts = _data(client, mode="entity", name="Hub").json()
    assert facts["entity"]["name"] == "Hub"
    assert facts["entity"]["inDegree"] == 7
    (observation,) = facts["observations"]
    assert observation["text"] == "the centre of it all"
    assert observation["url"] == f"/console/memories/{observation['id']}"
    assert observation["surface"] == "rest"
    assert observation["key"] == f"key:{star.key.prefix}"
    assert len(facts["incoming"]) == 7


def test_graph_json_errors_in_the_api_shape(star: Persona) -> None:
    client = _signed_in(star)
    unknown = _data(client, mode="entity", name="nobody")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert _data(client, mode="neighbours", name="nobody").status_code == 404
    assert _data(client, mode="bogus").json()["error"]["code"] == "invalid_argument"
    assert _data(client, mode="find").status_code == 400
    assert _data(client, mode="neighbours").status_code == 400
    assert _data(client, namespace="not a namespace!").status_code == 404


def test_hostile_names_are_escaped_in_html_and_plain_strings_in_json(star: Persona) -> None:
    client = _signed_in(star)
    page = client.get(reverse("console:graph", args=[ALICE_NS])).content.decode()
    assert "<img src=x" not in page
    assert "<b>type</b>" not in page
    assert "<i>rel</i>" not in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    # json_script escapes <, > and & so the data cannot end its script element.
    assert "\\u003Cimg src=x" in page
    entity = client.get(reverse("console:entity", args=[ALICE_NS, HOSTILE_NAME]))
    assert entity.status_code == 200
    html = entity.content.decode()
    assert "<script>window.__pwned" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert "href='javascript:" not in html
    facts = _data(client, mode="entity", name=HOSTILE_NAME).json()
    assert facts["entity"]["name"] == HOSTILE_NAME
    assert {o["text"] for o in facts["observations"]} == {HOSTILE_SCRIPT, HOSTILE_LINK}
    assert _data(client, mode="find", q="onerror").status_code == 200


# --- entity pages ----------------------------------------------------------------------------------


def test_the_entity_page_shows_dates_authors_relations_and_history(star: Persona) -> None:
    client = Client()
    _api(client, star, "supersede_observation", {"namespace": ALICE_NS, "entityName": "Hub",
         "old": "the centre of it all", "new": "the heart of it all"})  # fmt: skip
    signed = _signed_in(star)
    response = signed.get(reverse("console:entity", args=[ALICE_NS, "Hub"]))
    assert response.status_code == 200
    html = response.content.decode()
    observations = response.context["observations"]
    assert [o["text"] for o in observations] == ["the heart of it all", "the centre of it all"]
    new, old = observations
    assert new["current"]
    assert not old["current"]
    assert old["validTo"]
    assert new["supersedes"] == old["id"]
    assert f'href="/console/memories/{new["id"]}"' in html
    assert f"key:{star.key.prefix}" in html
    assert "via rest" in html
    assert f"by {star.user.get_username()}" in html  # the history names who, not a user id
    assert new["username"] == star.user.get_username()  # and so does each observation
    assert 'pill-past">past' in html
    assert 'pill-current">current' in html
    assert f'href="{reverse("console:entity", args=[ALICE_NS, SLASHED])}"' in html
    assert f'href="{reverse("console:graph", args=[ALICE_NS])}?focus=Hub"' in html
    versions = response.context["versions"]
    assert versions[0]["changedAt"] >= versions[-1]["changedAt"]
    actions = [v["action"] for v in versions]
    assert "close" in actions
    assert "create" in actions
    created = next(v for v in versions if v["action"] == "create" and v["text"] == "the heart of it all")
    assert {"field": "text", "before": None, "after": "the heart of it all"} in created["changes"]


def test_entity_names_with_slashes_spaces_and_line_breaks_have_pages(star: Persona) -> None:
    client = _signed_in(star)
    url = reverse("console:entity", args=[ALICE_NS, SLASHED])
    assert "/entities/projects/2025" in url
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["entity"]["name"] == SLASHED
    # The script builds the same pages with encodeURIComponent.
    quoted = reverse("console:graph", args=[ALICE_NS]).removesuffix("graph") + "entities/" + quote(SLASHED, safe="")
    assert client.get(quoted).context["entity"]["name"] == SLASHED
    assert client.get(reverse("console:entity", args=[ALICE_NS, "nobody"])).status_code == 404


def test_an_entity_with_many_facts_is_paginated(alice_user: Persona) -> None:
    client = Client()
    texts = [f"fact number {n}" for n in range(60)]
    _api(client, alice_user, "create_entities", {"namespace": ALICE_NS, "entities": [_entity("Busy", "thing", *texts)]})
    signed = _signed_in(alice_user)
    url = reverse("console:entity", args=[ALICE_NS, "Busy"])
    first = signed.get(url)
    assert len(first.context["observations"]) == 50
    assert first.context["more_observations"] == f"{url}?observations=50"
    second = signed.get(first.context["more_observations"])
    assert len(second.context["observations"]) == 10
    assert not second.context["more_observations"]
    assert signed.get(url, {"observations": "x"}).status_code == 404


# --- tenants ---------------------------------------------------------------------------------------


def test_bob_sees_nothing_of_alices_graph(star: Persona, bob_user: Persona) -> None:
    bob = _signed_in(bob_user)
    for response in (
        bob.get(reverse("console:graph", args=[ALICE_NS])),
        bob.get(reverse("console:graph", args=[ALICE_NS]), {"focus": "Hub"}),
        bob.get(reverse("console:entity", args=[ALICE_NS, "Hub"])),
        bob.get(reverse("console:entity", args=[ALICE_NS, "nobody"])),
        bob.get(reverse("console:graph", args=["org:alice:absent"])),
    ):
        assert response.status_code == 403
        assert "Hub" not in response.content.decode() or "Hub" not in response.content.decode().split("<main")[-1]
        assert "the centre of it all" not in response.content.decode()
    for mode, extra in (
        ("sample", {}),
        ("neighbours", {"name": "Hub"}),
        ("find", {"q": "spoke"}),
        ("entity", {"name": "Hub"}),
    ):
        response = _data(bob, mode=mode, **extra)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert "spoke" not in response.content.decode()
    # And the other way round: bob's own (empty) graph answers, with nothing of alice's.
    own = bob.get(reverse("console:graph", args=[BOB_NS]))
    assert own.status_code == 200
    assert "spoke-0" not in own.content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(star: Persona) -> None:
    for url in (
        reverse("console:graph", args=[ALICE_NS]),
        reverse("console:graph-data", args=[ALICE_NS]),
        reverse("console:entity", args=[ALICE_NS, "Hub"]),
    ):
        response = Client().get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]
