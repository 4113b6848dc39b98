"""Writes of entity vectors: the Rust `mcp-memory` vector tools that change state.

Keyword-only and scoped to one namespace, like graph/services.py; grants are checked by
`vectors.operations`. A vector is either given by the client (`embedding`, stored under `model`,
default "client") or computed here from `text` with the server's embedder (stored under its model
id). Within one namespace every vector of a (kind, model) pair has the same number of dimensions.
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from django.db import transaction

from graph import limits, namespaces
from graph.exceptions import InvalidArgument
from graph.sql import require_entity
from memoryhub.errors import DomainError
from vectors import store
from vectors.embedders import Embedder, check_vector, default_embedder
from vectors.embedding import embed_missing, embed_texts
from vectors.indexes import registry
from vectors.models import OwnerKind
from vectors.store import IndexKey

CLIENT_MODEL = "client"
MAX_BATCH_UPSERT = 1024
MAX_MODEL_LENGTH = 255


def model_label(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_MODEL_LENGTH:
        raise InvalidArgument(f"model must be a non-empty string of at most {MAX_MODEL_LENGTH} characters")
    return value


def resolve_vector(
    ns_id: int | None, *, embedding: Any, text: Any, model: Any, kind: str = OwnerKind.ENTITY
) -> tuple[str, npt.NDArray[np.float32]]:
    """(model id, vector) from exactly one of a client `embedding` or a `text` to embed here.

    A client vector must match the dimensions already stored for its model in the namespace."""
    label = model_label(model)
    if (embedding is None) == (text is None):
        raise InvalidArgument("give exactly one of embedding (a list of numbers) or text (to embed on the server)")
    if text is not None:
        embedder = server_model(label)
        return embedder.model_id, embed_texts([text_to_embed(text)], embedder=embedder)[0]
    label = label or CLIENT_MODEL
    dims = store.dims_of(IndexKey(ns_id, kind, label)) if ns_id is not None else None
    if dims is None and label == default_embedder().model_id:
        dims = default_embedder().dims
    return label, check_vector(embedding, dims=dims)


def server_model(label: str | None) -> Embedder:
    """The server's embedder, if `label` names it (or is None)."""
    embedder = default_embedder()
    if label is not None and label != embedder.model_id:
        raise InvalidArgument(
            f"text is embedded with the server's model {embedder.model_id!r}; model {label!r} needs an embedding"
        )
    return embedder


def text_to_embed(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("text must be a non-empty string")
    return limits.observation(text, field="text")


class UpsertResult(TypedDict):
    entityName: str
    model: str
    dims: int
    upserted: bool


def upsert_embedding(
    *, namespace: str, entity_name: str, embedding: Any = None, text: Any = None, model: Any = None
) -> UpsertResult:
    """Set the vector of an existing entity (replacing the one it had in that model)."""
    name = limits.name(entity_name, field="entityName")
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        owner = require_entity(ns_id, name)
        assert ns_id is not None
        label, vector = resolve_vector(ns_id, embedding=embedding, text=text, model=model)
        store.put(IndexKey(ns_id, OwnerKind.ENTITY, label), [(owner, vector)])
    return {"entityName": name, "model": label, "dims": int(vector.shape[0]), "upserted": True}


class BatchError(TypedDict):
    index: int
    entityName: Any
    error: str


class BatchUpsertResult(TypedDict):
    upserted: int
    errors: list[BatchError]


def batch_upsert(*, namespace: str, items: list[dict[str, Any]]) -> BatchUpsertResult:
    """Upsert up to 1,024 entity vectors; an item that fails is reported in `errors` (by its
    position) and the others are still written."""
    if not isinstance(items, list):
        raise InvalidArgument("items must be a list")
    if len(items) > MAX_BATCH_UPSERT:
        raise InvalidArgument(f"at most {MAX_BATCH_UPSERT} items per batch, got {len(items)}")
    errors: list[BatchError] = []
    upserted = 0
    texts: list[tuple[int, int, str]] = []  # (position, owner, text): embedded together below
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        for position, item in enumerate(items):
            name = item.get("entityName") if isinstance(item, dict) else None
            try:
                if not isinstance(item, dict):
                    raise InvalidArgument("each item must be an object")
                owner = require_entity(ns_id, limits.name(name, field="entityName"))
                assert ns_id is not None
                if item.get("embedding") is None and item.get("text") is not None:
                    server_model(model_label(item.get("model")))
                    texts.append((position, owner, text_to_embed(item["text"])))
                    continue
                label, vector = resolve_vector(
                    ns_id, embedding=item.get("embedding"), text=item.get("text"), model=item.get("model")
                )
                store.put(IndexKey(ns_id, OwnerKind.ENTITY, label), [(owner, vector)])
                upserted += 1
            except DomainError as error:  # a missing entity, a bad vector: reported per item
                errors.append({"index": position, "entityName": name, "error": error.message})
        if texts and ns_id is not None:
            embedder = default_embedder()
            vectors = embed_texts([text for _, _, text in texts], embedder=embedder)
            store.put(
                IndexKey(ns_id, OwnerKind.ENTITY, embedder.model_id),
                [(owner, vectors[i]) for i, (_, owner, _) in enumerate(texts)],
            )
            upserted += len(texts)
    errors.sort(key=lambda e: e["index"])
    return {"upserted": upserted, "errors": errors}


class DeleteEmbeddingResult(TypedDict):
    entityName: str
    deleted: int


def delete_embedding(*, namespace: str, entity_name: str, model: Any = None) -> DeleteEmbeddingResult:
    """Delete an entity's vector (of one model, or of every model). Honoured by the next search."""
    name = limits.name(entity_name, field="entityName")
    label = model_label(model)
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        owner = require_entity(ns_id, name)
        deleted = store.delete(OwnerKind.ENTITY, [owner], model=label)
    return {"entityName": name, "deleted": deleted}


class ReindexResult(TypedDict):
    embedded: int
    indexes: list[dict[str, Any]]


def reindex(*, namespace: str) -> ReindexResult:
    """Embed the namespace's observations that lack a vector, then rebuild its indexes from the
    stored vectors (this retrains IVF-Flat lists and drops HNSW's deleted slots)."""
    ns_id = namespaces.lookup(namespace)
    if ns_id is None:
        return {"embedded": 0, "indexes": []}
    embedded = embed_missing(namespace_id=ns_id)
    rebuilt = []
    indexes = registry()
    for key, count, dims in store.index_keys(ns_id):
        indexes.drop(key)
        index = indexes.current(key)
        rebuilt.append(
            {"kind": key.kind, "model": key.model, "vectors": count, "dims": dims}
            | ({"index": index.stats().get("kind", type(index).__name__)} if index is not None else {})
        )
    return {"embedded": embedded, "indexes": rebuilt}
