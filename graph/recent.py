"""The newest entities or observations matching a full-text query, on PostgreSQL.

Searches rank the newest MEMORYHUB_SEARCH_RANK_WINDOW matches of their words (graph/selectors.py
`_ranked_matches_postgres`, graph/observations.py `keyword_candidates`). FTS5 reads a word's rows
newest first; a GIN index returns them in no order. So for a word held by a few percent of the
rows PostgreSQL has two plans, both slow: read every match and sort them, or walk the newest
rows until the window is full (about 50,000 rows for 1,000 matches at 2 %).

Each entity and observation also carries its id bucket (`b<id >> 12>`, migration 0011) in the
same GIN index as its words. "These words, in the newest k buckets" is then an intersection of posting
lists inside the index, and only the rows it finds are read. It is used only where it pays:
when the words are common enough that the window is far from the newest row, and not so common
that walking the newest rows fills it at once. How common they are comes from the planner's own
statistics of the column (`pg_stats.most_common_elems`, read at most every STATISTICS_SECONDS).

An estimate only chooses the statement, never the answer: when the newest buckets hold fewer
matches than the window, the same statement goes on to the newest matches below them (a gated
branch that runs only then), so the window is always the newest matches of the whole table.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass

from kernel.sql import POSTGRES, db

BUCKET_BITS = 12  # the migration's `id >> 12`
BUCKET_IDS = 1 << BUCKET_BITS
STATISTICS_SECONDS = 300.0
# Walking this many of the newest ids costs about as much as the bucket search (0.2 µs a row):
# below it, the plain statement (which the planner makes a walk) is as fast.
SHORT_WALK_IDS = 4 * BUCKET_IDS
# The buckets searched cover this many times the ids the estimate says hold the window, so a
# word somewhat rarer among the newest rows than in the whole table still fills it at once.
MARGIN = 1.5


@dataclass(frozen=True)
class WordStatistics:
    """The planner's statistics of a table's search_vector: the most common lexemes (sorted)
    with the share of rows holding each; how many rows there are, and how many ids they spread
    over (the lowest to the highest)."""

    lexemes: list[str]
    shares: list[float]
    cumulative: list[float]  # cumulative[i] = sum(shares[:i])
    rows: float
    ids: int

    def share_of(self, lexeme: str, *, prefix: bool) -> float:
        """The share of rows holding `lexeme` (any lexeme it starts, for a prefix); 0 for a
        lexeme too rare to be among the most common."""
        start = bisect.bisect_left(self.lexemes, lexeme)
        if not prefix:
            found = start < len(self.lexemes) and self.lexemes[start] == lexeme
            return self.shares[start] if found else 0.0
        # Every lexeme that starts with `lexeme` sorts before lexeme + the highest character.
        end = bisect.bisect_left(self.lexemes, lexeme + "\U0010ffff", lo=start)
        return min(1.0, self.cumulative[end] - self.cumulative[start])


# The tables whose rows carry their id bucket (migration 0011): searched names and observations.
TABLES = frozenset({"graph_entity", "graph_observation"})
_cached: dict[str, tuple[float, WordStatistics | None]] = {}


def forget() -> None:
    """Read the statistics again at the next search (after ANALYZE, and in tests)."""
    _cached.clear()


def statistics(table: str) -> WordStatistics | None:
    """The statistics of `table` (one of TABLES), read at most every STATISTICS_SECONDS; None
    before the table was first analyzed (every search then takes the plain statement)."""
    if not POSTGRES:
        return None
    now = time.monotonic()
    cached = _cached.get(table)
    if cached is not None and cached[0] > now:
        return cached[1]
    if table not in TABLES:
        raise ValueError(f"{table} has no id buckets")
    row = (
        db()
        .execute(
            # most_common_elems is an anyarray: its text form read back as text[] (psycopg then
            # unquotes what needs quoting).
            "SELECT CAST(CAST(s.most_common_elems AS text) AS text[]), s.most_common_elem_freqs, c.reltuples, "
            f"(SELECT max(id) - min(id) + 1 FROM {table}) FROM pg_class c LEFT JOIN pg_stats s "
            "ON s.schemaname = current_schema() AND s.tablename = ? AND s.attname = 'search_vector' "
            "WHERE c.oid = CAST(? AS regclass)",
            (table, table),
        )
        .fetchone()
    )
    found = _parsed(*row) if row is not None else None
    _cached[table] = (now + STATISTICS_SECONDS, found)
    return found


def _parsed(
    lexemes: list[str] | None, frequencies: list[float] | None, rows: float, ids: int | None
) -> WordStatistics | None:
    if not lexemes or not frequencies or rows <= 0 or not ids:
        return None
    # The frequencies end with three more: the lowest and highest of them and the share of NULLs.
    pairs = sorted(zip(lexemes, frequencies, strict=False))
    cumulative = [0.0]
    for _, share in pairs:
        cumulative.append(cumulative[-1] + share)
    return WordStatistics([p[0] for p in pairs], [p[1] for p in pairs], cumulative, float(rows), int(ids))


def estimated_share(match: str, words: WordStatistics) -> float:
    """The share of rows a tsquery text from graph/fts.py (build_tsquery, build_tsquery_any)
    matches: its `|` groups add up, and each group (words joined by `&` or `<->`) holds no more
    rows than its rarest word does."""
    total = 0.0
    for group in match.split(" | "):
        rarest = 1.0
        # Split at the quotes, the lexemes are the odd pieces; a prefix's next piece starts `:*`.
        pieces = group.split("'")
        for i in range(1, len(pieces), 2):
            prefix = i + 1 < len(pieces) and pieces[i + 1].startswith(":*")
            rarest = min(rarest, words.share_of(pieces[i], prefix=prefix))
        total += rarest
    return min(1.0, total)


def newest_buckets(match: str, window: int, table: str) -> int | None:
    """How many of the newest id buckets of `table` to search first for the newest `window`
    rows matching `match` (a tsquery text), or None for the plain statement (buckets_for)."""
    words = statistics(table)
    return buckets_for(match, window, words) if words is not None else None


def buckets_for(match: str, window: int, words: WordStatistics) -> int | None:
    """newest_buckets with these statistics. None when the plain statement is as fast: the words
    are rare (the index reads all their rows cheaply), or common enough that walking the newest
    rows fills the window at once, or the buckets would cover most of the table anyway."""
    share = estimated_share(match, words)
    if share <= 0.0 or share * words.rows < 3 * window:
        return None
    ids_per_row = max(1.0, words.ids / words.rows)
    wanted_ids = window / share * ids_per_row
    if wanted_ids < SHORT_WALK_IDS:
        return None
    buckets = math.ceil(MARGIN * wanted_ids / BUCKET_IDS) + 1  # + the newest, partly filled one
    if buckets * BUCKET_IDS >= words.ids:
        return None
    return buckets


def newest_first(
    select: str, params: tuple[object, ...], *, table: str, alias: str, window: int, buckets: int | None
) -> tuple[str, tuple[object, ...]]:
    """A statement (and its parameters) for the newest `window` rows of `select` (a SELECT of
    `table` as `alias` whose WHERE clause ends the text, ANDed conditions only), newest first:
    `select ... ORDER BY id DESC LIMIT window`, searched in the newest `buckets` first when
    given (newest_buckets)."""
    plain = f"{select} ORDER BY {alias}.id DESC LIMIT ?"
    if buckets is None:
        return plain, (*params, window)
    if table not in TABLES:
        raise ValueError(f"{table} has no id buckets")
    statement = (
        # The buckets from the highest id when the statement runs (a list computed earlier would
        # miss rows written since).
        f"WITH newest AS MATERIALIZED (SELECT max(id) >> {BUCKET_BITS} AS top FROM {table}), "
        f"bucketed AS MATERIALIZED ({select} AND {alias}.search_bucket @@ "
        "(SELECT CAST(string_agg('b' || b, ' | ') AS tsquery) FROM newest, generate_series(newest.top, newest.top - ? + 1, -1) AS b) "
        f"ORDER BY {alias}.id DESC LIMIT ?) "
        "SELECT * FROM bucketed "
        # The buckets hold every match of their ids, so when they hold fewer than the window the
        # rest are the newest matches below them. This part runs only then (the count is a
        # constant of the statement).
        f"UNION ALL ({select} AND {alias}.id < (((SELECT top FROM newest) - ? + 1) << {BUCKET_BITS}) "
        f"AND (SELECT count(*) FROM bucketed) < ? ORDER BY {alias}.id DESC LIMIT ? - (SELECT count(*) FROM bucketed))"
    )
    return statement, (*params, buckets, window, *params, buckets, window, window)
