"""Test data made through the real services."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from access import namespaces
from graph import services as graph_services
from graph.services import MemoryInput
from graph.sql import db
from kernel.sql import in_json
from vectors import backlog, store
from vectors.models import OwnerKind
from vectors.store import IndexKey


def new_namespace(label: str = "maint") -> str:
    return f"org:test:{label}{uuid.uuid4().hex[:8]}"


def db_time(value: datetime) -> str:
    return str(connection.ops.adapt_datetimefield_value(value))


def memories(namespace: str, texts: list[str], *, expired: bool = False) -> list[int]:
    """Free memories, embedded with the server's model (as a server's drainer embeds them behind
    the write); `expired`: their TTL has passed."""
    expires = db_time(timezone.now() - timedelta(hours=1)) if expired else None
    rows: list[MemoryInput] = [{"body": text, "actor_id": "", "tags": [], "expires_at": expires} for text in texts]
    written = [owner for owner, _ in graph_services.insert_memories(namespace=namespace, memories=rows)]
    backlog.drain()
    return written


def entity_vectors(namespace: str, count: int, *, start: int = 0, dims: int = 8, model: str = "toy") -> IndexKey:
    """`count` entities e<start>.. with random unit vectors of a client model in `namespace`."""
    names = [f"e{i}" for i in range(start, start + count)]
    graph_services.create_entities(
        namespace=namespace, entities=[{"name": n, "entityType": "thing", "observations": []} for n in names]
    )
    rng = np.random.default_rng(start)
    vectors = rng.normal(size=(count, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        assert ns_id is not None
        key = IndexKey(ns_id, OwnerKind.ENTITY, model)
        ids = dict(
            db()
            .execute(
                f"SELECT name, id FROM graph_entity WHERE namespace_id = ? AND name {in_json(sql_type='text')}",
                (ns_id, json.dumps(names)),
            )
            .fetchall()
        )
        store.put(key, [(ids[name], vectors[i]) for i, name in enumerate(names)])
    return key


def entity_ids(key: IndexKey) -> list[int]:
    rows = db().execute(
        "SELECT owner_id FROM vectors_embedding WHERE namespace_id = ? AND owner_kind = ? AND model = ? ORDER BY 1",
        (key.namespace_id, key.kind, key.model),
    )
    return [row[0] for row in rows]


def delete_vectors(key: IndexKey, owners: list[int]) -> None:
    with transaction.atomic():
        store.delete(key.kind, owners, model=key.model)
