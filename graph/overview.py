"""Reads for an overview of several namespaces (the console's dashboard): growth per day and the
latest changes, from the live tables and the history (`graph_version`).

Both take `namespaces={id: name}` (`Reach.NAMESPACES`: the runner has already checked the grants)
and never scan a whole namespace or the whole history per call (see each function).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

from django.core.cache import cache
from django.utils import timezone

from graph import history
from graph.sql import as_json, db, in_json
from kernel.errors import InvalidArgument

GROWTH_DAYS = 30
# How long a namespace's growth is kept in Django's cache (seconds): today's bar may lag by as much.
# The count itself (`_created_per_day`) reads only the index entries of the rows created in the
# window, so a cold page stays cheap too (bench/RESULTS.md, "Console").
GROWTH_CACHE_SECONDS = 300

RECENT_LIMIT = 30
RECENT_MAX_LIMIT = 100
# How many of the newest history rows `recent_changes` looks at, at most. graph_version has no
# index on namespace_id (on purpose: every write would pay for it, graph/models.py), so the rows
# of some namespaces are found by walking back from the newest version id (the rowid: a range,
# no sort) and filtering; bounding the walk keeps the query fast at millions of versions. The
# price: in a database whose last RECENT_SCAN_ROWS changes were all elsewhere, a namespace's
# older changes do not show as "recent" (its history pages still have them all).
RECENT_SCAN_ROWS = 20_000
EXCERPT_LENGTH = 140


class DayCount(TypedDict):
    day: str  # YYYY-MM-DD (UTC)
    entities: int
    observations: int
    relations: int
    total: int


def namespace_growth(*, namespaces: dict[int, str], days: int = GROWTH_DAYS) -> dict[str, list[DayCount]]:
    """{namespace: one DayCount per day of the last `days` days, oldest first}: the entities,
    observations (graph facts and free memories) and relations created on each day (UTC) that
    still exist. Cached per namespace for GROWTH_CACHE_SECONDS (see above)."""
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 90:
        raise InvalidArgument("days must be a whole number from 1 to 90", field="days")
    today = timezone.now().date()
    span = [(today - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    found: dict[str, list[DayCount]] = {}
    for ns_id, name in sorted(namespaces.items(), key=lambda item: item[1]):
        cache_key = f"graph:growth:{ns_id}:{span[0]}:{days}"
        counts = cache.get(cache_key)
        if counts is None:
            counts = _created_per_day(ns_id, span[0])
            cache.set(cache_key, counts, GROWTH_CACHE_SECONDS)
        found[name] = [_day(day, counts.get(day, {})) for day in span]
    return found


def _day(day: str, counts: dict[str, int]) -> DayCount:
    entities, observations, relations = (counts.get(table, 0) for table in ("entity", "observation", "relation"))
    return {
        "day": day,
        "entities": entities,
        "observations": observations,
        "relations": relations,
        "total": entities + observations + relations,
    }


def _created_per_day(ns_id: int, first_day: str) -> dict[str, dict[str, int]]:
    """{day: {table: rows of the namespace created that day}} from `first_day` (YYYY-MM-DD) on.

    No index leads with (namespace_id, created_at), and one would cost every write (counting by
    created_at read every row of the namespace: 340-370 ms for 100k entities and 300k
    observations). But ids follow the order rows are written, so each day is a range of ids:
    `_day_starts` finds where each day starts by bisecting the id order (a few dozen point reads,
    cached), and each count is then a range of the (namespace_id) index, whose entries are ordered
    by (namespace_id, id), read without touching the rows. A row written with a created_at out of
    that order (an import keeping its own times) is counted on the day of its neighbours."""
    today = timezone.now().date()
    days = [
        dt.date.fromisoformat(first_day) + dt.timedelta(days=n)
        for n in range((today - dt.date.fromisoformat(first_day)).days + 1)
    ]
    counts: dict[str, dict[str, int]] = {}
    for table in ("entity", "observation", "relation"):
        starts = _day_starts(table, days)
        bounds = [*starts, history.MAX_ROW_ID]
        for day, low, high in zip(days, bounds, bounds[1:], strict=False):
            if low >= high:
                continue
            (count,) = (
                db()
                .execute(
                    f"SELECT count(*) FROM graph_{table} WHERE namespace_id = ? AND id >= ? AND id < ?",
                    (ns_id, low, high),
                )
                .fetchone()
            )
            if count:
                counts.setdefault(day.isoformat(), {})[table] = count
    return counts


def _day_starts(table: str, days: list[dt.date]) -> list[int]:
    """The first id of graph_<table> created on or after each of `days` (midnight UTC); one past
    the last id for a day nothing was created on or after. The start of a past day does not move,
    so it is cached; today's is read again (rows of yesterday may still be committing)."""
    (newest,) = db().execute(f"SELECT max(id) FROM graph_{table}").fetchone()
    if newest is None:
        return [1] * len(days)
    starts = []
    for day in days:
        key = f"graph:day-start:{table}:{day.isoformat()}"
        found = cache.get(key)
        if found is None or found > newest + 1:
            found = _first_id_since(table, day.isoformat(), newest)
            if found <= newest:  # a later write cannot move it
                cache.set(key, found, 24 * 3600)
        starts.append(found)
    return starts


def _first_id_since(table: str, moment: str, newest: int) -> int:
    """Bisect the ids for the first row whose created_at is at or after `moment` (stored format:
    "YYYY-MM-DD ..." sorts by time), treating created_at as following the id order."""
    low, high = 1, newest + 1
    while low < high:
        middle = (low + high) // 2
        row = (
            db()
            .execute(f"SELECT id, created_at FROM graph_{table} WHERE id >= ? ORDER BY id LIMIT 1", (middle,))
            .fetchone()
        )
        if row is None or str(row[1]) >= moment:
            high = middle
        else:
            low = row[0] + 1
    return low


def recent_changes(*, namespaces: dict[int, str], after: Any = None, limit: Any = RECENT_LIMIT) -> list[dict[str, Any]]:
    """The latest changes (versions) in `namespaces`, newest first, each as `history.wire` shows
    it plus `versionId` (the cursor), `label` (memory, observation, entity or relation) and
    `excerpt` (the text, name or edge, shortened).

    Without `after`: the newest `limit`. With `after` (a versionId): the `limit` oldest changes
    after it (still listed newest first), so a reader that follows the cursor misses nothing.
    Only the newest RECENT_SCAN_ROWS versions of the whole database are looked at (see there): a
    bounded walk back over the rowid, whatever the size of the history."""
    limit = _whole(limit, "limit", 1, RECENT_MAX_LIMIT)
    cursor = 0 if after is None or after == "" else _whole(after, "after", 0, history.MAX_ROW_ID)
    if not namespaces:
        return []
    (newest,) = db().execute("SELECT max(id) FROM graph_version").fetchone()
    if newest is None:
        return []
    floor = max(cursor, newest - RECENT_SCAN_ROWS)
    order = "ASC" if after not in (None, "") else "DESC"
    rows = db().execute(
        f"{history._COLUMNS}WHERE v.id > ? AND v.namespace_id {in_json()} ORDER BY v.id {order} LIMIT ?",
        (floor, as_json(namespaces), limit),
    )
    found = [history._version(row) for row in rows]
    if order == "ASC":
        found.reverse()
    return [_row(version) for version in history._with_created(found)]


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidArgument(f"{field} must be a whole number from {low} to {high}", field=field)
    return value


def _row(version: history.Version) -> dict[str, Any]:
    state = version.state
    if version.kind == history.OBSERVATION:
        label = "memory" if state.get("entityId") is None else "observation"
        text = str(state.get("text") or "")
    elif version.kind == history.ENTITY:
        label, text = "entity", str(state.get("name") or "")
    else:
        label = "relation"
        text = f"{state.get('from') or '?'} {state.get('relationType') or '?'} {state.get('to') or '?'}"
    excerpt = text if len(text) <= EXCERPT_LENGTH else f"{text[: EXCERPT_LENGTH - 1]}…"
    entity = state.get("entityName") if version.kind == history.OBSERVATION else state.get("name")
    if version.kind == history.RELATION:
        entity = state.get("from")
    return {
        **history.wire(version),
        "versionId": version.id,
        "label": label,
        "excerpt": excerpt,
        "entity": entity if isinstance(entity, str) else None,
    }
