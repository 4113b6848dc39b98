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
from kernel.sql import POSTGRES, json_values

F32 = np.dtype("<f4")

# `(SELECT value FROM json_each(?))`: the ids of a JSON list parameter (kernel.sql.json_values).
_IDS = json_values()
# The same list as a table with a column `value` (a FROM item).
_ID_TABLE = (
    "(SELECT CAST(value AS bigint) AS value FROM jsonb_array_elements_text(CAST(? AS jsonb)) AS value) AS ids"
    if POSTGRES
    else "json_each(?)"
)


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
            f"DELETE FROM vectors_embedding WHERE owner_kind = ? AND owner_id IN {_IDS}",
            (kind, ids),
        )
    else:
        cursor = db().execute(
            f"DELETE FROM vectors_embedding WHERE owner_kind = ? AND model = ? AND owner_id IN {_IDS}",
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
        f"AND owner_id IN {_IDS} AND +namespace_id = ?",
        (key.kind, key.model, as_json(owner_ids), key.namespace_id),
    )
    return {owner: from_blob(blob, dims) for owner, dims, blob in rows}


@dataclass(frozen=True)
class LogTail:
    """PostgreSQL: what a reader of the change log looks at again besides the rows after its
    position (see "The change log on PostgreSQL" below). Empty on SQLite."""

    # Transactions (ids) that were in progress when the reader last looked, listed in its
    # snapshot: their changes, which may carry positions at or below the reader's, are read once
    # they end.
    waiting: frozenset[int] = frozenset()
    # The snapshot's xmax: transactions with this id or a higher one were in progress too (or had
    # not begun) without being listed; their changes at or below the position are read as well.
    floor: int = 0
    # Uncommitted changes of a reader's own transaction that it applied ({transaction id: owners}):
    # once that transaction ends the owners' vectors are read again, so a rollback is undone.
    own: tuple[tuple[int, frozenset[int]], ...] = ()


NO_TAIL = LogTail()


@dataclass(frozen=True)
class Snapshot:
    ids: npt.NDArray[np.int64]
    matrix: npt.NDArray[np.float32]
    dims: int | None
    seq: int
    tail: LogTail = NO_TAIL


def _snapshot(rows: list[tuple[int, int, bytes]], seq: int, tail: LogTail = NO_TAIL) -> Snapshot:
    if not rows:
        return Snapshot(np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32), None, seq, tail)
    dims = rows[0][1]
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=F32).reshape(len(rows), dims).astype(np.float32)
    return Snapshot(ids, matrix, dims, seq, tail)


def _sqlite_load(key: IndexKey) -> Snapshot:
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
    return _snapshot(rows, seq)


def _sqlite_last_seq() -> int:
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
    tail: LogTail = NO_TAIL


def _sqlite_changes_since(key: IndexKey, seq: int, tail: LogTail = NO_TAIL) -> Changes | None:
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
            f"SELECT owner_id, dims, vector FROM vectors_embedding WHERE owner_kind = ? AND model = ? "
            f"AND owner_id IN {_IDS} AND +namespace_id = ? AND seq <= ?",
            (key.kind, key.model, as_json(wanted), key.namespace_id, newest),
        ):
            current[owner] = from_blob(blob, dims)
    # An upsert whose row is gone (deleted later, or moved) counts as a delete.
    deleted_ids = {owner for owner, deleted in last.items() if deleted or owner not in current}
    return Changes(current, deleted_ids, newest, rebuild=rebuild)


def _sqlite_add_rebuild_marker(key: IndexKey) -> int:
    """Ask every process holding this index to rebuild it; return the marker's log position."""
    cursor = db().execute(
        "INSERT INTO vectors_change(namespace_id, owner_kind, model, owner_id, deleted) VALUES (?, ?, ?, ?, 0)",
        (key.namespace_id, key.kind, key.model, REBUILD_MARKER),
    )
    assert cursor.lastrowid is not None
    return int(cursor.lastrowid)


# --- The change log on PostgreSQL -----------------------------------------------------------------
#
# On SQLite one writer at a time appends to the log, so positions become visible in order and
# "every row after the highest position read" is exact. On PostgreSQL positions come from a
# sequence drawn inside concurrent transactions that commit in any order: a transaction holding
# position 10 can commit after a reader has read 11 and moved past it. Three ways out were weighed:
# re-reading a trailing window of positions (misses a transaction open longer than the window),
# tracking the gaps below the highest position read and re-checking them until they fill or age
# out (a gap may be another index's row, a rolled-back one or a pruned one, which only the whole
# log tells apart, and "aged out" is a guess), and asking PostgreSQL which transactions were still
# running when the reader looked. The last is exact, so:
#
# - every change records the transaction that wrote it (`xact`, an xid8) and the triggers take
#   that transaction id *before* drawing the position (vectors/migrations/0002);
# - a read returns, in the same statement and so of the same MVCC snapshot, the rows after the
#   reader's position and `pg_current_snapshot()`: transactions listed in its xip, and those with
#   an id at or above its xmax, were running (xmax is one past the newest that had ended; running
#   transactions above it are not listed);
# - a position P the reader can see was drawn before its snapshot, so any change with a position
#   below P that it cannot see was drawn before the snapshot too, by a transaction whose id was
#   assigned before that and which was still running: listed in xip, or at or above xmax (or it
#   rolls back, and its changes never appear). The reader keeps both (LogTail.waiting, .floor)
#   and, on every later read, also reads the changes at or below its position of those
#   transactions (`xact IN waiting OR xact >= floor`, index lookups on (index key, xact)); then
#   keeps what the new snapshot still shows running. A transaction that began after the snapshot
#   draws positions above P, so the `xact >= floor` part finds only what it is meant to find;
# - the reader's own transaction is not in its snapshot's xip list and its uncommitted changes
#   are visible to it: an index that applied them remembers their owners (LogTail.own) and reads
#   their vectors again once that transaction has ended, which undoes a rollback.
#
# Changes are then applied as "these owners changed: read their current vectors" (the upsert or
# the delete is read from vectors_embedding, not from the log row), so reading a change twice or
# late is harmless. A catch-up that finds nothing new costs one indexed statement, as on SQLite.


# The newest position drawn (committed or not, 0 when none ever was): the identity sequence of
# vectors_change.seq.
_SEQUENCE_VALUE = "coalesce(pg_sequence_last_value('vectors_change_seq_seq'), 0)"


def _parse_snapshot(text: str) -> tuple[int, int, frozenset[int]]:
    """(xmin, xmax, xip) of pg_current_snapshot()'s text form `xmin:xmax:xip,xip,...`."""
    xmin, xmax, xip = text.split(":")
    return int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x)


def _running(xact: int, xmax: int, xip: frozenset[int]) -> bool:
    """Whether a snapshot (xmax, xip) sees transaction `xact` as not yet ended."""
    return xact >= xmax or xact in xip


def _pg_last_seq() -> int:
    """The newest change-log position drawn (committed or not; 0 when none ever was)."""
    row = db().execute(f"SELECT {_SEQUENCE_VALUE}").fetchone()
    return int(row[0])


def _pg_load(key: IndexKey) -> Snapshot:
    """Every vector of the index as one snapshot sees it, the position it reflects and what to
    look at again (see above)."""
    conn = db()
    # Read before the snapshot below is taken: every position up to it was drawn before.
    seq = _pg_last_seq()
    found = conn.execute(
        "SELECT owner_id, dims, vector, NULL::text, 0 FROM vectors_embedding "
        "WHERE namespace_id = ? AND owner_kind = ? AND model = ? "
        # This transaction's own uncommitted changes of the index (undone if it rolls back).
        "UNION ALL SELECT owner_id, NULL, NULL, xact::text, 1 FROM vectors_change "
        "WHERE namespace_id = ? AND owner_kind = ? AND model = ? AND xact = pg_current_xact_id_if_assigned() "
        "UNION ALL SELECT NULL, NULL, NULL, pg_current_snapshot()::text, 2",
        (key.namespace_id, key.kind, key.model, key.namespace_id, key.kind, key.model),
    ).fetchall()
    rows = [(owner, dims, bytes(blob)) for owner, dims, blob, _, part in found if part == 0]
    mine = frozenset(owner for owner, _, _, _, part in found if part == 1 and owner != REBUILD_MARKER)
    own_xact = next((int(text) for _, _, _, text, part in found if part == 1), None)
    _, xmax, xip = next(_parse_snapshot(text) for _, _, _, text, part in found if part == 2)
    own = ((own_xact, mine),) if own_xact is not None and mine else ()
    return _snapshot(rows, seq, LogTail(xip, xmax, own))


def _pg_changes_since(key: IndexKey, seq: int, tail: LogTail = NO_TAIL) -> Changes | None:
    """What happened to the index's vectors after `seq`, and in the transactions of `tail` that
    ended since; None when nothing did and the tail is unchanged."""
    conn = db()
    index = (key.namespace_id, key.kind, key.model)
    params: list[object] = [*index, seq, *index, str(tail.floor), seq]
    waiting = ""
    if tail.waiting:
        waiting = (
            "UNION ALL SELECT seq, owner_id, deleted, xact::text, 0 FROM vectors_change "
            "WHERE namespace_id = ? AND owner_kind = ? AND model = ? AND xact IN "
            "(SELECT CAST(value AS xid8) FROM jsonb_array_elements_text(CAST(? AS jsonb)) AS value) AND seq <= ? "
            "AND xact IS DISTINCT FROM pg_current_xact_id_if_assigned() "
        )
        params += [*index, as_json(sorted(tail.waiting)), seq]
    # One statement, so one snapshot: the rows, the log's first retained position, the newest one
    # drawn, the snapshot's running transactions and this transaction's id.
    found = conn.execute(
        "SELECT seq, owner_id, deleted, xact::text, 0 FROM vectors_change "
        "WHERE namespace_id = ? AND owner_kind = ? AND model = ? AND seq > ? "
        "UNION ALL SELECT seq, owner_id, deleted, xact::text, 0 FROM vectors_change "
        "WHERE namespace_id = ? AND owner_kind = ? AND model = ? AND xact >= CAST(? AS xid8) AND seq <= ? "
        # This transaction's own changes were visible when they were written: read when they were
        # after the position, never hidden below it.
        "AND xact IS DISTINCT FROM pg_current_xact_id_if_assigned() "
        + waiting
        + f"UNION ALL SELECT min(seq), {_SEQUENCE_VALUE}, NULL, "
        "pg_current_snapshot()::text || ';' || coalesce(pg_current_xact_id_if_assigned()::text, ''), 1 "
        "FROM vectors_change",
        params,
    ).fetchall()
    rows = [(position, owner, int(xact)) for position, owner, _, xact, bounds in found if not bounds]
    first, newest_drawn, snapshot = next((p, o, x) for p, o, _, x, bounds in found if bounds)
    if newest_drawn < seq:
        # The log went backwards (a database restored from a dump): positions no longer name the
        # same changes, only a rebuild is correct.
        return Changes({}, set(), seq, behind=True)
    # Log rows after `seq` were pruned: the first retained one is past the next position (with
    # the whole log pruned, any position was drawn after `seq`). A rolled-back position right
    # after `seq` looks the same and costs a needless rebuild, rarely.
    first_after_gap = first if first is not None else newest_drawn + 1
    if first_after_gap - 1 > seq:
        return Changes({}, set(), seq, behind=True)
    running, _, mine = snapshot.partition(";")
    _, xmax, xip = _parse_snapshot(running)
    own_xact = int(mine) if mine else None
    # Positions up to the newest visible one were all drawn before this snapshot: what is still
    # to come below it belongs to a transaction running now (see above).
    newest = max((position for position, _, _ in rows if position > seq), default=seq)
    owners: set[int] = set()
    rebuild = False
    applied_own: set[int] = set()
    for _, owner, xact in rows:
        if owner == REBUILD_MARKER:
            rebuild = True
            continue
        owners.add(owner)
        if xact == own_xact:
            applied_own.add(owner)
    # Own changes applied earlier, of transactions that have ended: their owners are read again.
    own: dict[int, frozenset[int]] = {}
    for xact, earlier in tail.own:
        if xact != own_xact and not _running(xact, xmax, xip):
            owners |= earlier
        else:
            own[xact] = earlier
    if own_xact is not None and applied_own:
        own[own_xact] = own.get(own_xact, frozenset()) | applied_own
    new_tail = LogTail(xip, xmax, tuple(own.items()))
    if not owners and not rebuild and newest == seq and new_tail == tail:
        return None
    current = {}
    if owners:
        # Read as they are now (a later statement sees at least what the log read saw): present is
        # an upsert, gone (deleted, moved to another namespace) a delete.
        for owner, dims, blob in conn.execute(
            f"SELECT owner_id, dims, vector FROM vectors_embedding WHERE owner_kind = ? AND model = ? "
            f"AND owner_id IN {_IDS} AND namespace_id = ?",
            (key.kind, key.model, as_json(sorted(owners)), key.namespace_id),
        ):
            current[owner] = from_blob(bytes(blob), dims)
    return Changes(current, owners - set(current), newest, rebuild=rebuild, tail=new_tail)


def _pg_add_rebuild_marker(key: IndexKey) -> int:
    conn = db()
    conn.execute("SELECT pg_current_xact_id()")  # the transaction id before the position (see above)
    row = conn.execute(
        "INSERT INTO vectors_change(namespace_id, owner_kind, model, owner_id, deleted) "
        "VALUES (?, ?, ?, ?, false) RETURNING seq",
        (key.namespace_id, key.kind, key.model, REBUILD_MARKER),
    ).fetchone()
    return int(row[0])


if POSTGRES:
    load, last_seq, changes_since, add_rebuild_marker = (
        _pg_load,
        _pg_last_seq,
        _pg_changes_since,
        _pg_add_rebuild_marker,
    )
else:
    load, last_seq, changes_since, add_rebuild_marker = (
        _sqlite_load,
        _sqlite_last_seq,
        _sqlite_changes_since,
        _sqlite_add_rebuild_marker,
    )


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
        f"SELECT value FROM {_ID_TABLE} WHERE "
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
        f"SELECT owner_id FROM vectors_embedding WHERE owner_kind = ? AND model = ? AND owner_id IN {_IDS}",
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
    rows = db().execute(_NAMESPACES_WITH_VECTORS, (as_json(namespace_ids), kind, model))
    return [row[0] for row in rows]


# One index probe per namespace. On PostgreSQL a LATERAL ... LIMIT 1: EXISTS may be planned as a
# hash semi-join that reads every vector of the model to hash their namespaces, as it was with
# statistics older than the rows (bench/RESULTS.md, "PostgreSQL").
_NAMESPACES_WITH_VECTORS = (
    f"SELECT ids.value FROM {_ID_TABLE} CROSS JOIN LATERAL (SELECT 1 FROM vectors_embedding "
    "WHERE namespace_id = ids.value AND owner_kind = ? AND model = ? LIMIT 1) AS present"
    if POSTGRES
    else f"SELECT value FROM {_ID_TABLE} WHERE EXISTS (SELECT 1 FROM vectors_embedding "
    "WHERE namespace_id = value AND owner_kind = ? AND model = ?)"
)


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
