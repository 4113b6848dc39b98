"""Low-level SQL over stored vectors (the blobs) and the change log.

Used by the services (writes), the selectors and the index registry (reads). Like graph/sql.py it
talks to the sqlite3 connection under Django's, so `transaction.atomic()` covers it. Vectors are
float32 little-endian blobs, unit length (embedders return unit vectors, and `check_vector`
normalises a client's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from access import namespaces
from graph.sql import as_json, db, now

F32 = np.dtype("<f4")


def to_blob(vector: npt.NDArray[np.float32]) -> bytes:
    return np.ascontiguousarray(vector, dtype=F32).tobytes()


def from_blob(blob: bytes, dims: int) -> npt.NDArray[np.float32]:
    return np.frombuffer(blob, dtype=F32, count=dims).astype(np.float32)


@dataclass(frozen=True)
class IndexKey:
    """Which vectors one ANN index holds: a namespace's owners of one kind in one model's space."""

    namespace_id: int
    kind: str
    model: str


def put(key: IndexKey, rows: Sequence[tuple[int, npt.NDArray[np.float32]]]) -> None:
    """Insert or replace the vectors of `rows` [(owner_id, vector)] (the triggers log each one)."""
    if not rows:
        return
    stamp = now()
    db().executemany(
        "INSERT INTO vectors_embedding(namespace_id, owner_kind, owner_id, model, dims, vector, seq, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 0, ?) "
        "ON CONFLICT(owner_kind, owner_id, model) DO UPDATE SET "
        "vector = excluded.vector, dims = excluded.dims, namespace_id = excluded.namespace_id",
        [(key.namespace_id, key.kind, owner, key.model, int(vec.shape[0]), to_blob(vec), stamp) for owner, vec in rows],
    )


def delete(kind: str, owner_ids: Iterable[int], *, model: str | None = None) -> int:
    """Delete the vectors of these owners (of one model, or of every model). Returns rows deleted."""
    ids = as_json(owner_ids)
    if model is None:
        cursor = db().execute(
            "DELETE FROM vectors_embedding WHERE owner_kind = ? AND owner_id IN (SELECT value FROM json_each(?))",
            (kind, ids),
        )
    else:
        cursor = db().execute(
            "DELETE FROM vectors_embedding WHERE owner_kind = ? AND model = ? "
            "AND owner_id IN (SELECT value FROM json_each(?))",
            (kind, model, ids),
        )
    return cursor.rowcount


@dataclass(frozen=True)
class StoredVector:
    owner_id: int
    model: str
    dims: int
    vector: npt.NDArray[np.float32]


def get(kind: str, owner_id: int, *, model: str | None = None) -> list[StoredVector]:
    """The vectors of one owner: of `model`, or of every model (newest write first)."""
    sql = "SELECT owner_id, model, dims, vector FROM vectors_embedding WHERE owner_kind = ? AND owner_id = ?"
    params: tuple[object, ...] = (kind, owner_id)
    if model is not None:
        sql += " AND model = ?"
        params += (model,)
    rows = db().execute(sql + " ORDER BY seq DESC", params).fetchall()
    return [StoredVector(o, m, d, from_blob(v, d)) for o, m, d, v in rows]


def vectors_of(key: IndexKey, owner_ids: Iterable[int]) -> dict[int, npt.NDArray[np.float32]]:
    """The stored vectors of these owners in the index's space (missing owners are left out)."""
    rows = db().execute(
        # `+namespace_id`: look the owners up by the unique (kind, owner, model) index; SQLite
        # otherwise prefers the namespace index and scans the whole namespace.
        "SELECT owner_id, dims, vector FROM vectors_embedding WHERE owner_kind = ? AND model = ? "
        "AND owner_id IN (SELECT value FROM json_each(?)) AND +namespace_id = ?",
        (key.kind, key.model, as_json(owner_ids), key.namespace_id),
    )
    return {owner: from_blob(blob, dims) for owner, dims, blob in rows}


@dataclass(frozen=True)
class Snapshot:
    ids: npt.NDArray[np.int64]
    matrix: npt.NDArray[np.float32]
    dims: int | None
    seq: int


def load(key: IndexKey) -> Snapshot:
    """Every vector of the index, with the change-log position it reflects.

    Read in one statement (one read snapshot under WAL), and the position is taken inside the same
    transaction, so a change committed after the snapshot is applied later by catch-up, never lost."""
    conn = db()
    seq = last_seq()
    rows = conn.execute(
        "SELECT owner_id, dims, vector FROM vectors_embedding "
        "WHERE namespace_id = ? AND owner_kind = ? AND model = ? AND seq <= ?",
        (key.namespace_id, key.kind, key.model, seq),
    ).fetchall()
    if not rows:
        return Snapshot(np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32), None, seq)
    dims = rows[0][1]
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=F32).reshape(len(rows), dims).astype(np.float32)
    return Snapshot(ids, matrix, dims, seq)


def last_seq() -> int:
    """The newest change-log position (0 when nothing was ever written)."""
    row = db().execute("SELECT seq FROM sqlite_sequence WHERE name = 'vectors_change'").fetchone()
    return int(row[0]) if row else 0


# The owner id of a rebuild marker in the change log (real owners are row ids, never negative): a
# maintenance job (vectors/services.py) appends one to ask every process to rebuild that index from
# the stored vectors, which retrains IVF-Flat lists and drops HNSW's deleted slots.
REBUILD_MARKER = -1


@dataclass(frozen=True)
class Changes:
    upserted: dict[int, npt.NDArray[np.float32]]
    deleted: set[int]
    seq: int
    # A rebuild marker is among the changes.
    rebuild: bool = False
    # Log rows after the position asked about were pruned: catching up would miss changes, only a
    # rebuild from the stored vectors is correct.
    behind: bool = False


def changes_since(key: IndexKey, seq: int) -> Changes | None:
    """What happened to the index's vectors after `seq`, netted per owner; None when nothing did."""
    conn = db()
    # One statement, so one snapshot: the log's first retained position (and its newest one) is
    # read together with the rows, and a prune that runs meanwhile cannot hide a gap. The last
    # column tells the rows apart (the other columns take their types from the first SELECT, so
    # Django's bool converter would mangle a number in the `deleted` column).
    found = conn.execute(
        "SELECT seq, owner_id, deleted, 0 FROM vectors_change "
        "WHERE namespace_id = ? AND owner_kind = ? AND model = ? AND seq > ? "
        "UNION ALL SELECT min(seq), (SELECT seq FROM sqlite_sequence WHERE name = 'vectors_change'), NULL, 1 "
        "FROM vectors_change",
        (key.namespace_id, key.kind, key.model, seq),
    ).fetchall()
    rows = [(position, owner, deleted) for position, owner, deleted, bounds in found if not bounds]
    first, newest_written = next((position, owner) for position, owner, _, bounds in found if bounds)
    # Rows are contiguous from the first retained one: a gap after `seq` means pruned rows (with
    # the whole log pruned, any position written after `seq`).
    first_after_gap = first if first is not None else (newest_written or 0) + 1
    if first_after_gap - 1 > seq:
        return Changes({}, set(), seq, behind=True)
    if not rows:
        return None
    rows.sort()
    rebuild = False
    last: dict[int, bool] = {}
    for _, owner, deleted in rows:
        if owner == REBUILD_MARKER:
            rebuild = True
        else:
            last[owner] = bool(deleted)
    newest = rows[-1][0]
    # A row written after `newest` is newer than the log we read: leave it for the next catch-up.
    current = {}
    wanted = [owner for owner, deleted in last.items() if not deleted]
    if wanted:
        for owner, dims, blob in conn.execute(
            "SELECT owner_id, dims, vector FROM vectors_embedding WHERE owner_kind = ? AND model = ? "
            "AND owner_id IN (SELECT value FROM json_each(?)) AND +namespace_id = ? AND seq <= ?",
            (key.kind, key.model, as_json(wanted), key.namespace_id, newest),
        ):
            current[owner] = from_blob(blob, dims)
    # An upsert whose row is gone (deleted later, or moved) counts as a delete.
    deleted_ids = {owner for owner, deleted in last.items() if deleted or owner not in current}
    return Changes(current, deleted_ids, newest, rebuild=rebuild)


def add_rebuild_marker(key: IndexKey) -> int:
    """Ask every process holding this index to rebuild it; return the marker's log position."""
    cursor = db().execute(
        "INSERT INTO vectors_change(namespace_id, owner_kind, model, owner_id, deleted) VALUES (?, ?, ?, ?, 0)",
        (key.namespace_id, key.kind, key.model, REBUILD_MARKER),
    )
    assert cursor.lastrowid is not None
    return int(cursor.lastrowid)


def count(key: IndexKey) -> int:
    """How many vectors the index holds in the database."""
    row = (
        db()
        .execute(
            "SELECT count(*) FROM vectors_embedding WHERE namespace_id = ? AND owner_kind = ? AND model = ?",
            (key.namespace_id, key.kind, key.model),
        )
        .fetchone()
    )
    return int(row[0])


def deletes_between(key: IndexKey, after: int, upto: int) -> int:
    """Vector deletes of the index logged at positions in (after, upto] (among rows not pruned)."""
    row = (
        db()
        .execute(
            "SELECT count(*) FROM vectors_change WHERE namespace_id = ? AND owner_kind = ? AND model = ? "
            "AND seq > ? AND seq <= ? AND deleted AND owner_id >= 0",
            (key.namespace_id, key.kind, key.model, after, upto),
        )
        .fetchone()
    )
    return int(row[0])


def prune_changes(upto: int, *, batch: int = 5000) -> int:
    """Delete change-log rows at positions <= `upto`, in batches (each its own transaction, so the
    write lock is never held long); return how many. AUTOINCREMENT keeps the newest position in
    sqlite_sequence, so positions are never reused even if the log empties."""
    from django.db import transaction

    pruned = 0
    while True:
        with transaction.atomic():
            deleted = (
                db()
                .execute(
                    "DELETE FROM vectors_change WHERE seq IN "
                    "(SELECT seq FROM vectors_change WHERE seq <= ? ORDER BY seq LIMIT ?)",
                    (upto, batch),
                )
                .rowcount
            )
        pruned += deleted
        if deleted < batch:
            return pruned


def namespaces_with_other_models(kind: str, model: str) -> list[int]:
    """Namespaces holding vectors of `kind` in some model other than `model` (two index range
    probes per namespace, not a scan of the vectors)."""
    rows = db().execute(
        "SELECT value FROM json_each(?) WHERE "
        "EXISTS (SELECT 1 FROM vectors_embedding v WHERE v.namespace_id = value AND v.owner_kind = ? AND v.model < ?) "
        "OR EXISTS (SELECT 1 FROM vectors_embedding v WHERE v.namespace_id = value AND v.owner_kind = ? AND v.model > ?) "
        "ORDER BY value",
        (as_json(namespaces.all_ids()), kind, model, kind, model),
    )
    return [row[0] for row in rows]


def owners_with_vectors(kind: str, model: str, owner_ids: Iterable[int]) -> set[int]:
    """Those of `owner_ids` that have a vector of `kind` in `model` (one probe of the unique
    (kind, owner, model) index each)."""
    rows = db().execute(
        "SELECT owner_id FROM vectors_embedding WHERE owner_kind = ? AND model = ? "
        "AND owner_id IN (SELECT value FROM json_each(?))",
        (kind, model, as_json(owner_ids)),
    )
    return {row[0] for row in rows}


def index_keys(namespace_id: int | None = None) -> list[tuple[IndexKey, int, int]]:
    """Every (index key, vector count, dims) that has vectors, optionally of one namespace."""
    sql = "SELECT namespace_id, owner_kind, model, count(*), max(dims) FROM vectors_embedding"
    params: tuple[object, ...] = ()
    if namespace_id is not None:
        sql += " WHERE namespace_id = ?"
        params = (namespace_id,)
    rows = db().execute(sql + " GROUP BY namespace_id, owner_kind, model ORDER BY 1, 2, 3", params)
    return [(IndexKey(ns, kind, model), count, dims) for ns, kind, model, count, dims in rows]


def namespaces_with_vectors(namespace_ids: list[int], kind: str, model: str) -> list[int]:
    """Those of `namespace_ids` holding vectors of (kind, model): a search across every readable
    namespace then loads no empty index, which would also push real ones out of the LRU."""
    rows = db().execute(
        "SELECT value FROM json_each(?) WHERE EXISTS (SELECT 1 FROM vectors_embedding "
        "WHERE namespace_id = value AND owner_kind = ? AND model = ?)",
        (as_json(namespace_ids), kind, model),
    )
    return [row[0] for row in rows]


def dims_of(key: IndexKey) -> int | None:
    row = (
        db()
        .execute(
            "SELECT dims FROM vectors_embedding WHERE namespace_id = ? AND owner_kind = ? AND model = ? LIMIT 1",
            (key.namespace_id, key.kind, key.model),
        )
        .fetchone()
    )
    return int(row[0]) if row else None
