"""Search through the real store: FTS query building, escaping, CJK, ranking, paging, isolation."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph import selectors, services
from graph.exceptions import InvalidArgument
from graph.fts import build_match, build_tsquery, index_text, index_word
from graph.sql import db
from kernel.sql import POSTGRES


def entity(name: str, *observations: str, kind: str = "person") -> dict:
    return {"name": name, "entityType": kind, "observations": list(observations)}


def rel(source: str, target: str, kind: str = "knows") -> dict:
    return {"from": source, "to": target, "relationType": kind}


def search(namespace: str, query: str, **options) -> dict:
    return selectors.search_nodes(namespace=namespace, query=query, **options)


def found(namespace: str, query: str, **options) -> list[str]:
    return [e["name"] for e in search(namespace, query, **options)["entities"]]


# --- build_match / index_text: pure functions ----------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Alice", '"Alice"*'),
        ("Alice Bob", '"Alice"* AND "Bob"*'),
        ("  Alice \t Bob\n", '"Alice"* AND "Bob"*'),
        ("Ali*", '"Ali"*'),
        ("Ali***", '"Ali"*'),
        ('"likes coffee"', '"likes coffee"'),
        ('"likes cof"*', '"likes cof"*'),
        ('"likes coffee" daily', '"likes coffee" AND "daily"*'),
        ('say"hi', '"say hi"*'),
        ('"unbalanced', '" unbalanced"*'),
        ("AND", '"AND"*'),
        ("a OR b", '"a"* AND "OR"* AND "b"*'),
        ("NOT x", '"NOT"* AND "x"*'),
        ("NEAR(a b)", '"NEAR(a"* AND "b)"*'),
        ("-x ^y col:z", '"-x"* AND "^y"* AND "col:z"*'),
    ],
)
def test_it_quotes_every_term_so_user_text_is_never_fts_syntax(query, expected):
    assert build_match(query) == expected


@pytest.mark.parametrize(
    "query", ["", " ", "\t\n ", "*", '"', '""', '""*', "()", "!!! ... ---", '" " * ( ) ^ : -', "。、"]
)
def test_it_builds_no_match_for_queries_without_searchable_characters(query):
    assert build_match(query) is None


def test_it_expands_cjk_runs_to_bigrams_plus_the_last_character_for_indexing():
    def indexed(words: list[str]) -> list[str]:
        # PostgreSQL's index writes the words out in ASCII (graph/fts.py index_word).
        return [index_word(word) for word in words] if POSTGRES else words

    assert " ".join(indexed(["部署", "署配", "配置", "置"])) in (index_text("部署配置") or "")
    assert (index_text("部署配置使用8080端口") or "").split() == indexed(
        ["部署", "署配", "配置", "置使", "使用", "用", "8080", "端口", "口"]
    )
    assert (index_text("署") or "").split() == indexed(["署"])


@pytest.mark.sqlite_only(reason="FTS5 indexes plain text as it is; only CJK text gets a second form")
def test_it_stores_no_index_form_for_plain_text():
    assert index_text("Café crème and plain words") is None


@pytest.mark.postgres_only(reason="PostgreSQL indexes the application's tokens of every row")
def test_it_stores_the_tokens_of_every_row_as_its_index_form():
    assert index_text("Café crème and plain words") == "cafe creme and plain words"
    assert index_text("key:value, a-b^c!") == "key value a b c"
    assert index_text("Straße 🙂") == f"{index_word('straße')} {index_word('🙂')}"


def test_it_turns_cjk_query_runs_into_bigram_phrases_and_single_characters_into_prefixes():
    assert build_match("部署配置") == '"部署 署配 配置"'
    assert build_match("部署") == '"部署"'
    assert build_match("署") == '"署"*'
    assert build_match("8080端口") == '"8080"* AND "端口"'
    assert build_match('"部署配置"*') == '"部署 署配 配置"'


# --- escaping through the store ------------------------------------------------------------------


@pytest.fixture
def corpus(alice):
    services.create_entities(
        namespace=alice,
        entities=[
            entity("Alice", "likes coffee", "uses AND, OR and NOT in queries"),
            entity("Bob", "prefers tea"),
            entity("Carol", 'said "hello world" loudly', "config key:value at path a-b^c", kind="robot"),
        ],
    )
    services.create_relations(namespace=alice, relations=[rel("Alice", "Bob")])
    return alice


NASTY_QUERIES = [
    '"',
    '""',
    '"""',
    '"unbalanced',
    'unbalanced"',
    'a"b"c"',
    "*",
    "**",
    "* *",
    "*Alice",
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "NEAR(Alice Bob, 2)",
    "Alice AND",
    "OR Bob",
    "NOT Alice",
    "Alice NOT Bob",
    "-",
    "-Alice",
    "^",
    "^Alice",
    ":",
    "name:Alice",
    "body:coffee",
    "{name body}:coffee",
    "(",
    ")",
    "()",
    "(Alice OR Bob)",
    "a AND (b OR",
    "+",
    "Alice + Bob",
    "'",
    "\\",
    "%",
    "_",
    "'; DROP TABLE graph_entity; --",
    "",
    " ",
    "\t\n",
]


@pytest.mark.parametrize("query", NASTY_QUERIES)
def test_it_never_raises_on_fts_syntax_in_queries(corpus, query):
    page = search(corpus, query)
    assert {e["name"] for e in page["entities"]} <= {"Alice", "Bob", "Carol"}
    assert page["hasMore"] is False


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Alice", "Bob", "Carol"]),
        ("   ", ["Alice", "Bob", "Carol"]),
        ("\t\n", ["Alice", "Bob", "Carol"]),
        # Operator words are plain words: each finds the observation that contains it.
        ("AND", ["Alice"]),
        ("OR", ["Alice"]),
        ("NOT", ["Alice"]),
        ("NEAR", []),
        # ...and they are ANDed like any other word, never applied as operators.
        ("Alice OR Bob", []),
        ("NOT Bob", []),
        ("and queries", ["Alice"]),
        # Stray quotes are ignored; a balanced pair is an exact phrase.
        ('"hello', ["Carol"]),
        ('hello"', ["Carol"]),
        ('"hello world"', ["Carol"]),
        ('"world hello"', []),
        # Punctuation separates words, whatever FTS5 would make of it.
        ("key:value", ["Carol"]),
        ("a-b^c", ["Carol"]),
        ("-Alice", ["Alice"]),
        ("^Alice", ["Alice"]),
        ("(Alice)", ["Alice"]),
        ("name:Alice", []),
        ("coffee*", ["Alice"]),
        ("*", []),
        ("()", []),
        # Nothing FTS indexes: a substring match, as the official server (Carol said "hello").
        ('"', ["Carol"]),
    ],
)
def test_it_gives_sensible_results_for_fts_syntax(corpus, query, expected):
    assert found(corpus, query) == expected


def test_it_rejects_nul_characters_in_a_query_with_a_domain_error(corpus):
    with pytest.raises(InvalidArgument, match="NUL"):
        search(corpus, "Alice\x00")


# Queries that mix st.text() with a dense alphabet of FTS5 syntax, CJK and the characters whose
# tokenization is special, so that interesting combinations come up within 200 examples.
SYNTAX_ALPHABET = "\"*()^:-+{}.,;' \t\nANDORNOTEARaliceAlicecoffee部署配置署タワー데이터・ー8080éÉ\u0301"
queries = st.one_of(st.text(), st.text(alphabet=SYNTAX_ALPHABET, max_size=30))


# The corpus fixture runs once for all examples (function scope) and that is safe here: each
# example only reads, so no example can see state left behind by another.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries)
def test_it_never_raises_for_arbitrary_queries(corpus, query):
    try:
        page = search(corpus, query)
    except InvalidArgument:
        # The only input search_nodes rejects here: a NUL character (st.text() generates no
        # surrogates and no text over the 64 KiB limit).
        assert "\x00" in query
        return
    assert "\x00" not in query
    assert {e["name"] for e in page["entities"]} <= {"Alice", "Bob", "Carol"}
    if not query.strip():
        assert [e["name"] for e in page["entities"]] == ["Alice", "Bob", "Carol"]


# Read-only as well: the raw MATCH statements only read the corpus. NUL characters are left out:
# FTS5 reads a query string only up to a NUL ("unterminated string"), and the store rejects them
# before building a match (see test_it_rejects_nul_characters_in_a_query_with_a_domain_error).
@pytest.mark.sqlite_only(reason="FTS5 MATCH syntax; the PostgreSQL form checks the tsquery text")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries.filter(lambda text: "\x00" not in text))
def test_it_never_builds_a_match_expression_fts5_rejects(corpus, query):
    match = build_match(query)
    if match is None:
        return
    conn = db()
    # sqlite3.OperationalError ("fts5: syntax error ...") would fail the test here.
    conn.execute("SELECT rowid FROM obs_fts WHERE obs_fts MATCH ?", (match,)).fetchall()
    conn.execute("SELECT rowid FROM name_fts WHERE name_fts MATCH ?", (match,)).fetchall()


@pytest.mark.postgres_only(reason="tsquery syntax; the SQLite form checks the FTS5 MATCH expression")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries.filter(lambda text: "\x00" not in text))
def test_it_never_builds_a_tsquery_postgresql_rejects(corpus, query):
    match = build_tsquery(query)
    if match is None:
        return
    conn = db()
    # A syntax error in the tsquery text would raise here.
    conn.execute("SELECT id FROM graph_observation WHERE search_vector @@ to_tsquery('simple', ?)", (match,)).fetchall()
    conn.execute("SELECT id FROM graph_entity WHERE search_vector @@ to_tsquery('simple', ?)", (match,)).fetchall()


# --- prefix, phrase, folding ----------------------------------------------------------------------


def test_it_finds_names_by_word_prefix(alice):
    services.create_entities(namespace=alice, entities=[entity("Alice"), entity("Malice")])
    assert found(alice, "Ali") == ["Alice"]
    assert found(alice, "ali") == ["Alice"]
    assert found(alice, "lice") == []


def test_it_finds_quoted_phrases_only_in_order(alice):
    services.create_entities(
        namespace=alice,
        entities=[entity("Morning", "Alice likes coffee daily"), entity("Evening", "coffee likes Alice")],
    )
    assert found(alice, '"likes coffee"') == ["Morning"]
    assert found(alice, '"coffee likes"') == ["Evening"]
    assert sorted(found(alice, "likes coffee")) == ["Evening", "Morning"]
    assert found(alice, '"likes cof"*') == ["Morning"]
    assert found(alice, '"likes cof"') == []


@pytest.mark.parametrize("query", ["CAFÉ CRÈME", "cafe creme", "Café crème", "CAFE", "crème", '"cafe creme"'])
def test_it_folds_case_and_diacritics(alice, query):
    services.create_entities(namespace=alice, entities=[entity("Dessert", "Café crème", kind="dish")])
    assert found(alice, query) == ["Dessert"]


# --- CJK -----------------------------------------------------------------------------------------


@pytest.fixture
def cjk(alice):
    services.create_entities(
        namespace=alice,
        entities=[
            entity("Server", "部署配置使用8080端口", kind="system"),
            entity("部署系统", kind="system"),
            entity("Landmark", "東京タワー", kind="place"),
            entity("데이터베이스", kind="component"),
        ],
    )
    return alice


@pytest.mark.parametrize("query", ["部署", "配置", "端口", "8080", "部署配置", "署", "使用8080", "配置使用"])
def test_it_finds_cjk_observations_by_any_substring(cjk, query):
    assert "Server" in found(cjk, query)


def test_it_finds_a_cjk_entity_name_by_a_substring(cjk):
    assert found(cjk, "系统") == ["部署系统"]
    # A name match ranks before the observation match.
    assert found(cjk, "部署") == ["部署系统", "Server"]


def test_it_finds_japanese_and_korean_by_substrings(cjk):
    assert found(cjk, "タワー") == ["Landmark"]
    assert found(cjk, "東京") == ["Landmark"]
    assert found(cjk, "베이스") == ["데이터베이스"]
    assert found(cjk, "데이터") == ["데이터베이스"]


@pytest.mark.parametrize("query", ["配部", "置部", "系部", "口端", "タ東", "스베"])
def test_it_does_not_find_cjk_text_by_characters_that_are_not_adjacent(cjk, query):
    assert found(cjk, query) == []


# KATAKANA MIDDLE DOT (Po), KATAKANA-HIRAGANA DOUBLE HYPHEN (Pd), and the spacing (semi-)voiced
# sound marks (Sk).
@pytest.mark.parametrize("punctuation", ["\u30fb", "\u30a0", "\u309b", "\u309c"])
def test_it_ignores_punctuation_from_the_katakana_block_like_other_punctuation(cjk, punctuation):
    # These four are in the Katakana/Hiragana blocks that fts.py treats as CJK, but they are
    # punctuation to unicode61 (Po, Pd, Sk), exactly like "." or "。", which a query drops. A
    # term made only of them must not turn into a token-less clause that matches nothing.
    assert build_match(punctuation) is None
    assert build_match(f"東京 {punctuation}") == build_match("東京 .") == build_match("東京")
    assert found(cjk, f"東京 {punctuation}") == found(cjk, "東京 .") == ["Landmark"]


# --- ranking and result shape ---------------------------------------------------------------------


def test_it_ranks_name_matches_before_observation_matches(alice):
    services.create_entities(
        namespace=alice,
        entities=[
            entity("Bob", "drinks coffee"),
            entity("Carol", "coffee coffee coffee"),
            entity("Coffee Shop", kind="place"),
            entity("Coffee", "hot", kind="drink"),
        ],
    )
    names = found(alice, "coffee")
    assert len(names) == 4
    assert set(names[:2]) == {"Coffee", "Coffee Shop"}
    assert set(names[2:]) == {"Bob", "Carol"}


def test_it_ranks_within_the_newest_matches_then_adds_older_ones_newest_first(alice, settings):
    """Ranking every match costs time in proportion to the matches; beyond the window the best
    of the newest matches come first, then the older ones, newest first."""
    settings.MEMORYHUB_SEARCH_RANK_WINDOW = 3
    services.create_entities(
        namespace=alice,
        entities=[
            entity("Old strong", "tea tea tea tea"),
            entity("Old weak", "tea and a long sentence about many other things entirely"),
            entity("New weak", "tea and a long sentence about many other things entirely"),
            entity("New strong", "tea tea tea tea"),
            entity("Newest weak", "tea and a long sentence about many other things entirely"),
        ],
    )
    assert found(alice, "tea") == ["New strong", "Newest weak", "New weak", "Old weak", "Old strong"]
    settings.MEMORYHUB_SEARCH_RANK_WINDOW = 1000
    ranked = found(alice, "tea")
    assert set(ranked[:2]) == {"Old strong", "New strong"}


def test_it_filters_by_entity_type(alice):
    services.create_entities(
        namespace=alice,
        entities=[entity("Bob", "drinks coffee"), entity("Coffee", kind="drink"), entity("Tea", kind="drink")],
    )
    assert found(alice, "coffee", entity_type="drink") == ["Coffee"]
    assert found(alice, "coffee", entity_type="person") == ["Bob"]
    assert found(alice, "coffee", entity_type="nothing") == []
    assert found(alice, "", entity_type="drink") == ["Coffee", "Tea"]
    # A type no entity has any longer filters everything out, as one never used.
    services.delete_entities(namespace=alice, entity_names=["Coffee", "Tea"])
    assert found(alice, "coffee", entity_type="drink") == []
    assert found(alice, "", entity_type="drink") == []


@pytest.mark.parametrize("window", [1000, 7, 1])
def test_it_pages_through_all_matches_exactly_once(alice, settings, window):
    # The rank window (bm25 among the newest matches, older ones after) never hides a match.
    settings.MEMORYHUB_SEARCH_RANK_WINDOW = window
    # 15 name matches and 10 observation-only matches, all with equal scores within each group.
    services.create_entities(
        namespace=alice,
        entities=[entity(f"Widget {i:02}") for i in range(15)]
        + [entity(f"Thing {i:02}", "a widget inside", kind="box") for i in range(10)],
    )
    seen: list[str] = []
    pages = []
    offset = 0
    while True:
        page = search(alice, "widget", limit=10, offset=offset)
        pages.append((len(page["entities"]), page["hasMore"], page["nextOffset"]))
        seen += [e["name"] for e in page["entities"]]
        if not page["hasMore"]:
            break
        offset = page["nextOffset"]
    assert pages == [(10, True, 10), (10, True, 20), (5, False, None)]
    assert len(seen) == 25
    assert len(set(seen)) == 25
    assert all(name.startswith("Widget") for name in seen[:15])
    assert all(name.startswith("Thing") for name in seen[15:])


def test_it_pages_the_empty_query_over_every_entity(alice):
    services.create_entities(namespace=alice, entities=[entity(f"E{i:02}") for i in range(25)])
    first = search(alice, "", limit=10)
    last = search(alice, "", limit=10, offset=20)
    assert [e["name"] for e in first["entities"]] == [f"E{i:02}" for i in range(10)]
    assert (first["hasMore"], first["nextOffset"]) == (True, 10)
    assert [e["name"] for e in last["entities"]] == [f"E{i:02}" for i in range(20, 25)]
    assert (last["hasMore"], last["nextOffset"]) == (False, None)


def test_it_returns_the_relations_touching_the_matched_entities(alice):
    services.create_entities(namespace=alice, entities=[entity(n) for n in ["Ada", "Bert", "Cleo", "Dora"]])
    services.create_relations(
        namespace=alice,
        relations=[rel("Ada", "Bert"), rel("Cleo", "Ada", "mentors"), rel("Bert", "Cleo"), rel("Dora", "Bert")],
    )
    page = search(alice, "Ada")
    assert page["entities"] == [entity("Ada")]
    assert page["relations"] == [rel("Ada", "Bert"), rel("Cleo", "Ada", "mentors")]


def test_it_returns_full_entities_with_every_observation(alice):
    services.create_entities(namespace=alice, entities=[entity("Ada", "writes programs", "likes engines")])
    assert search(alice, "engines")["entities"] == [entity("Ada", "writes programs", "likes engines")]


def test_it_finds_entities_by_a_substring_of_their_type(alice):
    services.create_entities(
        namespace=alice, entities=[entity("Ada"), entity("Rex", kind="dog"), entity("Zoe", kind="Superperson")]
    )
    assert found(alice, "perso") == ["Ada", "Zoe"]
    assert found(alice, "PERSON") == ["Ada", "Zoe"]
    assert found(alice, "dog") == ["Rex"]
    assert found(alice, "perso", entity_type="person") == ["Ada"]


def test_it_finds_text_fts_cannot_index_as_a_substring(alice, bob):
    """Emoji and symbols are separators to FTS5; a query of nothing else matches as a substring of
    names and observations, as the official server's search does."""
    services.create_entities(
        namespace=alice,
        entities=[entity("Project Phoenix 🚀"), entity("Ada", "ships 🚀 weekly"), entity("Rex", "likes ☕")],
    )
    services.create_entities(namespace=bob, entities=[entity("Bob 🚀")])
    assert found(alice, "🚀") == ["Project Phoenix 🚀", "Ada"]
    assert found(alice, " ☕ ") == ["Rex"]
    assert found(alice, "🚀", entity_type="dog") == []
    assert found(alice, "🎉") == []
    # Punctuation-only queries keep matching nothing (they are in no name here).
    assert found(alice, "()") == []


# --- namespaces ------------------------------------------------------------------------------------


def test_it_never_returns_another_namespaces_data(alice, bob):
    services.create_entities(namespace=alice, entities=[entity("Alice", "alice secret: likes coffee"), entity("Bob")])
    services.create_entities(namespace=bob, entities=[entity("Alice", "bob note: likes tea"), entity("Bob")])
    services.create_relations(namespace=bob, relations=[rel("Alice", "Bob", "owes")])

    assert search(alice, "Alice")["entities"] == [entity("Alice", "alice secret: likes coffee")]
    assert search(bob, "Alice")["entities"] == [entity("Alice", "bob note: likes tea")]
    assert search(alice, "Alice")["relations"] == []
    assert search(bob, "Alice")["relations"] == [rel("Alice", "Bob", "owes")]
    assert found(alice, "tea") == []
    assert found(bob, "coffee") == []
    assert found(bob, "secret") == []
    assert found(alice, "likes") == ["Alice"]
    assert search(alice, "likes")["entities"][0]["observations"] == ["alice secret: likes coffee"]
    # The empty query and the type substring match stay inside the namespace too.
    assert [e["observations"] for e in search(alice, "")["entities"]] == [["alice secret: likes coffee"], []]
    assert [e["observations"] for e in search(bob, "perso")["entities"]] == [["bob note: likes tea"], []]


def test_it_reads_an_unknown_namespace_as_empty(alice):
    services.create_entities(namespace=alice, entities=[entity("Alice")])
    assert search("org:nobody:notes", "Alice") == {
        "entities": [],
        "relations": [],
        "hasMore": False,
        "nextOffset": None,
    }
    assert search("org:nobody:notes", "") == {"entities": [], "relations": [], "hasMore": False, "nextOffset": None}


@pytest.mark.sqlite_only(reason="FTS5 MATCH syntax; the PostgreSQL form checks the tsquery text")
def test_build_match_is_safe_with_nul_characters(alice):
    from graph.sql import db as connection

    match = build_match("0\x00x")
    assert match is not None
    assert connection().execute("SELECT count(*) FROM obs_fts WHERE obs_fts MATCH ?", (match,)).fetchone() == (0,)


@pytest.mark.postgres_only(reason="tsquery syntax; the SQLite form checks the FTS5 MATCH expression")
def test_build_tsquery_is_safe_with_nul_characters(alice):
    match = build_tsquery("0\x00x")
    assert match == "'0':* & 'x':*"
    found = (
        db()
        .execute("SELECT count(*) FROM graph_observation WHERE search_vector @@ to_tsquery('simple', ?)", (match,))
        .fetchone()
    )
    assert tuple(found) == (0,)
