"""FTS5's words, written by the application (graph/fts.py `tokens`, graph/unicode61.py): on
PostgreSQL every row is indexed in this form and every query is cut into these tokens, so both
backends agree on what a word is. Checked against the SQLite that runs the tests (pure: no store)."""

from __future__ import annotations

import bisect
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graph import unicode61
from graph.fts import _postgres_index_text, build_tsquery, build_tsquery_any, index_word, index_words, tokens

# The planes where anything is assigned, and the ends of the others.
POINTS = [*range(1, 0x32000), *range(0xE0000, 0xE0200), *range(0x10FF00, 0x110000)]


def test_the_tables_are_the_running_sqlites_unicode61():
    live_ranges, live_fold = unicode61.read_sqlite_tables(POINTS)
    ranges, fold = unicode61.tables()
    starts = [low for low, _ in ranges]

    def is_token(point: int) -> bool:
        index = bisect.bisect_right(starts, point) - 1
        return index >= 0 and ranges[index][0] <= point <= ranges[index][1]

    live_tokens = {point for low, high in live_ranges for point in range(low, high + 1)}
    wanted = [point for point in POINTS if not 0xD800 <= point < 0xE000]
    assert [p for p in wanted if is_token(p) != (p in live_tokens)] == []
    assert {p: f for p, f in fold.items() if p in live_tokens} == live_fold


@pytest.fixture(scope="module")
def fts5():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
    yield conn
    conn.close()


def fts5_tokens(conn: sqlite3.Connection, text: str) -> list[str]:
    conn.execute("DELETE FROM t")
    conn.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (text,))
    return [row[0] for row in conn.execute("SELECT term FROM v ORDER BY offset")]


ALPHABET = "aZ09 _-.,'\"éÉèçÇßİıǅﬁ\u0301\u0308部署タワー데이터・ー\u00a0\u2028\u3000😀\ue000\U000e0041"


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.text(alphabet=ALPHABET, max_size=40)))
def test_tokens_are_fts5s_tokens(fts5, text):
    text = text.replace("\x00", " ")  # FTS5 reads text up to a NUL
    assert tokens(text) == fts5_tokens(fts5, text)


def test_the_postgresql_index_form_is_the_tokens_of_fts5s_index_form():
    assert _postgres_index_text("Café crème, key:value a-b^c") == "cafe creme key value a b c"
    assert _postgres_index_text("部署配置使用8080端口").split() == [
        index_word(word) for word in ["部署", "署配", "配置", "置使", "使用", "用", "8080", "端口", "口"]
    ]
    assert _postgres_index_text("!!! ...") == ""


def test_the_postgresql_index_holds_only_ascii_letters_and_digits():
    # Whatever the server's locale calls a letter: every other character is written out, one by
    # one, so a prefix stays a prefix.
    assert index_word("straße") == "stra" + index_word("ß") + "e"
    assert index_word("部") == "qq" + "01478"  # U+90E8 in five base-32 digits
    assert index_word("\U0010ffff") == "qq11vvv"
    for text in ["Straße ² ½ 🙂 \ue000 \U00045dcd", "部署 タワー 데이터", "ǅ ᾈ ﬁ İstanbul"]:
        assert all(word.isascii() and word.isalnum() and word == word.lower() for word in index_words(text))


@settings(max_examples=200, deadline=None)
@given(word=st.text(min_size=1, max_size=12))
def test_a_prefix_of_a_word_is_a_prefix_of_its_index_word(word):
    for cut in range(1, len(word)):
        assert index_word(word).startswith(index_word(word[:cut]))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Alice", "'alice':*"),
        ("Alice Bob", "'alice':* & 'bob':*"),
        ("Ali***", "'ali':*"),
        ('"likes coffee"', "('likes' <-> 'coffee')"),
        ('"likes cof"*', "('likes' <-> 'cof':*)"),
        ('"likes coffee" daily', "('likes' <-> 'coffee') & 'daily':*"),
        ('say"hi', "('say' <-> 'hi':*)"),
        ("a OR b", "'a':* & 'or':* & 'b':*"),
        ("NOT x", "'not':* & 'x':*"),
        ("key:value", "('key' <-> 'value':*)"),
        ("CAFÉ CRÈME", "'cafe':* & 'creme':*"),
        ("部署配置", f"('{index_word('部署')}' <-> '{index_word('署配')}' <-> '{index_word('配置')}')"),
        ("部署", f"'{index_word('部署')}'"),
        ("署", f"'{index_word('署')}':*"),
        ("8080端口", f"'8080':* & '{index_word('端口')}'"),
        ("Straße", f"'{index_word('straße')}':*"),
        ("🙂", None),  # symbols alone: the caller's substring match, as with build_match
        ("'; DROP", "'drop':*"),
        ("*", None),
        ('""', None),
        ("()", None),
        ("。、", None),
        ("\\", None),
    ],
)
def test_tsquery_text_quotes_every_token(query, expected):
    assert build_tsquery(query) == expected


def test_tsquery_any_joins_terms_with_or():
    bigrams = " <-> ".join(f"'{index_word(pair)}'" for pair in ["部署", "署配", "配置"])
    assert build_tsquery_any(["release", "部署配置", "a-b", "!!"]) == (f"'release':* | ({bigrams}) | ('a' <-> 'b':*)")
    assert build_tsquery_any(["..."]) is None
