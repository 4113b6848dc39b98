"""Full-text searches on PostgreSQL look for a common word's newest matches in the newest id
buckets first (graph/recent.py). The choice is an estimate from the planner's statistics; the
answer must be the one the plain statement gives, also when the estimate is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from access import namespaces
from graph import observations, recent, selectors, services
from graph.fts import build_tsquery, build_tsquery_any
from graph.sql import db as connection
from tests.graph.statements import statements

# --- the estimate (pure: both backends) ------------------------------------------------------------


def words(shares: dict[str, float], *, rows: float = 100_000, ids: int = 100_000) -> recent.WordStatistics:
    found = recent._parsed(list(shares), list(shares.values()), rows, ids)
    assert found is not None
    return found


def test_a_query_holds_as_many_rows_as_its_rarest_word_and_its_alternatives_add_up() -> None:
    stats = words({"deploy": 0.02, "deployment": 0.01, "tide": 0.3, "qq01478qq00vri": 0.021})
    assert recent.estimated_share("'tide'", stats) == 0.3
    # A word is a prefix: it holds what the words it starts hold.
    assert recent.estimated_share(build_tsquery("deploy") or "", stats) == pytest.approx(0.03)
    assert recent.estimated_share(build_tsquery("tide deploy") or "", stats) == pytest.approx(0.03)
    assert recent.estimated_share(build_tsquery("部署") or "", stats) == 0.021
    # A word too rare to be among the most common holds (about) nothing.
    assert recent.estimated_share(build_tsquery("tide zebra") or "", stats) == 0.0
    assert recent.estimated_share(build_tsquery('"deploy tide"') or "", stats) == 0.02
    assert recent.estimated_share(build_tsquery_any(["tide", "deployment"]) or "", stats) == pytest.approx(0.31)
    assert recent.estimated_share(build_tsquery_any(["tide", "tide", "tide", "tide"]) or "", stats) == 1.0


def test_buckets_are_searched_only_for_words_neither_rare_nor_common() -> None:
    stats = words({"rare": 0.001, "mid": 0.02, "common": 0.3}, rows=500_000, ids=500_000)
    window = 1_000
    # 1,000 matches of a 2 % word are spread over the newest 50,000 ids: 12.2 buckets, searched
    # with half as many again and the newest, partly filled one.
    assert recent.buckets_for("'mid'", window, stats) == 20
    # 500 rows in all: the index reads them at once.
    assert recent.buckets_for("'rare'", window, stats) is None
    # The newest 3,300 rows hold the window: walking them is as fast.
    assert recent.buckets_for("'common'", window, stats) is None
    assert recent.buckets_for("'unknown'", window, stats) is None
    # Ids with gaps (deleted rows) spread the window over more of them.
    assert recent.buckets_for("'mid'", window, words({"mid": 0.02}, rows=500_000, ids=1_000_000)) == 38
    # A table about as small as the buckets: the plain statement reads no more.
    assert recent.buckets_for("'mid'", window, words({"mid": 0.02}, rows=80_000, ids=80_000)) is None


def test_the_statistics_are_absent_until_the_table_has_some() -> None:
    assert recent._parsed(None, None, -1, None) is None
    assert recent._parsed(["a"], [0.5, 0.5, 0.5, 0.0], 0, 10) is None
    assert recent._parsed(["a, b", "c"], [0.2, 0.1, 0.1, 0.2, 0.0], 10, 10) is not None


# --- the search (PostgreSQL) -------------------------------------------------------------------------

NAMESPACE = "org:acme:buckets"
BUCKETS = 40
PER_BUCKET = 25


@pytest.fixture
def spread(db: Any, settings: Any) -> Iterator[None]:
    """40 buckets of ids with 25 entities and 25 observations each. Observations: "tide" in 2 of
    every bucket's 25 (8 %), "ember" in 10 of each of the 5 oldest buckets only (5 %). Entity
    names: "kelp" and "moss" alike. The window is 15 matches."""
    settings.MEMORYHUB_SEARCH_RANK_WINDOW = 15
    conn = connection()
    starts = {
        table: conn.execute(f"SELECT (coalesce(max(id), 0) >> 12) + 1 FROM {table}").fetchone()[0]
        for table in sorted(recent.TABLES)
    }
    for bucket in range(BUCKETS):
        for table, start in starts.items():
            # Sequences are not transactional: the next test's ids start after these, which is fine.
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), ?)", (((start + bucket) << 12),))
        services.create_entities(
            namespace=NAMESPACE,
            entities=[
                {"name": name(bucket, i), "entityType": "note", "observations": [text(bucket, i)]}
                for i in range(PER_BUCKET)
            ],
        )
    # Our own rows are sampled: ANALYZE counts the rows this transaction inserted as live.
    conn.execute("ANALYZE graph_entity, graph_observation")
    recent.forget()
    yield
    recent.forget()


def name(bucket: int, i: int) -> str:
    if i in (2, 3):
        return f"kelp {bucket} {i}"
    if bucket < 5 and 12 <= i < 22:
        return f"moss {bucket} {i}"
    return f"e{bucket}-{i}"


def text(bucket: int, i: int) -> str:
    if i < 2:
        return f"tide pool {bucket} {i}"
    if bucket < 5 and i < 12:
        return f"ember glow {bucket} {i}"
    if i == 22 or (bucket < 25 and i in (23, 24)):
        return f"reed bed {bucket} {i}"
    return f"plain note {bucket} {i}"


def traced_search(query: str) -> tuple[list[str], list[str]]:
    """The names search_nodes finds for `query`, and the statements it ran."""
    with statements() as seen:
        found = selectors.search_nodes(namespace=NAMESPACE, query=query, limit=100)
    return [entity["name"] for entity in found["entities"]], seen


def plainly(monkeypatch: pytest.MonkeyPatch, read: Any) -> Any:
    """What `read` returns with every search taking the plain statement."""
    with monkeypatch.context() as patched:
        patched.setattr(recent, "newest_buckets", lambda match, window, table: None)
        return read()


@pytest.mark.postgres_only(reason="id buckets in the GIN index are PostgreSQL's; FTS5 reads rows newest first")
def test_every_entity_and_observation_carries_its_id_bucket(spread: None) -> None:
    for table in recent.TABLES:
        wrong = connection().execute(
            f"SELECT count(*) FROM {table} WHERE search_bucket <> array_to_tsvector(ARRAY['b' || (id >> 12)])"
        )
        assert wrong.fetchone() == (0,)
        buckets = connection().execute(
            f"SELECT count(DISTINCT search_bucket) FROM {table} t JOIN graph_namespace n ON n.id = t.namespace_id "
            "WHERE n.name = ?",
            (NAMESPACE,),
        )
        assert buckets.fetchone() == (BUCKETS,)


@pytest.mark.postgres_only(reason="id buckets in the GIN index are PostgreSQL's; FTS5 reads rows newest first")
def test_a_common_word_found_in_the_newest_buckets_is_the_plain_answer(
    spread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = 15
    match = build_tsquery("tide") or ""
    chosen = recent.newest_buckets(match, window, "graph_observation")
    # 15 matches at 8 % over 160 ids a row: 7.3 buckets; with half as many again and the
    # newest one, 12 are searched (of 40).
    assert chosen == 12
    found, statements = traced_search("tide")
    assert any("search_bucket" in statement for statement in statements)
    assert found == plainly(monkeypatch, lambda: traced_search("tide")[0])
    # The window is the newest 15 matches, ranked alike, so newest first; the older matches
    # follow (the page holds 100).
    assert found[:3] == ["e39-1", "e39-0", "e38-1"]
    assert len(found) == 2 * BUCKETS


@pytest.mark.postgres_only(reason="id buckets in the GIN index are PostgreSQL's; FTS5 reads rows newest first")
def test_a_word_the_newest_buckets_lack_is_found_below_them_in_the_same_statement(
    spread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "ember" holds 5 % of the rows, so it is looked for in the newest 19 buckets: all its rows
    # are in the oldest 5. The statement goes on below them.
    assert recent.newest_buckets(build_tsquery("ember") or "", 15, "graph_observation") == 19
    found, statements = traced_search("ember")
    assert [s for s in statements if "search_bucket" in s]
    assert found == plainly(monkeypatch, lambda: traced_search("ember")[0])
    assert found[:2] == ["e4-11", "e4-10"]
    assert len(found) == 5 * 10


@pytest.mark.postgres_only(reason="id buckets in the GIN index are PostgreSQL's; FTS5 reads rows newest first")
def test_a_window_the_newest_buckets_fill_in_part_is_completed_from_below_them(
    spread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "reed" is in 1 row of each of the 15 newest buckets and 3 of each older one (9 %): it is
    # looked for in the newest 11 buckets, which hold 11 of the 15 the window needs; the 4 more
    # are the newest below them (buckets 28 to 25).
    assert recent.newest_buckets(build_tsquery("reed") or "", 15, "graph_observation") == 11
    found, statements = traced_search("reed")
    assert [s for s in statements if "search_bucket" in s]
    assert found == plainly(monkeypatch, lambda: traced_search("reed")[0])
    assert found[:5] == ["e39-22", "e38-22", "e37-22", "e36-22", "e35-22"]
    assert len(found) == 15 + 25 * 3


@pytest.mark.postgres_only(reason="id buckets in the GIN index are PostgreSQL's; FTS5 reads rows newest first")
def test_memory_search_candidates_are_the_plain_answer(spread: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ns_id = namespaces.lookup(NAMESPACE)
    assert ns_id is not None

    def candidates(*terms: str) -> dict[int, tuple[str, float]]:
        return observations.keyword_candidates([ns_id], {}, identifiers=[], words=list(terms), k=10)

    for terms in (("tide",), ("ember",), ("reed",), ("tide", "ember")):
        found = candidates(*terms)
        assert found == plainly(monkeypatch, lambda terms=terms: candidates(*terms))
        assert len(found) == 10


@pytest.mark.postgres_only(reason="id buckets in the GIN index are PostgreSQL's; FTS5 reads rows newest first")
def test_names_are_searched_in_the_newest_buckets_too(spread: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # "kelp" is in 2 names of every bucket (8 %), "moss" in 10 of each of the 5 oldest (5 %).
    assert recent.newest_buckets(build_tsquery("kelp") or "", 15, "graph_entity") == 12
    assert recent.newest_buckets(build_tsquery("moss") or "", 15, "graph_entity") == 19
    for word, newest, count in (("kelp", ["kelp 39 3", "kelp 39 2", "kelp 38 3"], 80), ("moss", ["moss 4 21"], 50)):
        found, statements = traced_search(word)
        assert any("search_bucket" in s and "FROM graph_entity e" in s for s in statements), word
        assert found == plainly(monkeypatch, lambda word=word: traced_search(word)[0])
        assert found[: len(newest)] == newest
        assert len(found) == count
