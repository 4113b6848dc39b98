"""REST graph API: every endpoint, every kind of caller.

For each operation: no key -> 401, a key without a grant on the namespace -> 403, the right
grant -> 200, and a read grant cannot write. Then namespace resolution, error shapes and the
mapping of wire argument names.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.test import Client

from access.operations import Reach
from access.permissions import Permission
from graph import services
from graph.operations import OPERATIONS
from tests.conftest import ALICE, BOB, Persona


def _entity(name: str) -> dict[str, Any]:
    return {"name": name, "entityType": "person", "observations": [f"{name} exists"]}


# A valid body for each operation, against the graph made by `seeded` (A -knows-> B, C alone).
BODIES: dict[str, dict[str, Any]] = {
    "create_entities": {"entities": [_entity("D")]},
    "create_relations": {"relations": [{"from": "A", "to": "C", "relationType": "knows"}]},
    "add_observations": {"observations": [{"entityName": "A", "contents": ["likes tea"]}]},
    "delete_entities": {"entityNames": ["C"]},
    "delete_observations": {"deletions": [{"entityName": "A", "observations": ["A exists"]}]},
    "delete_relations": {"relations": [{"from": "A", "to": "B", "relationType": "knows"}]},
    "upsert_entities": {"entities": [_entity("A"), _entity("E")]},
    "merge_entities": {"source": "C", "target": "B"},
    "rename_entity": {"name": "C", "newName": "Cee"},
    "supersede_observation": {"entityName": "A", "old": "A exists", "new": "A existed"},
    "declare_relation_type": {"relationType": "knows", "functional": True},
    "compact": {},
    "read_graph": {"limit": 10},
    "search_nodes": {"query": "exists"},
    "open_nodes": {"names": ["A", "B"]},
    "get_entity": {"name": "A"},
    "batch_get_entities": {"names": ["A", "nope"]},
    "entity_exists": {"names": ["A", "nope"]},
    "graph_stats": {},
    "list_entity_types": {},
    "list_relation_types": {},
    "search_relations": {"from": "A"},
    "degree": {"name": "A", "direction": "out"},
    "describe_entity": {"name": "A"},
    "get_neighbors": {"name": "A", "depth": 2},
    "extract_subgraph": {"names": ["A"], "depth": 1},
    "find_path": {"from": "A", "to": "B"},
    "find_all_paths": {"from": "A", "to": "B", "maxDepth": 3, "maxPaths": 5},
    "export_graph": {"format": "mermaid"},
    "entity_history": {"name": "A"},
}
NAMESPACED = sorted(name for name, op in OPERATIONS.items() if op.reach is not Reach.DATABASE)
WRITES = sorted(name for name in NAMESPACED if OPERATIONS[name].permission is Permission.WRITE)
READS = sorted(name for name in NAMESPACED if OPERATIONS[name].permission is Permission.READ)


def seed(namespace: str) -> None:
    services.create_entities(namespace=namespace, entities=[_entity("A"), _entity("B"), _entity("C")])
    services.create_relations(namespace=namespace, relations=[{"from": "A", "to": "B", "relationType": "knows"}])


@pytest.fixture
def seeded(alice_key: Persona, bob_key: Persona) -> None:
    seed(ALICE)
    seed(BOB)


def call(client: Client, operation: str, body: dict[str, Any] | str, headers: dict[str, str] | None = None):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"/v1/graph/{operation}", data, content_type="application/json", **(headers or {}))


def test_every_operation_has_an_endpoint_and_a_test_body() -> None:
    assert set(BODIES) == set(OPERATIONS)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_no_key_gets_401(client: Client, seeded, operation: str) -> None:
    response = call(client, operation, BODIES[operation])
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("operation", NAMESPACED)
def test_a_key_without_a_grant_on_the_namespace_gets_403(
    client: Client, seeded, bob_key: Persona, operation: str
) -> None:
    before = _snapshot(ALICE)
    response = call(client, operation, {**BODIES[operation], "namespace": ALICE}, bob_key.headers)
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert error["details"]["namespace"] == ALICE
    assert ALICE in error["message"]
    assert _snapshot(ALICE) == before


@pytest.mark.parametrize("operation", NAMESPACED)
def test_the_right_grant_gets_200(client: Client, seeded, alice_key: Persona, operation: str) -> None:
    response = call(client, operation, {**BODIES[operation], "namespace": ALICE}, alice_key.headers)
    assert response.status_code == 200, response.content
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize("operation", WRITES)
def test_a_read_grant_cannot_write(client: Client, seeded, carol_key: Persona, operation: str) -> None:
    before = _snapshot(ALICE)
    response = call(client, operation, {**BODIES[operation], "namespace": ALICE}, carol_key.headers)
    assert response.status_code == 403, response.content
    assert response.json()["error"]["details"] == {"namespace": ALICE, "permission": "write"}
    assert _snapshot(ALICE) == before


@pytest.mark.parametrize("operation", READS)
def test_a_read_grant_can_read(client: Client, seeded, carol_key: Persona, operation: str) -> None:
    response = call(client, operation, {**BODIES[operation], "namespace": ALICE}, carol_key.headers)
    assert response.status_code == 200, response.content


def test_compact_needs_an_operator_key(client: Client, seeded, alice_key: Persona, root_key: Persona) -> None:
    refused = call(client, "compact", {}, alice_key.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"operation": "compact"}
    done = call(client, "compact", {}, root_key.headers)
    assert done.status_code == 200
    assert done.json()["success"] is True


def _snapshot(namespace: str) -> str:
    from graph import selectors

    return json.dumps(selectors.export_graph(namespace=namespace, format="json"), sort_keys=True)


# --- two tenants ---------------------------------------------------------------------------------


def test_two_keys_never_see_each_others_data(client: Client, alice_key: Persona, bob_key: Persona) -> None:
    call(client, "create_entities", {"entities": [_entity("alice-secret")]}, alice_key.headers)
    call(client, "create_entities", {"entities": [_entity("bob-secret")]}, bob_key.headers)
    alice_view = call(client, "search_nodes", {"query": "secret"}, alice_key.headers).json()
    bob_view = call(client, "search_nodes", {"query": "secret"}, bob_key.headers).json()
    assert [e["name"] for e in alice_view["entities"]] == ["alice-secret"]
    assert [e["name"] for e in bob_view["entities"]] == ["bob-secret"]
    # Naming the other tenant's namespace explicitly is refused, in the body or the header.
    assert call(client, "read_graph", {"namespace": BOB}, alice_key.headers).status_code == 403
    header = {**alice_key.headers, "HTTP_X_MEMORY_NAMESPACE": BOB}
    assert call(client, "read_graph", {}, header).status_code == 403
    assert client.get("/v1/memory/banks/list", **alice_key.headers).json() == [ALICE]
    assert client.get("/v1/memory/banks/list", **bob_key.headers).json() == [BOB]


# --- namespace resolution ------------------------------------------------------------------------


def test_the_namespace_comes_from_the_body_or_the_header_then_the_key(client: Client, alice_key: Persona) -> None:
    other = "org:alice:other"
    services.create_entities(namespace=ALICE, entities=[_entity("in-default")])
    services.create_entities(namespace=other, entities=[_entity("in-other")])
    services.create_entities(namespace="org:alice:third", entities=[_entity("in-third")])

    def names(body: dict[str, Any], headers: dict[str, str]) -> list[str]:
        return [e["name"] for e in call(client, "read_graph", body, headers).json()["entities"]]

    header = {**alice_key.headers, "HTTP_X_MEMORY_NAMESPACE": other}
    assert names({}, alice_key.headers) == ["in-default"]
    assert names({}, header) == ["in-other"]
    assert names({"namespace": "org:alice:third"}, alice_key.headers) == ["in-third"]
    assert names({"namespace": other}, header) == ["in-other"]  # the same one twice is no conflict
    # Two different namespaces: which one was meant is not guessed.
    response = call(client, "read_graph", {"namespace": "org:alice:third"}, header)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_argument"
    assert other in response.json()["error"]["message"]


def test_a_destructive_call_says_which_namespace_it_acted_on(client: Client, alice_key: Persona) -> None:
    other = "org:alice:other"
    services.create_entities(namespace=ALICE, entities=[_entity("gone")])
    services.create_entities(namespace=other, entities=[_entity("gone")])
    response = call(client, "delete_entities", {"entityNames": ["gone"]}, alice_key.headers)
    assert response.status_code == 200
    assert response["X-Memory-Namespace"] == ALICE
    header = {**alice_key.headers, "HTTP_X_MEMORY_NAMESPACE": other}
    response = call(client, "delete_entities", {"entityNames": ["gone"]}, header)
    assert response["X-Memory-Namespace"] == other
    assert response.json()["deleted"] == 1


def test_a_key_without_a_default_namespace_must_name_one(client: Client, alice_key: Persona) -> None:
    alice_key.key.default_namespace = ""
    alice_key.key.save(update_fields=["default_namespace"])
    response = call(client, "read_graph", {}, alice_key.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "namespace_required"


def test_an_invalid_namespace_is_a_400_not_a_403(client: Client, alice_key: Persona) -> None:
    response = call(client, "read_graph", {"namespace": "not a namespace"}, alice_key.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_argument"


# --- shapes and errors ---------------------------------------------------------------------------


def test_results_are_the_store_results(client: Client, seeded, alice_key: Persona) -> None:
    found = call(client, "find_path", {"from": "A", "to": "B"}, alice_key.headers).json()
    assert found == {
        "found": True,
        "path": ["A", "B"],
        "relations": [{"from": "A", "to": "B", "relationType": "knows"}],
        "length": 1,
    }
    created = call(client, "create_entities", {"entities": [_entity("A"), _entity("Z")]}, alice_key.headers).json()
    assert created["entities"] == [_entity("Z")]
    assert created["skipped"] == [{"name": "A", "reason": "an entity with this name already exists"}]
    assert call(client, "entity_exists", {"names": ["A", "nope"]}, alice_key.headers).json() == {
        "names": ["A", "nope"],
        "exists": [True, False],
    }


def test_text_is_stored_exactly_as_sent(client: Client, alice_key: Persona) -> None:
    entity = {"name": "  spaced  ", "entityType": "t", "observations": ["  keep my spaces \n", "日本語 ✓"]}
    call(client, "create_entities", {"entities": [entity]}, alice_key.headers)
    got = call(client, "get_entity", {"name": "  spaced  "}, alice_key.headers)
    assert got.json() == entity
    assert "日本語".encode() in got.content  # not \\u-escaped


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ("{not json", "invalid_argument", "not valid JSON"),
        ("[1, 2]", "invalid_argument", "JSON object"),
        ({"entities": "A"}, "invalid_argument", "entities"),
        ({}, "invalid_argument", "entities"),
        ({"entities": [{"name": "", "entityType": "t"}]}, "invalid_argument", "entities[0].name"),
        ({"entities": [{"name": "x" * 2000, "entityType": "t"}]}, "limit_exceeded", "1024"),
        ({"entities": [_entity(f"n{i}") for i in range(1001)]}, "limit_exceeded", "1000"),
    ],
)
def test_bad_input_gets_one_error_shape(client: Client, alice_key: Persona, body, code: str, fragment: str) -> None:
    response = call(client, "create_entities", body, alice_key.headers)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert fragment in error["message"] + json.dumps(error.get("details", {}))
    assert set(response.json()) == {"error"}


# The words and shape of a 400 per field (DRF's, which the REST API has always answered with),
# now produced from the operations' contracts: field -> messages, list items by index.
@pytest.mark.parametrize(
    ("operation", "body", "fields"),
    [
        ("get_entity", {}, {"name": ["This field is required."]}),
        ("get_entity", {"name": ""}, {"name": ["This field may not be blank."]}),
        ("get_entity", {"name": None}, {"name": ["This field may not be null."]}),
        ("get_entity", {"name": 5}, {"name": ["Not a valid string."]}),
        ("get_entity", {"name": "a\x00b"}, {"name": ["Null characters are not allowed."]}),
        ("read_graph", {"limit": 0}, {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ("read_graph", {"limit": "ten"}, {"limit": ["A valid integer is required."]}),
        ("read_graph", {"limit": True}, {"limit": ["A valid integer is required."]}),
        ("read_graph", {"limit": 2.5}, {"limit": ["A valid integer is required."]}),
        ("read_graph", {"entityType": ""}, {"entityType": ["This field may not be blank."]}),
        (
            "read_graph",
            {"namespace": "not a namespace"},
            {"namespace": ["This value does not match the required pattern."]},
        ),
        ("read_graph", {"namespace": 7}, {"namespace": ["This value does not match the required pattern."]}),
        ("degree", {"name": "A", "direction": "sideways"}, {"direction": ['"sideways" is not a valid choice.']}),
        ("export_graph", {"format": "pdf"}, {"format": ['"pdf" is not a valid choice.']}),
        ("open_nodes", {"names": "A"}, {"names": ['Expected a list of items but got type "str".']}),
        (
            "open_nodes",
            {"names": ["A", "", 3]},
            {"names": {"1": ["This field may not be blank."], "2": ["Not a valid string."]}},
        ),
        ("create_entities", {"entities": None}, {"entities": ["This field may not be null."]}),
        ("create_entities", {"entities": {"name": "A"}}, {"entities": ["must be a list"]}),
        (
            "find_path",
            {"to": "", "maxDepth": 0},
            {
                "from": ["This field is required."],
                "to": ["This field may not be blank."],
                "maxDepth": ["Ensure this value is greater than or equal to 1."],
            },
        ),
    ],
)
def test_field_errors_keep_their_words(
    client: Client, alice_key: Persona, operation: str, body: dict[str, Any], fields: dict[str, Any]
) -> None:
    response = call(client, operation, body, alice_key.headers)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_argument"
    assert error["details"] == {"fields": fields}
    field, problems = next(iter(fields.items()))
    first = problems[0] if isinstance(problems, list) else f"{next(iter(problems))}: {next(iter(problems.values()))[0]}"
    assert error["message"] == f"{field}: {first}"


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("read_graph", {"limit": "5", "offset": 1.0}),  # numbers as DRF reads them
        ("read_graph", {"entityType": None, "cursor": None, "limit": None}),  # null: not given
        ("search_nodes", {"query": ""}),  # an empty query matches everything
        ("open_nodes", {"names": ["A"], "stray": [1] * 2000}),  # unknown keys are ignored
        ("create_entities", {"entities": [{"name": "D", "entityType": "t"}]}),  # observations may be left out
    ],
)
def test_what_the_rest_api_accepts(client: Client, seeded, alice_key: Persona, operation: str, body: Any) -> None:
    response = call(client, operation, body, alice_key.headers)
    assert response.status_code == 200, response.content


def test_a_maximum_is_the_stores_limit_error(client: Client, alice_key: Persona) -> None:
    response = call(client, "read_graph", {"limit": 5000}, alice_key.headers)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "limit_exceeded",
        "message": "limit is 5000; the limit is 1000 (MAX_SEARCH_LIMIT)",
        "details": {"limit": "MAX_SEARCH_LIMIT", "maximum": 1000, "actual": 5000},
    }


def test_domain_errors_have_their_own_status(client: Client, seeded, alice_key: Persona) -> None:
    missing = call(client, "get_entity", {"name": "nope"}, alice_key.headers)
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "not_found",
        "message": "Entity with name nope not found",
        "details": {"name": "nope"},
    }
    taken = call(client, "rename_entity", {"name": "A", "newName": "B"}, alice_key.headers)
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "already_exists"


def test_add_observations_is_all_or_nothing_over_rest(client: Client, seeded, alice_key: Persona) -> None:
    body = {"observations": [{"entityName": "A", "contents": ["new"]}, {"entityName": "ghost", "contents": ["x"]}]}
    assert call(client, "add_observations", body, alice_key.headers).status_code == 404
    assert "new" not in call(client, "get_entity", {"name": "A"}, alice_key.headers).json()["observations"]


def test_wrong_methods_and_media_types_are_refused_in_the_same_shape(client: Client, alice_key: Persona) -> None:
    get = client.get("/v1/graph/read_graph", **alice_key.headers)
    assert get.status_code == 405
    assert get.json()["error"]["code"] == "method_not_allowed"
    form = client.post("/v1/graph/read_graph", {"a": "b"}, **alice_key.headers)
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "unsupported_media_type"
    unknown = client.post("/v1/graph/no_such_tool", "{}", content_type="application/json", **alice_key.headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


def test_a_body_over_the_request_limit_gets_413(client: Client, alice_key: Persona, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = {"entities": [{"name": "big", "entityType": "t", "observations": ["x" * 20_000]}]}
    response = call(client, "create_entities", body, alice_key.headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_wire_names_reach_the_store(client: Client, seeded, alice_key: Persona) -> None:
    h = alice_key.headers
    assert call(client, "search_relations", {"from": "A", "relationType": "knows"}, h).json()["relations"] == [
        {"from": "A", "to": "B", "relationType": "knows"}
    ]
    assert call(client, "search_relations", {"relationType": "nope"}, h).json()["relations"] == []
    assert call(client, "read_graph", {"entityType": "nobody"}, h).json()["entities"] == []
    paths = call(client, "find_all_paths", {"from": "A", "to": "B", "maxPaths": 1}, h).json()
    assert paths["count"] == 1
    assert call(client, "delete_entities", {"entityNames": ["C"]}, h).json()["deleted"] == 1
    renamed = call(client, "rename_entity", {"name": "B", "newName": "Bee"}, h).json()
    assert renamed["name"] == "Bee"


def test_paging_through_read_graph_with_the_cursor(client: Client, alice_key: Persona) -> None:
    services.create_entities(namespace=ALICE, entities=[_entity(f"e{i:02}") for i in range(25)])
    seen: list[str] = []
    body: dict[str, Any] = {"limit": 10}
    while True:
        page = call(client, "read_graph", copy.deepcopy(body), alice_key.headers).json()
        seen += [e["name"] for e in page["entities"]]
        if not page["hasMore"]:
            break
        body["cursor"] = page["nextCursor"]
    assert seen == [f"e{i:02}" for i in range(25)]
