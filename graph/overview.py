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
from graph.sql import as_json, db
from kernel.errors import InvalidArgument

GROWTH_DAYS = 30
# How long a namespace's growth is kept in Django's cache (seconds). Measured (a scratch database,
# one namespace of 100k entities and 300k observations created over 40 days): counting its rows
# created per day over 30 days takes 340-370 ms cold, because no index leads with (namespace_id,
# created_at): the (namespace_id) index makes SQLite read every row of the namespace for its
# created_at. Cached, 0.5 ms. An index on (namespace_id, created_at) on graph_entity,
# graph_observation and graph_relation would make the cold count an index range, but costs every
# write three more index entries (the write path is what this server is tuned for:
# bench/RESULTS.md); so for now the counts are cached per namespace for a few minutes (today's
# bar may lag by as much), and the first view of a big namespace after the TTL pays the count.
# Not yet within the 300 ms budget cold: see the console report (index, or counts kept per day).
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
    # Stored times are "YYYY-MM-DD HH:MM:SS..." text: the first ten characters are the UTC day,
    # and "YYYY-MM-DD" sorts before every time of that day.
    counts: dict[str, dict[str, int]] = {}
    for table in ("entity", "observation", "relation"):
        rows = db().execute(
            f"SELECT substr(created_at, 1, 10), count(*) FROM graph_{table} "
            "WHERE namespace_id = ? AND created_at >= ? GROUP BY 1",
            (ns_id, first_day),
        )
        for day, count in rows:
            counts.setdefault(day, {})[table] = count
    return counts


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
        f"{history._COLUMNS}WHERE v.id > ? AND v.namespace_id IN (SELECT value FROM json_each(?)) "
        f"ORDER BY v.id {order} LIMIT ?",
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
