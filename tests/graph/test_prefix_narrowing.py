"""Word prefixes narrowed to the indexed terms that start with them (graph/fts.py
`narrow_prefixes`, graph/sql.py `terms_with_prefix`): the same rows must match as with FTS5's own
prefix query, whatever the corpus holds, after deletes too."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph import selectors, services
from graph.fts import MAX_PREFIX_TERMS, build_match, build_match_any, build_tsquery, narrow_prefixes
from graph.sql import db, narrowed_match, narrowed_matches, terms_with_prefix, terms_with_prefixes
from kernel.sql import POSTGRES


def entity(name: str, *observations: str) -> dict:
    return {"name": name, "entityType": "note", "observations": list(observations)}


def matching(fts: str, match: str) -> set[int]:
    return {row[0] for row in db().execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ?", (match,))}


# --- the rewrite, with a stand-in vocabulary (pure) -----------------------------------------------

VOCABULARY = {"deployment": ["deployment"], "release": ["release", "released", "releases"], "many": None}


def narrow(match: str) -> str:
    return narrow_prefixes(match, lambda word: VOCABULARY.get(word, []))


def test_a_word_with_one_indexed_term_becomes_that_exact_term():
    assert narrow('"deployment"*') == '"deployment"'


def test_a_word_with_several_terms_becomes_their_disjunction():
    assert narrow('"release"* AND "deployment"*') == '("release" OR "released" OR "releases") AND "deployment"'
    assert (
        narrow(build_match_any(["release", "nothing"]) or "") == '("release" OR "released" OR "releases") OR "nothing"*'
    )


def test_what_is_not_narrowed_stays_as_it_was():
    # Too many terms, no term, indexed prefix lengths, phrases, exact terms, non-ASCII words.
    for match in ('"many"*', '"nothing"*', '"rel"*', '"re"*', '"release notes"*', '"release"', '"délai"*', '"部署"'):
        assert narrow(match) == match


def test_words_are_looked_up_lower_cased_as_the_tokenizer_indexes_them():
    assert narrow('"Deployment"*') == '"deployment"'


# --- against the real index ----------------------------------------------------------------------


@pytest.fixture
def releases(alice):
    services.create_entities(
        namespace=alice,
        entities=[
            entity("Notes", "release planned", "released on Monday", "two releases a month", "relevant"),
            entity("Deploy", "the deployment failed", "Deployments are slow"),
        ],
    )
    return alice


@pytest.mark.sqlite_only(reason="FTS5 vocabulary tables; PostgreSQL's GIN index answers a prefix itself")
def test_terms_come_from_the_index_in_order(releases):
    assert terms_with_prefix("obs_fts_terms", "release", most=8) == ["release", "released", "releases"]
    assert terms_with_prefix("obs_fts_terms", "deployment", most=8) == ["deployment", "deployments"]
    assert terms_with_prefix("obs_fts_terms", "zebra", most=8) == []
    assert terms_with_prefix("obs_fts_terms", "release", most=2) is None
    assert terms_with_prefix("name_fts_terms", "deplo", most=8) == ["deploy"]


@pytest.mark.sqlite_only(reason="FTS5 vocabulary tables; PostgreSQL's GIN index answers a prefix itself")
def test_every_prefix_of_every_vocabulary_is_looked_up_in_one_statement(releases):
    statements: list[str] = []
    db().set_trace_callback(statements.append)
    try:
        found = terms_with_prefixes(
            ["obs_fts_terms", "name_fts_terms"], ["release", "deplo", "zebra", "release"], most=2
        )
    finally:
        db().set_trace_callback(None)
    assert [s for s in statements if not s.startswith("--")] == [statements[0]]
    assert found == [
        {"release": None, "deplo": ["deployment", "deployments"], "zebra": []},
        {"release": [], "deplo": ["deploy"], "zebra": []},
    ]
    assert narrowed_matches(["obs_fts", "name_fts"], '"deplo"* AND "zebra"*') == [
        '("deployment" OR "deployments") AND "zebra"*',
        '"deploy" AND "zebra"*',
    ]


@pytest.mark.sqlite_only(reason="FTS5 vocabulary tables; PostgreSQL's GIN index answers a prefix itself")
def test_a_prefix_is_narrowed_to_the_words_it_starts(releases):
    assert narrowed_match("obs_fts", build_match("release") or "") == '("release" OR "released" OR "releases")'


@pytest.mark.postgres_only(reason="the SQLite form narrows through FTS5's vocabulary tables")
def test_a_tsquery_is_left_as_it_is(releases):
    match = build_tsquery("releas deploy")
    assert narrowed_matches(["graph_observation", "graph_entity"], match) == [match, match]


def test_search_finds_every_word_the_prefix_starts(releases):
    found = selectors.search_nodes(namespace=releases, query="releas")["entities"]
    assert [e["name"] for e in found] == ["Notes"]
    assert [e["name"] for e in selectors.search_nodes(namespace=releases, query="deployment")["entities"]] == ["Deploy"]


def test_a_deleted_term_no_longer_matches(releases):
    services.delete_observations(namespace=releases, deletions=[{"entityName": "Notes", "observations": ["relevant"]}])
    if not POSTGRES:
        assert terms_with_prefix("obs_fts_terms", "relev", most=8) == []
    assert selectors.search_nodes(namespace=releases, query="relev")["entities"] == []


WORDS = st.text(alphabet="abcdeé", min_size=1, max_size=7)


@pytest.mark.sqlite_only(reason="FTS5 vocabulary tables; PostgreSQL's GIN index answers a prefix itself")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.lists(WORDS, min_size=1, max_size=6).map(" ".join), min_size=1, max_size=30),
    deleted=st.integers(min_value=0, max_value=30),
    query=st.lists(WORDS, min_size=1, max_size=3),
)
def test_narrowed_and_prefix_queries_match_the_same_rows(alice, texts, deleted, query):
    conn = db()
    conn.execute("SAVEPOINT corpus")
    try:
        services.create_entities(namespace=alice, entities=[entity(f"e{i}", text) for i, text in enumerate(texts)])
        if deleted < len(texts):
            services.delete_entities(namespace=alice, entity_names=[f"e{deleted}"])
        for match in (build_match(" ".join(query)), build_match_any(query)):
            assert match is not None
            tables = ("obs_fts", "name_fts")
            for fts, narrowed in zip(tables, narrowed_matches(tables, match), strict=True):
                assert matching(fts, narrowed) == matching(fts, match)
    finally:
        conn.execute("ROLLBACK TO corpus")
        conn.execute("RELEASE corpus")


@pytest.mark.sqlite_only(reason="FTS5 vocabulary tables; PostgreSQL's GIN index answers a prefix itself")
def test_more_terms_than_the_limit_keep_the_prefix_query(alice):
    words = [f"plan{chr(ord('a') + i)}" for i in range(MAX_PREFIX_TERMS + 1)]
    services.create_entities(namespace=alice, entities=[entity("Plans", " ".join(words))])
    assert narrowed_match("obs_fts", '"plan"*') == '"plan"*'
    assert narrowed_match("obs_fts", '"plana"*') == '"plana"'
