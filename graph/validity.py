"""Validity time: when a fact (an observation, a free memory, a relation) was true, kept apart
from when it was recorded (`created_at`) and from its history (graph/history.py): bi-temporal.

A row holds from `valid_from` (NULL: from `created_at`) until `valid_to` (NULL: still). Reads
choose the time they look at with a `When`:

- `CURRENT` (the default): what holds now, `valid_from <= now < valid_to`;
- `When(at=t)` (a client's `asOf`): what held at `t`;
- `When(include_expired=True)`: every fact, current, past or future, each marked with its
  validity on the wire (`marks`).

A fact is never deleted by time: closing it (`close`: validTo = now, by a supersession, a
functional relation type or an extracted INVALIDATE) keeps the row for `asOf` reads and records a
"close" version in its history. Only a delete removes a fact (and the history keeps it).

Current reads filter with `condition`; what current reads leave out is found without a scan by
`not_current_ids` (indexes observation_closed and observation_later, graph/models.py), which the
vector side uses to filter the ANN index; `asOf` reads check the candidates they found instead
(`valid_ids`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypedDict

from django.db import transaction
from django.utils import timezone

from graph import history
from graph.exceptions import Conflict, NotFound
from graph.fts import index_text
from graph.models import Observation
from graph.signals import observations_written
from graph.sql import as_json, db, now
from graph.write_sql import POSTGRES, stored
from kernel.errors import InvalidArgument
from kernel.sql import in_json, iso, stored_time

__all__ = [
    "ALWAYS",
    "CURRENT",
    "Marks",
    "When",
    "check_range",
    "close",
    "condition",
    "lineage",
    "marks",
    "not_current_ids",
    "parse_time",
    "set_span",
    "starts",
    "successor",
    "supersede",
    "valid_ids",
    "when",
]

OBSERVATIONS = "graph_observation"
RELATIONS = "graph_relation"
# History kinds of the two tables (graph/history.py).
_KINDS = {OBSERVATIONS: history.OBSERVATION, RELATIONS: history.RELATION}


class When(NamedTuple):
    """The time a read looks at: `at` (a stored time; None: now), or every fact with
    `include_expired`."""

    at: str | None = None
    include_expired: bool = False

    @property
    def current(self) -> bool:
        return self.at is None and not self.include_expired

    @property
    def marked(self) -> bool:
        """Whether answers carry each fact's validity (asked for a time, or for every fact)."""
        return not self.current


CURRENT = When()

# The condition every row passes (`condition` for every fact): SQLite's `1`, PostgreSQL's boolean.
ALWAYS = "TRUE" if POSTGRES else "1"


def parse_time(value: Any, *, field: str) -> str:
    """An ISO 8601 time (a date alone is its midnight UTC; no offset is UTC) as stored; refuses
    anything else with InvalidArgument naming `field`."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
        except ValueError:
            raise InvalidArgument(
                f"{field} must be an ISO 8601 time such as 2025-03-01T12:00:00Z, not {value!r}", field=field
            ) from None
    else:
        raise InvalidArgument(f"{field} must be an ISO 8601 time such as 2025-03-01T12:00:00Z", field=field)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return stored_time(moment)


def when(as_of: Any = None, include_expired: Any = False) -> When:
    """The `When` of a read's `asOf` and `includeExpired` arguments (checked)."""
    if include_expired is None:
        include_expired = False
    if not isinstance(include_expired, bool):
        raise InvalidArgument("includeExpired must be true or false", field="includeExpired")
    at = parse_time(as_of, field="asOf") if as_of is not None else None
    if at is not None and len(at) == 19 and isinstance(as_of, str) and len(as_of.strip()) > 10 and "." not in as_of:
        # A time to the second (how every surface shows times) means the end of that second:
        # a validFrom sent back as it was shown finds its fact, stored to the microsecond.
        at += ".999999"
    return When(at, include_expired)


def check_range(valid_from: Any, valid_to: Any) -> tuple[str | None, str | None]:
    """A write's `validFrom` and `validTo` (either may be None) as stored times; InvalidArgument
    when one is not a time or validFrom is not before validTo."""
    start = parse_time(valid_from, field="validFrom") if valid_from is not None else None
    end = parse_time(valid_to, field="validTo") if valid_to is not None else None
    if end is not None and end <= (start or now()):
        raise InvalidArgument(
            "validFrom must be before validTo" if start is not None else "validTo must be after validFrom (now)",
            field="validTo",
        )
    return start, end


def condition(alias: str, moment: When, *, placeholder: str = "?") -> tuple[str, list[Any]]:
    """An SQL condition on the row `alias` (of graph_observation or graph_relation): valid at the
    time `moment` looks at, with its parameters (for `?` placeholders: two; for a named one such
    as `:at`, the caller binds it once, to `at_value(moment)`, and the list is empty)."""
    if moment.include_expired:
        return ALWAYS, []
    sql = (
        f"({alias}.valid_to IS NULL OR {alias}.valid_to > {placeholder}) "
        f"AND coalesce({alias}.valid_from, {alias}.created_at) <= {placeholder}"
    )
    if placeholder != "?":
        return sql, []
    at = at_value(moment)
    return sql, [at, at]


def at_value(moment: When) -> str:
    """The stored time a `condition` with a named placeholder binds."""
    return moment.at or now()


def not_current_ids(table: str, namespace_id: int) -> set[int]:
    """Ids of the namespace's rows that do not hold now: closed (or given an end that passed) and
    starting later. Small, and found by partial indexes: current reads remove them from what the
    ANN index returns."""
    at = now()
    found = db().execute(
        f"SELECT id FROM {table} WHERE namespace_id = ? AND valid_to IS NOT NULL AND valid_to <= ?",
        (namespace_id, at),
    )
    ids = {row[0] for row in found}
    if table == OBSERVATIONS:
        later = db().execute(
            "SELECT id FROM graph_observation WHERE namespace_id = ? AND valid_from > created_at AND valid_from > ?",
            (namespace_id, at),
        )
        ids.update(row[0] for row in later)
    return ids


def valid_ids(table: str, ids: Sequence[int], moment: When) -> set[int]:
    """Those of `ids` that exist and are valid at the time `moment` looks at."""
    if not ids:
        return set()
    test, params = condition("x", moment)
    found = db().execute(
        f"SELECT x.id FROM {table} x WHERE x.id {in_json()} AND {test}",
        (as_json(ids), *params),
    )
    return {row[0] for row in found}


def starts(ids: Sequence[int]) -> dict[int, str]:
    """{id: when its validity began (valid_from, else created_at), as stored} of the observations
    with these ids (extraction dates a message's facts from its message)."""
    if not ids:
        return {}
    found = db().execute(
        f"SELECT id, coalesce(valid_from, created_at) FROM graph_observation WHERE id {in_json()}",
        (as_json(ids),),
    )
    return {ident: stored(start) for ident, start in found}


class Marks(TypedDict):
    validFrom: str | None
    validTo: str | None
    # Whether it holds now.
    current: bool


def marks(valid_from: Any, valid_to: Any, created_at: Any, *, at: str | None = None) -> Marks:
    """A row's validity on the wire (ISO 8601 UTC); `current` as of `at` (a stored time; default
    now: a read marking many rows passes the time it read once)."""
    start = stored(valid_from or created_at)
    end = stored(valid_to) if valid_to else None
    at = stored(at) if at else now()
    return {"validFrom": iso(start), "validTo": iso(end), "current": start <= at and (end is None or end > at)}


def close(table: str, ids: Sequence[int], *, at: str | None = None) -> list[int]:
    """End the validity of these rows (those still open) at `at` (default now), keeping them;
    record a "close" version of each. Returns the ids it closed: a row already closed, by a
    concurrent call too, is not closed twice (the UPDATE only matches open rows, and it runs in
    the caller's write transaction)."""
    if not ids:
        return []
    stamp = at or now()
    kind = _KINDS[table]
    befores = history.states(kind, list(ids))
    closed = [
        row[0]
        for row in db().execute(
            f"UPDATE {table} SET valid_to = ? WHERE id {in_json()} AND valid_to IS NULL RETURNING id",
            (stamp, as_json(ids)),
        )
    ]
    history.snapshot_ids(kind, "close", closed, side="after", befores={i: befores[i] for i in closed}, at=stamp)
    return closed


def successor(observation_id: int) -> int | None:
    """The id of the observation that superseded this one, if any."""
    row = db().execute("SELECT id FROM graph_observation WHERE supersedes_id = ?", (observation_id,)).fetchone()
    return row[0] if row else None


def lineage(ids: Sequence[int]) -> dict[int, tuple[int | None, int | None]]:
    """{id: (the id it supersedes, the id of its successor)} of the observations with these ids."""
    if not ids:
        return {}
    found = db().execute(
        "SELECT o.id, o.supersedes_id, (SELECT s.id FROM graph_observation s WHERE s.supersedes_id = o.id) "
        f"FROM graph_observation o WHERE o.id {in_json()}",
        (as_json(ids),),
    )
    return {ident: (before, after) for ident, before, after in found}


class Superseded(NamedTuple):
    id: int  # the successor
    supersedes: int
    namespace_id: int
    entity_id: int | None
    at: str  # when the old one closed and the new one began


def supersede(
    observation_id: int,
    text: str,
    *,
    namespace_ids: Sequence[int],
    free_only: bool = False,
    entity_id: int | None = None,
    at: str | None = None,
    dedupe_key: str | None = None,
    source_id: int | None = None,
    extracted_by: str = "",
) -> Superseded:
    """Close the observation (validTo = `at`, default now) and create its successor with `text`,
    valid from the same instant, linked both ways (`supersedes_id`), in one transaction; the
    successor keeps its namespace, entity, actor and tags. Only an observation of `namespace_ids`
    (a free memory with `free_only`; one of `entity_id` when given) is found.

    NotFound when there is none; Conflict, naming its successor, when it is already superseded
    or closed (of two supersessions at once the second gets it: the close only matches an open
    row, inside the write transaction, and the unique index observation_one_successor backs it)."""
    with transaction.atomic():
        conn = db()
        row = conn.execute(
            "SELECT namespace_id, entity_id, actor_id, tags, valid_to FROM graph_observation "
            f"WHERE id = ? AND namespace_id {in_json()} AND (expires_at IS NULL OR expires_at > ?)",
            (observation_id, as_json(namespace_ids), now()),
        ).fetchone()
        if row is None or (free_only and row[1] is not None) or (entity_id is not None and row[1] != entity_id):
            raise NotFound(f"no current memory {history.wire_id(history.OBSERVATION, observation_id)}")
        ns_id, owner_entity, actor, tags, _ = row
        if not isinstance(tags, str):
            tags = as_json(tags)  # PostgreSQL's jsonb comes back decoded
        stamp = at or now()
        if not close(OBSERVATIONS, [observation_id], at=stamp):
            later = successor(observation_id)
            old = history.wire_id(history.OBSERVATION, observation_id)
            if later is not None:
                raise Conflict(
                    f"{old} is already superseded by {history.wire_id(history.OBSERVATION, later)}: "
                    "supersede that one (the current fact) instead"
                )
            raise Conflict(f"{old} is no longer current (its validity ended): there is nothing to supersede")
        (new_id,) = conn.execute(
            "INSERT INTO graph_observation(namespace_id, entity_id, body, search_text, actor_id, tags, created_at, "
            "dedupe_key, valid_from, supersedes_id, source_id, extracted_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                ns_id,
                owner_entity,
                text,
                index_text(text),
                actor,
                tags,
                stamp,
                dedupe_key,
                stamp,
                observation_id,
                source_id,
                extracted_by,
            ),
        ).fetchone()
        history.snapshot_ids(history.OBSERVATION, "create", [new_id], side="after", at=stamp)
        observations_written.send(sender=Observation, namespace_id=ns_id, observations=[(new_id, text)])
    return Superseded(new_id, observation_id, ns_id, owner_entity, stamp)


def set_span(
    observation_id: int,
    valid_from: str | None,
    valid_to: str | None,
    *,
    supersedes_id: int | None = None,
    source_id: int | None = None,
    extracted_by: str | None = None,
) -> None:
    """Give an observation the validity (and, when given, the lineage) a restore brings back
    from one of its versions (memory/history.py decides when that is allowed). A `supersedes_id`
    whose predecessor has another successor by now is left out: one successor per observation."""
    conn = db()
    conn.execute(
        "UPDATE graph_observation SET valid_from = ?, valid_to = ? WHERE id = ?",
        (valid_from, valid_to, observation_id),
    )
    if source_id is not None or extracted_by:
        conn.execute(
            "UPDATE graph_observation SET source_id = ?, extracted_by = ? WHERE id = ?",
            (source_id, extracted_by or "", observation_id),
        )
    if supersedes_id is not None and successor(supersedes_id) in (None, observation_id):
        conn.execute("UPDATE graph_observation SET supersedes_id = ? WHERE id = ?", (supersedes_id, observation_id))
