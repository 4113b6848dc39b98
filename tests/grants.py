"""Example calls of the graph and vector operations by their wire (MCP tool and REST) names, and
the grant each needs: shared by the surface walks (tests/mcp_endpoint/test_surface_grants.py,
tests/api/test_surface_grants.py). Each is aimed at a namespace holding an entity "Ada" whose
observation is SECRET.
"""

from __future__ import annotations

from typing import Any

SECRET = "the vault code is 4417"

# What a caller must hold: a "read" or "write" grant on the namespace, or be an operator.
READ, WRITE, OPERATOR = "read", "write", "operator"
# name -> (arguments, what it needs)
CALLS: dict[str, tuple[dict[str, Any], str]] = {
    "create_entities": ({"entities": [{"name": "Eve", "entityType": "person", "observations": []}]}, WRITE),
    "create_relations": ({"relations": [{"from": "Ada", "to": "Ada", "relationType": "is"}]}, WRITE),
    "add_observations": ({"observations": [{"entityName": "Ada", "contents": ["x"]}]}, WRITE),
    "delete_entities": ({"entityNames": ["Ada"]}, WRITE),
    "delete_observations": ({"deletions": [{"entityName": "Ada", "observations": [SECRET]}]}, WRITE),
    "delete_relations": ({"relations": [{"from": "Ada", "to": "Ada", "relationType": "is"}]}, WRITE),
    "upsert_entities": ({"entities": [{"name": "Ada", "entityType": "person", "observations": []}]}, WRITE),
    "merge_entities": ({"source": "Ada", "target": "Ada"}, WRITE),
    "rename_entity": ({"name": "Ada", "newName": "Eve"}, WRITE),
    "supersede_observation": ({"entityName": "Ada", "old": SECRET, "new": "the vault code changed"}, WRITE),
    "declare_relation_type": ({"relationType": "is", "functional": True}, WRITE),
    "compact": ({}, OPERATOR),
    "read_graph": ({}, READ),
    "search_nodes": ({"query": "vault"}, READ),
    "open_nodes": ({"names": ["Ada"]}, READ),
    "get_entity": ({"name": "Ada"}, READ),
    "batch_get_entities": ({"names": ["Ada"]}, READ),
    "entity_exists": ({"names": ["Ada"]}, READ),
    "graph_stats": ({}, READ),
    "list_entity_types": ({}, READ),
    "list_relation_types": ({}, READ),
    "search_relations": ({}, READ),
    "degree": ({"name": "Ada"}, READ),
    "describe_entity": ({"name": "Ada"}, READ),
    "get_neighbors": ({"name": "Ada"}, READ),
    "extract_subgraph": ({"names": ["Ada"]}, READ),
    "find_path": ({"from": "Ada", "to": "Ada"}, READ),
    "find_all_paths": ({"from": "Ada", "to": "Ada"}, READ),
    "export_graph": ({}, READ),
    "entity_history": ({"name": "Ada"}, READ),
    "vector_upsert_embedding": ({"entityName": "Ada", "text": "vault"}, WRITE),
    "vector_batch_upsert": ({"items": [{"entityName": "Ada", "text": "vault"}]}, WRITE),
    "vector_delete_embedding": ({"entityName": "Ada"}, WRITE),
    "vector_reindex": ({}, WRITE),
    "vector_get_embedding": ({"entityName": "Ada"}, READ),
    "vector_search_entities": ({"query": "vault"}, READ),
    "vector_search_by_entity": ({"entityName": "Ada"}, READ),
    "vector_recommend": ({"positive": ["Ada"]}, READ),
    "vector_mmr_search": ({"query": "vault"}, READ),
    "hybrid_search": ({"query": "vault"}, READ),
    "vector_refresh_graph_cache": ({}, READ),
    "vector_store_stats": ({}, READ),
}
