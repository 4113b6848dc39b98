"""The vector tools by their public (Rust `mcp-memory`) names, with the permission each needs.

Declared with `access.operations`, whose runner checks grants for every surface; the argument
names here are Python keywords; `keyword_arguments(wire, WIRE_KEYWORDS)` maps the tools' camelCase
names to them.
"""

from __future__ import annotations

from access.operations import Operation, Reach, declare
from access.permissions import Permission
from graph import operations as graph_operations
from vectors import selectors, services

_READ, _WRITE = Permission.READ, Permission.WRITE
VECTORS = "vectors"  # what the writes change, as `operation_applied` announces it

OPERATIONS: dict[str, Operation] = declare(
    [
        Operation("vector_upsert_embedding", services.upsert_embedding, _WRITE, changes=VECTORS),
        Operation("vector_batch_upsert", services.batch_upsert, _WRITE, changes=VECTORS),
        Operation("vector_delete_embedding", services.delete_embedding, _WRITE, changes=VECTORS),
        Operation("vector_reindex", services.reindex, _WRITE, changes=VECTORS),
        Operation("vector_get_embedding", selectors.get_embedding, _READ),
        Operation("vector_search_entities", selectors.search_entities, _READ),
        Operation("vector_search_by_entity", selectors.search_by_entity, _READ),
        Operation("vector_recommend", selectors.recommend, _READ),
        Operation("vector_mmr_search", selectors.mmr_search, _READ),
        Operation("hybrid_search", selectors.hybrid_search, _READ),
        Operation("vector_refresh_graph_cache", selectors.refresh_graph_cache, _READ),
        Operation("vector_store_stats", selectors.store_stats, _READ),
    ]
)

# Operations of the server's own pages (the console), with no MCP tool: the embedding backlog per
# namespace (the dashboard). OPERATIONS above are also the MCP vector tools, one per operation.
PAGE_OPERATIONS: dict[str, Operation] = declare(
    [Operation("embedding_backlog", selectors.embedding_backlog, _READ, reach=Reach.NAMESPACES)]
)

WIRE_KEYWORDS = {
    **graph_operations.WIRE_KEYWORDS,
    "entityName": "entity_name",
    "entityType": "entity_type",
    "topK": "top_k",
    "fetchK": "fetch_k",
    "lambda": "lambda_",
    "excludeSelf": "exclude_self",
    "queryText": "query_text",
    "queryEmbedding": "query_embedding",
    "textWeight": "text_weight",
    "vecWeight": "vec_weight",
}
