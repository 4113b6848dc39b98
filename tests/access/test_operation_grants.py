"""Every declared operation refuses a caller without the grant it needs, and changes nothing.

Walks `access.operations.declared()`, so an operation added anywhere is covered or fails here:
each must have an example call below. For each operation:

- a caller without the grant is refused by the runner (NamespaceForbidden, OperatorOnly or
  AccountRequired), or, for calls that reach "every namespace the caller may" (a search, a delete
  by id), reaches nothing of the other tenant's;
- a caller with the grant gets past the check with the same example (so the refusal above is the
  grant's doing, not the example's);
- the other tenant's data is the same afterwards.

The surfaces (MCP tools, REST routes, the MemOS API) are walked against these operations in
tests/mcp_endpoint/test_surface_grants.py and tests/api/test_surface_grants.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from access.exceptions import AccessError, AccountRequired, NamespaceForbidden, OperatorOnly
from access.operations import Reach, declared, perform
from access.permissions import Access, Grant, Permission
from agents.exceptions import AgentNotFound
from agents.models import Agent, LedgerEntry
from graph.exceptions import NotFound
from memory.services import NewMemory

TARGET = "org:alice:grants"


@dataclass(frozen=True)
class Seed:
    memory_id: str
    user_id: int


Example = Callable[[Seed], dict[str, Any]]


def _fixed(**arguments: Any) -> Example:
    return lambda seed: arguments


def _official_file() -> str:
    """A small official memory.jsonl on disk, for `import_file` (a server-side path)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as handle:
        handle.write('{"type":"entity","name":"Lovelace","entityType":"person","observations":["counted"]}')
    return handle.name


ADA = {"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]}

# Arguments of one call of each operation, besides the namespace: valid, so that the owner's call
# succeeds.
EXAMPLES: dict[str, Example] = {
    # graph writes
    "create_entities": _fixed(entities=[{"name": "Grace", "entityType": "person", "observations": []}]),
    "create_relations": _fixed(relations=[{"from": "Babbage", "to": "Ada", "relationType": "admires"}]),
    "add_observations": _fixed(observations=[{"entityName": "Ada", "contents": ["a new fact"]}]),
    "delete_entities": _fixed(entity_names=["Babbage"]),
    "delete_observations": _fixed(deletions=[{"entityName": "Ada", "observations": ["wrote the first program"]}]),
    "delete_relations": _fixed(relations=[{"from": "Ada", "to": "Babbage", "relationType": "knows"}]),
    "upsert_entities": _fixed(entities=[ADA]),
    "merge_entities": _fixed(source="Babbage", target="Ada"),
    "rename_entity": _fixed(name="Ada", new_name="Ada Lovelace"),
    "compact": _fixed(),
    "supersede_observation": _fixed(entity_name="Ada", old="wrote the first program", new="wrote the first programs"),
    "declare_relation_type": _fixed(relation_type="knows", functional=True),
    # graph reads
    "read_graph": _fixed(),
    "search_nodes": _fixed(query="program"),
    "open_nodes": _fixed(names=["Ada"]),
    "get_entity": _fixed(name="Ada"),
    "batch_get_entities": _fixed(names=["Ada"]),
    "entity_exists": _fixed(names=["Ada"]),
    "graph_stats": _fixed(),
    "namespace_growth": _fixed(),
    "recent_changes": _fixed(),
    "list_entity_types": _fixed(),
    "list_relation_types": _fixed(),
    "search_relations": _fixed(),
    "degree": _fixed(name="Ada"),
    "describe_entity": _fixed(name="Ada"),
    "get_neighbors": _fixed(name="Ada"),
    "extract_subgraph": _fixed(names=["Ada"]),
    "find_path": _fixed(from_="Ada", to="Babbage"),
    "find_all_paths": _fixed(from_="Ada", to="Babbage"),
    "export_graph": _fixed(),
    "entity_history": _fixed(name="Ada"),
    # graph operations of the server's pages (the console)
    "graph_sample": _fixed(),
    "graph_neighbourhood": _fixed(names=["Ada"]),
    "entity_facts": _fixed(name="Ada"),
    "import_file": lambda seed: {"path": _official_file()},
    "export_stream": _fixed(format="official"),
    # vectors
    "vector_upsert_embedding": _fixed(entity_name="Ada", text="the first programmer"),
    "vector_batch_upsert": _fixed(items=[{"entityName": "Ada", "text": "the first programmer"}]),
    "vector_delete_embedding": _fixed(entity_name="Ada"),
    "vector_reindex": _fixed(),
    "vector_get_embedding": _fixed(entity_name="Ada"),
    "vector_search_entities": _fixed(query="programmer"),
    "vector_search_by_entity": _fixed(entity_name="Ada"),
    "vector_recommend": _fixed(positive=["Ada"]),
    "vector_mmr_search": _fixed(query="programmer"),
    "hybrid_search": _fixed(query_text="programmer"),
    "vector_refresh_graph_cache": _fixed(),
    "vector_store_stats": _fixed(),
    "embedding_backlog": _fixed(),
    # memories
    "memory_write": _fixed(memories=[NewMemory(text="Alice's blood type is AB negative")]),
    "memory_search": _fixed(query="blood type"),
    "memory_list": _fixed(limit=10),
    "memory_get": lambda seed: {"id": seed.memory_id},
    "memory_delete": lambda seed: {"id": seed.memory_id},
    "memory_clear": _fixed(),
    "memory_history": lambda seed: {"id": seed.memory_id},
    "memory_authors": lambda seed: {"ids": [seed.memory_id]},
    "memory_update": lambda seed: {"id": seed.memory_id, "text": "Alice likes black tea"},
    "memory_restore": lambda seed: {"id": seed.memory_id, "version": 1},
    "memory_supersede": lambda seed: {"id": seed.memory_id, "text": "Alice likes black tea now"},
    # the marketplace (the caller's own account)
    "search_agents": _fixed(query=""),
    "held_agents": _fixed(),
    "wallet_summary": _fixed(),
    "ledger": _fixed(),
    "buy_agent_tokens": _fixed(agent_id=999_999, token_amount=10),
    "call_agent": _fixed(agent_id=999_999, prompt="hello"),
    # the marketplace's operators
    "grant_credits": lambda seed: {"user_id": seed.user_id, "credits": "10", "actor": "admin:root"},
    "publish_agents": _fixed(agent_ids=[999_999]),
    "unpublish_agents": _fixed(agent_ids=[999_999]),
}

# Calls whose example names an agent that does not exist: past the check, the answer is "not found".
UNKNOWN_AGENT = {"buy_agent_tokens", "call_agent"}

OWNER = Access(grants=(Grant("org:alice:*", Permission.WRITE),), user_id=None, default_namespace=TARGET)
READER = Access(grants=(Grant("org:alice:*", Permission.READ),), default_namespace=TARGET)
STRANGER = Access(grants=(Grant("org:bob:*", Permission.WRITE),), default_namespace="org:bob:notes")
# The marketplace's operations reach an account: a user's key, or a keyless (local) session.
KEYLESS = Access(grants=(Grant("*", Permission.WRITE),), default_namespace="default")


def _seed(users: Any) -> Seed:
    perform(OWNER, "create_entities", namespace=TARGET, entities=[ADA, {"name": "Babbage", "entityType": "person"}])
    perform(
        OWNER,
        "create_relations",
        namespace=TARGET,
        relations=[{"from": "Ada", "to": "Babbage", "relationType": "knows"}],
    )
    perform(OWNER, "vector_upsert_embedding", namespace=TARGET, entity_name="Ada", text="the first programmer")
    (written,) = perform(OWNER, "memory_write", namespace=TARGET, memories=[NewMemory(text="Alice likes green tea")])
    return Seed(memory_id=written["id"], user_id=users.objects.create_user(username="wallet-holder").pk)


def _snapshot() -> tuple[Any, ...]:
    graph = perform(OWNER, "export_graph", namespace=TARGET)
    memories = perform(OWNER, "memory_list", namespace=TARGET, limit=100)
    vectors = perform(OWNER, "vector_store_stats", namespace=TARGET)
    money = list(LedgerEntry.objects.values_list("id", flat=True)), Agent.objects.filter(published=True).count()
    return graph, memories, vectors, money


def test_every_declared_operation_has_an_example() -> None:
    assert sorted(declared()) == sorted(EXAMPLES), "declare an example call for each operation here"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_caller_without_the_grant_is_refused_and_nothing_changes(db, name: str, django_user_model) -> None:
    operation = declared()[name]
    seed = _seed(django_user_model)
    before = _snapshot()
    arguments = EXAMPLES[name](seed)

    if operation.reach is Reach.DATABASE:
        with pytest.raises(OperatorOnly):
            perform(OWNER, name, **arguments)
    elif operation.reach is Reach.ACCOUNT:
        with pytest.raises(AccountRequired):
            perform(KEYLESS, name, **arguments)
    else:
        refused = [STRANGER] if operation.read_only else [STRANGER, READER]
        for caller in refused:
            with pytest.raises(NamespaceForbidden):
                perform(caller, name, namespace=TARGET, **arguments)
            if operation.reach is Reach.NAMESPACES:
                # Unnamed, the call reaches the namespaces the caller holds the permission on:
                # none of the target's rows.
                try:
                    reached = perform(caller, name, **arguments)
                except NotFound:  # by id (a history, an update, a restore): not found outside the reach
                    reached = None
                assert TARGET not in repr(reached)
                assert seed.memory_id not in repr(reached) or reached == {"deleted": False, "id": seed.memory_id}
    assert _snapshot() == before


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_caller_with_the_grant_passes_the_check(db, name: str, django_user_model) -> None:
    operation = declared()[name]
    seed = _seed(django_user_model)
    arguments = EXAMPLES[name](seed)
    if operation.reach is Reach.DATABASE:
        caller = KEYLESS  # an operator
    elif operation.reach is Reach.ACCOUNT:
        user = django_user_model.objects.create_user(username="buyer")
        caller = Access(grants=(), user_id=user.pk, key_prefix="abc")
    else:
        caller = OWNER
    namespace = None if operation.reach is Reach.ACCOUNT else TARGET
    if name in UNKNOWN_AGENT:
        with pytest.raises(AgentNotFound):  # the runner let it through to the marketplace's own answer
            perform(caller, name, namespace=namespace, **arguments)
        return
    try:
        perform(caller, name, namespace=namespace, **arguments)
    except AccessError as error:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{name} refused a caller holding the grant: {error}")
