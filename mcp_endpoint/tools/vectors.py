"""The vector tools: one per operation of `vectors.operations.OPERATIONS`, same names.

These are the Rust `mcp-memory` server's 12 vector tools (`--enable-vectors`) with its argument
names. Beyond Rust, every tool that takes a client `embedding` also takes a text (`query` for the
searches, `text` for the upserts) that the server embeds with its own multilingual model, so a
model can search by meaning without an embedding model of its own. Everything written through the
graph tools is embedded on write, so text searches find entities whether or not anyone upserted a
vector for them.

Every handler goes through `access.operations.perform`, which checks the caller's grants; the
services validate every value again (dimensions, finiteness, sizes) with messages naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field, StrictFloat, model_validator

from access.operations import perform
from graph.operations import keyword_arguments
from mcp_endpoint.registry import Arguments, NoArguments, Tool, ToolContext, declare
from mcp_endpoint.tools.schema import BOOLEAN, INTEGER, NUMBER, STRING, array_schema, object_schema, optional
from vectors.embedders import MAX_DIMS
from vectors.operations import WIRE_KEYWORDS
from vectors.selectors import DEFAULT_TOP_K, MAX_TOP_K
from vectors.services import CLIENT_MODEL, MAX_BATCH_UPSERT, MAX_MODEL_LENGTH

CATEGORY = "vectors"

# --- output schemas ------------------------------------------------------------------------------

MODEL_OUT = {**STRING, "description": "The vector space used (a client label such as 'client', or the server model id)"}
SCORE = {
    **NUMBER,
    "description": "Cosine similarity to the query, -1 to 1 (higher is closer)",
}
ENTITY_HIT = object_schema({"entityName": STRING, "entityType": STRING, "score": SCORE})
SEARCH_RESULT = object_schema(
    {"model": MODEL_OUT, "results": {**array_schema(ENTITY_HIT), "description": "Best first"}},
)
HYBRID_HIT = object_schema(
    {
        "entityName": STRING,
        "entityType": STRING,
        "score": {**NUMBER, "description": "The fused score, 0 to 1: meaning, lifted by exact-term evidence"},
        "vectorScore": {**NUMBER, "description": "Cosine similarity to the query (negatives shown as 0)"},
        "textScore": {**NUMBER, "description": "Exact-term evidence, 0 to 0.6 (0.6: every identifier of the query)"},
    }
)
UPSERT_RESULT = object_schema(
    {
        "entityName": STRING,
        "model": {**STRING, "description": "The vector space the vector was stored under"},
        "dims": INTEGER,
        "upserted": BOOLEAN,
    }
)
INDEX_INFO = {
    "type": "object",
    "properties": {"kind": STRING, "model": STRING, "vectors": INTEGER, "dims": INTEGER, "index": STRING},
    "required": ["kind", "model", "vectors", "dims"],
}
STORED_VECTORS = object_schema({"kind": STRING, "model": STRING, "count": INTEGER, "dims": INTEGER})

# --- argument building blocks --------------------------------------------------------------------

# Strict: a string or a boolean in a vector is a mistake, not a number to coerce.
# Its first wrong component is reported, not every one (a batch holds up to 1,024 vectors).
Vector = Annotated[list[StrictFloat], Field(fail_fast=True)]
# A vector may have up to MAX_DIMS components, more than other lists' items (Arguments.long_lists).
VECTOR_LISTS: dict[str, int | None] = {"embedding": MAX_DIMS, "queryEmbedding": MAX_DIMS}

EMBEDDING = (
    f"A vector: a list of 1 to {MAX_DIMS} finite numbers, as many as the vectors already stored under "
    "`model` (vectors are compared by cosine similarity, so their length does not matter)."
)
MODEL = (
    f"The vector space: the label client vectors are stored under (default {CLIENT_MODEL!r}; at most "
    f"{MAX_MODEL_LENGTH} characters). Leave it unset when you give text: the server embeds text with its own model."
)
TOP_K = f"How many entities to return, 1 to {MAX_TOP_K} (default {DEFAULT_TOP_K})."
ENTITY_TYPE = "Only entities of this exact type."
ENTITY_NAME = "The exact name of an existing entity (case-sensitive)."


def _top_k() -> Any:
    return optional(TOP_K, ge=1, le=MAX_TOP_K)


# --- handlers ------------------------------------------------------------------------------------


def _perform(operation: str) -> Callable[[ToolContext, Arguments], Any]:
    """The handler of `operation`: only the arguments the caller set are passed, so the
    operation's defaults apply to the rest."""

    def handler(ctx: ToolContext, args: Arguments) -> Any:
        wire = args.model_dump(by_alias=True, exclude_unset=True)
        return perform(ctx.access, operation, namespace=ctx.namespace, **keyword_arguments(wire, WIRE_KEYWORDS))

    handler.__name__ = f"perform_{operation}"
    return handler


def _declare(
    name: str, title: str, description: str, arguments: type[Arguments], output: dict[str, Any], **options: Any
) -> Tool:
    return declare(name, title, description, arguments, output, category=CATEGORY, handler=_perform(name), **options)


# --- searches ------------------------------------------------------------------------------------


class SearchEntitiesArguments(Arguments):
    long_lists = VECTOR_LISTS
    embedding: Vector | None = optional(EMBEDDING + " Give this or `query`.")
    query: str | None = optional(
        "What to look for, in words (any language): embedded on the server. Give this or `embedding`."
    )
    topK: int | None = _top_k()
    entityType: str | None = optional(ENTITY_TYPE)
    model: str | None = optional(MODEL)


_declare(
    "vector_search_entities",
    "Vector Search Entities",
    "Entities closest in meaning to a text `query` (embedded on the server; matches across languages) or to "
    "a client `embedding` (searched among the vectors stored under `model`), best first. With a text query an "
    "entity scores the best of its own vector and its observations' vectors, so every entity with observations "
    "can be found. score is the cosine similarity, -1 to 1.",
    SearchEntitiesArguments,
    SEARCH_RESULT,
    read_only=True,
)


class SearchByEntityArguments(Arguments):
    entityName: str = Field(description="The entity to find look-alikes of. " + ENTITY_NAME)
    topK: int | None = _top_k()
    entityType: str | None = optional(ENTITY_TYPE)
    excludeSelf: bool | None = optional("Leave the entity itself out of the results (default true).")
    model: str | None = optional(
        "The vector space of the entity's vector to use (default: the server's model if it has a vector "
        "there, else any vector it has)."
    )


_declare(
    "vector_search_by_entity",
    "Find Similar Entities",
    "Entities most similar to a given entity, best first: its stored vector, or (in the server's model) the "
    "mean of its observations' vectors, is the query. Fails if the entity has no vector in that model. "
    "score is the cosine similarity, -1 to 1.",
    SearchByEntityArguments,
    SEARCH_RESULT,
    read_only=True,
)


class RecommendArguments(Arguments):
    positive: list[str] = Field(min_length=1, description="Names of entities the results should resemble.")
    negative: list[str] | None = optional("Names of entities the results should not resemble.")
    topK: int | None = _top_k()
    entityType: str | None = optional(ENTITY_TYPE)
    model: str | None = optional(
        "The vector space to use (default: the server's model when the first positive entity has a vector "
        "there, else its own)."
    )


_declare(
    "vector_recommend",
    "Recommend Entities",
    "Entities like the `positive` ones and unlike the `negative` ones (the query vector is mean(positive) - "
    "mean(negative)), best first; the given entities are never returned. Every named entity needs a vector "
    "in the same model. score is the cosine similarity to that query vector, -1 to 1.",
    RecommendArguments,
    SEARCH_RESULT,
    read_only=True,
)


class MmrSearchArguments(Arguments):
    long_lists = VECTOR_LISTS
    embedding: Vector | None = optional(EMBEDDING + " Give this or `query`.")
    query: str | None = optional(
        "What to look for, in words (any language): embedded on the server. Give this or `embedding`."
    )
    topK: int | None = _top_k()
    fetchK: int | None = optional(
        f"How many of the closest entities to choose from, topK to {MAX_TOP_K} (default 4 x topK, at least 20).",
        ge=1,
        le=MAX_TOP_K,
    )
    lambda_: float | None = optional(
        "Relevance against diversity, 0 to 1: 1 ranks by relevance only, 0 by diversity only (default 0.5).",
        alias="lambda",
        ge=0,
        le=1,
    )
    entityType: str | None = optional(ENTITY_TYPE)
    model: str | None = optional(MODEL)


_declare(
    "vector_mmr_search",
    "Diverse Vector Search",
    "Like vector_search_entities, but the results are chosen to be relevant yet unlike each other (maximal "
    "marginal relevance): use it for an overview instead of many near-duplicates. Takes a text `query` "
    "(embedded on the server) or an `embedding`. score is each result's cosine similarity to the query.",
    MmrSearchArguments,
    SEARCH_RESULT,
    read_only=True,
)


class HybridSearchArguments(Arguments):
    long_lists = VECTOR_LISTS
    queryText: str | None = optional(
        "The query in words: its exact terms (identifiers such as ports, error codes, ticket ids "
        "and versions count most) are matched, and unless queryEmbedding is given it is also embedded on the "
        "server for meaning. Required (or `query`)."
    )
    # The other searches take their text as `query`; so does this one. Not passed on: it is
    # copied into queryText.
    query: str | None = optional("Another name for queryText, as the other searches call it.", exclude=True)
    queryEmbedding: Vector | None = optional(
        "A vector for the meaning side instead of embedding queryText on the server. " + EMBEDDING
    )
    textWeight: float | None = optional(
        "Weight of exact-term evidence (default 0.5); only its ratio to vecWeight matters.", ge=0, le=1000
    )
    vecWeight: float | None = optional(
        "Weight of meaning (default 0.5); only its ratio to textWeight matters.", ge=0, le=1000
    )
    topK: int | None = _top_k()
    centrality: float | None = optional(
        "0 to 1: how much to favour well-connected entities (default 0, none).", ge=0, le=1
    )
    model: str | None = optional(
        "The vector space of queryEmbedding (default " + repr(CLIENT_MODEL) + "); leave unset without it."
    )

    @model_validator(mode="after")
    def _one_query(self) -> HybridSearchArguments:
        if self.query is not None:
            if self.queryText is not None and self.queryText != self.query:
                raise ValueError("queryText and query differ; give one of them (they are the same argument)")
            self.queryText = self.query
        if self.queryText is None:
            raise ValueError("give queryText (or query): the text to search for")
        return self


_declare(
    "hybrid_search",
    "Hybrid Search",
    "Entities ranked by meaning and exact terms together: the best search when the query mixes words with "
    "identifiers (a port, an error code, a ticket id, a version, a hostname). Meaning is the base score; "
    "entities whose name, type or observations hold the query's exact terms are lifted toward 1. score is 0 "
    "to 1, with vectorScore and textScore showing both sides.",
    HybridSearchArguments,
    object_schema({"model": MODEL_OUT, "results": {**array_schema(HYBRID_HIT), "description": "Best first"}}),
    read_only=True,
)


# --- writes --------------------------------------------------------------------------------------


class UpsertEmbeddingArguments(Arguments):
    long_lists = VECTOR_LISTS
    entityName: str = Field(description=ENTITY_NAME)
    embedding: Vector | None = optional(EMBEDDING + " Give this or `text`.")
    text: str | None = optional(
        "Text to embed on the server as the entity's vector (e.g. a summary of it). Give this or `embedding`."
    )
    model: str | None = optional(MODEL)


_declare(
    "vector_upsert_embedding",
    "Set Entity Vector",
    "Set the vector of an existing entity in one vector space, replacing the one it had there. Give a client "
    "`embedding` (stored under `model`, default 'client'; every vector of a model must have the same number of "
    "dimensions) or a `text` the server embeds with its own model. Entities are already searchable by their "
    "observations without this.",
    UpsertEmbeddingArguments,
    UPSERT_RESULT,
    idempotent=True,
)


class BatchItem(Arguments):
    long_lists = VECTOR_LISTS
    entityName: str = Field(description=ENTITY_NAME)
    embedding: Vector | None = optional(EMBEDDING + " Give this or `text`.")
    text: str | None = optional("Text to embed on the server. Give this or `embedding`.")
    model: str | None = optional(MODEL)


class BatchUpsertArguments(Arguments):
    items: list[BatchItem] = Field(
        max_length=MAX_BATCH_UPSERT, description=f"Up to {MAX_BATCH_UPSERT} vectors to set, one per entity."
    )


_declare(
    "vector_batch_upsert",
    "Set Entity Vectors",
    f"vector_upsert_embedding for up to {MAX_BATCH_UPSERT} entities at once. An item that fails (a missing "
    "entity, a wrong number of dimensions, a non-finite value) is reported in `errors` by its index and the "
    "others are still written.",
    BatchUpsertArguments,
    object_schema(
        {
            "upserted": {**INTEGER, "description": "How many vectors were written"},
            "errors": array_schema(
                object_schema(
                    {
                        "index": {**INTEGER, "description": "Position of the failed item in `items`"},
                        "entityName": STRING,
                        "error": STRING,
                    }
                )
            ),
        }
    ),
    idempotent=True,
)


class EntityVectorArguments(Arguments):
    entityName: str = Field(description=ENTITY_NAME)
    model: str | None = optional("Only the vector of this vector space (default: any one the entity has).")


_declare(
    "vector_get_embedding",
    "Get Entity Vector",
    "The vector stored for an entity (in `model`, or any one it has): {found: true, model, dims, embedding}, "
    "or {found: false} when it has none. Vectors of observations are not shown.",
    EntityVectorArguments,
    {
        "type": "object",
        "properties": {
            "found": BOOLEAN,
            "entityName": STRING,
            "model": {**STRING, "description": "Only when found"},
            "dims": {**INTEGER, "description": "Only when found"},
            "embedding": {**array_schema(NUMBER), "description": "Only when found; unit length"},
        },
        "required": ["found", "entityName"],
    },
    read_only=True,
)


class DeleteEmbeddingArguments(Arguments):
    entityName: str = Field(description=ENTITY_NAME)
    model: str | None = optional("Only the vector of this vector space (default: every vector the entity has).")


_declare(
    "vector_delete_embedding",
    "Delete Entity Vector",
    "Delete an entity's own vector (of one model, or all of them); the entity and its observations stay, so a "
    "text search can still find it by its observations. The next search honours it.",
    DeleteEmbeddingArguments,
    object_schema({"entityName": STRING, "deleted": {**INTEGER, "description": "How many vectors were deleted"}}),
    destructive=True,
    idempotent=True,
)


_declare(
    "vector_reindex",
    "Reindex Vectors",
    "Maintenance: embed this namespace's observations that have no vector yet, then rebuild its vector indexes "
    "from the stored vectors. Rarely needed: writes are embedded and indexed as they happen.",
    NoArguments,
    object_schema(
        {
            "embedded": {**INTEGER, "description": "Observations embedded now"},
            "indexes": {**array_schema(INDEX_INFO), "description": "One per (kind, model) index rebuilt"},
        }
    ),
    idempotent=True,
)

_declare(
    "vector_refresh_graph_cache",
    "Refresh Vector Caches",
    "Reload this namespace's vector indexes from the stored vectors and report the graph's size and highest "
    "degree (used by hybrid_search's centrality). Degrees are always current, so this is rarely needed.",
    NoArguments,
    object_schema({"refreshed": BOOLEAN, "entities": INTEGER, "maxDegree": INTEGER, "indexes": INTEGER}),
    read_only=True,
)

_declare(
    "vector_store_stats",
    "Vector Store Statistics",
    "The vectors stored in this namespace per kind (entity, observation) and model with their dimensions, the "
    "server's embedding model, how many observations still lack a vector, and the indexes loaded in memory.",
    NoArguments,
    object_schema(
        {
            "namespace": STRING,
            "embedder": object_schema({"model": STRING, "dims": INTEGER}),
            "clientModelDefault": {**STRING, "description": "The model client vectors get when none is named"},
            "vectors": array_schema(STORED_VECTORS),
            "observations": INTEGER,
            "observationsWithoutVector": INTEGER,
            "loadedIndexes": array_schema({"type": "object"}),
        }
    ),
    read_only=True,
)
