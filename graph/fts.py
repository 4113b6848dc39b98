"""Full-text search text: what gets indexed, and how a user's query becomes an FTS5 MATCH.

Two problems are solved here.

1. CJK. FTS5's `unicode61` tokenizer treats a run of Chinese/Japanese/Korean characters as one
   token, so `部署` would never find `部署配置使用8080端口`. We index such text in a second form
   where every CJK run is rewritten as its overlapping character bigrams plus the run's last
   character (`部署配置` -> `部署 署配 配置 置`). A query run of two or more characters becomes the
   phrase of its bigrams (which matches any substring of an indexed run); a single character
   becomes a prefix query (every character of an indexed run starts some token). The rewritten
   form is stored only for text that contains CJK (`search_text` / `search_name`), so plain text
   is not stored twice.

2. Syntax. User text never reaches MATCH as syntax. Every term is emitted as a double-quoted
   FTS5 string, so quotes, `*`, `AND`/`OR`/`NOT`/`NEAR`, `-`, `^`, `:` and parentheses are just
   characters. On purpose we support: bare words (matched as word prefixes, so `Ali` finds
   `Alice`, as the official server's substring search would), `"quoted phrases"` (exact, in
   order), and a trailing `*` on a phrase (prefix on its last word). Terms are ANDed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from graph import unicode61
from kernel.sql import POSTGRES

# Han (incl. extension A and compatibility ideographs), Hiragana, Katakana, Hangul syllables and
# jamo, CJK symbols are deliberately excluded (they are punctuation to unicode61 anyway).
_CJK_CLASS = (
    # Hiragana and Katakana letters; the blocks' punctuation (U+309B, U+309C, U+30A0, U+30FB) is left out because
    # unicode61 treats it as a separator, like any other punctuation.
    "\u3041-\u3096\u309d-\u309f"  # Hiragana
    "\u30a1-\u30fa\u30fc-\u30ff"  # Katakana
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK Unified Ideographs Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3130-\u318f"  # Hangul Compatibility Jamo
    "\uac00-\ud7af"  # Hangul Syllables
    "\U00020000-\U0002ffff"  # CJK Unified Ideographs Extensions B..F, compatibility supplement
)
_CJK_RUN = re.compile(f"[{_CJK_CLASS}]+")
_HAS_CJK = re.compile(f"[{_CJK_CLASS}]")
# A quoted phrase (optionally followed by *), or a run of non-space characters.
_QUERY_PART = re.compile(r'"([^"]*)"(\*?)|(\S+)')
# Runs of ASCII letters and digits (unicode61's ASCII token characters) and of any non-ASCII
# characters; a non-ASCII run goes through _FOLD, which turns unicode61's separators into spaces
# and folds its token characters (graph/unicode61.py). A regex class of unicode61's 411 ranges
# would test them one by one for every character.
_RUN = re.compile("[0-9A-Za-z\u0080-\U0010ffff]+")
_FOLD = unicode61.translation()
# The prefix lengths the FTS tables index (`prefix='2 3'`, graph/migrations/0002): FTS5 answers
# those prefix queries from the prefix index.
INDEXED_PREFIX_LENGTHS = (2, 3)
# A longer word prefix is narrowed to at most this many indexed terms (see narrow_prefixes).
MAX_PREFIX_TERMS = 8
# An FTS5 string in a MATCH expression ("" is an escaped quote), with its optional prefix star.
_MATCH_STRING = re.compile(r'"(?:[^"]|"")*"\*?')
# A word prefix that unicode61 indexes as one token, lower-cased: plain ASCII letters and digits.
_ASCII_WORD_PREFIX = re.compile(r'"([A-Za-z0-9]+)"\*')


# The columns whose index form this module computes: {table: (search column, text column)}. The
# full-text index holds `coalesce(search column, text column)` (graph/migrations/0002).
INDEXED_COLUMNS = {"graph_entity": ("search_name", "name"), "graph_observation": ("search_text", "body")}


def has_cjk(text: str) -> bool:
    return _HAS_CJK.search(text) is not None


def _expand_run(run: str) -> str:
    if len(run) == 1:
        return run
    bigrams = [run[i : i + 2] for i in range(len(run) - 1)]
    return " ".join([*bigrams, run[-1]])


def _fts5_index_text(text: str) -> str | None:
    """The form of `text` FTS5 indexes, or None when the text itself is indexed unchanged."""
    if not has_cjk(text):
        return None
    return _CJK_RUN.sub(lambda match: f" {_expand_run(match.group())} ", text)


def tokens(text: str) -> list[str]:
    """FTS5's tokens of `text` (`unicode61 remove_diacritics 2`, graph/unicode61.py): runs of
    token characters, each folded (lower case, diacritics removed), in order."""
    found: list[str] = []
    for run in _RUN.findall(text):
        if run.isascii():
            found.append(run.lower())
        else:
            found += run.translate(_FOLD).split()
    return found


# On PostgreSQL every character of a word that is not ASCII is written as "qq" and its code point
# in five base-32 digits, so the index holds only ASCII letters and digits: the server's parser
# and locale would otherwise decide (a UTF-8 locale drops what SQLite's tables call letters: newer
# emoji, unassigned code points, private use, "²"; another locale or collation provider drops
# others). Character by character, so a word's prefix is still a prefix of the written word.
_NON_ASCII = re.compile("[^\x00-\x7f]")
_BASE32 = "0123456789abcdefghijklmnopqrstuv"


def _written(char: str) -> str:
    point = ord(char)
    return "qq" + "".join(_BASE32[(point >> shift) & 31] for shift in (20, 15, 10, 5, 0))


def index_word(token: str) -> str:
    """How PostgreSQL's index holds one of `tokens`: ASCII as it is, other characters written out."""
    return token if token.isascii() else _NON_ASCII.sub(lambda found: _written(found.group()), token)


def index_words(text: str) -> list[str]:
    """The words PostgreSQL indexes for `text`: FTS5's tokens of FTS5's index form (CJK runs as
    bigrams), each as `index_word` writes it."""
    return [index_word(token) for token in tokens(_fts5_index_text(text) or text)]


def _postgres_index_text(text: str) -> str:
    """The form of `text` PostgreSQL indexes (`to_tsvector('simple', ...)`, graph/migrations/0002):
    `index_words`, joined by spaces, so the server's parser and locale only ever see ASCII
    letters and digits and never decide what a word is."""
    return " ".join(index_words(text))


if POSTGRES:
    index_text: Callable[[str], str | None] = _postgres_index_text
    """The form of `text` to index, or None when the text itself is indexed unchanged."""
else:
    index_text = _fts5_index_text


def _has_token_chars(text: str) -> bool:
    """Whether unicode61 would find any token in `text` (letters, digits, private use)."""
    return any(ch.isalnum() or unicodedata.category(ch) == "Co" for ch in text)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _pieces(text: str) -> list[tuple[str, bool]]:
    """`text` cut into its CJK runs and the text between them: (piece, is_cjk)."""
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in _CJK_RUN.finditer(text):
        if match.start() > position:
            pieces.append((text[position : match.start()], False))
        pieces.append((match.group(), True))
        position = match.end()
    if position < len(text):
        pieces.append((text[position:], False))
    return pieces


def _term_clauses(text: str, *, prefix: bool, exact_phrase: bool) -> list[str]:
    """FTS5 clauses for one user term or phrase. CJK runs and the text between them become
    separate clauses (ANDed): adjacency across a script boundary is given up, matching is not."""
    clauses: list[str] = []
    pieces = _pieces(text)
    for index, (piece, is_cjk) in enumerate(pieces):
        if is_cjk:
            if len(piece) == 1:
                clauses.append(_quote(piece) + "*")
            else:
                clauses.append(_quote(" ".join(piece[i : i + 2] for i in range(len(piece) - 1))))
            continue
        if not _has_token_chars(piece):
            continue
        is_last = index == len(pieces) - 1
        # Bare words are prefix-matched. A quoted phrase is exact unless it ends in `*`.
        wants_prefix = prefix and (is_last or not exact_phrase)
        clauses.append(_quote(piece) + ("*" if wants_prefix else ""))
    return clauses


def build_match(query: str) -> str | None:
    """Turn a user's search text into a safe FTS5 MATCH expression.

    Returns None when the query has nothing searchable in it (empty, or only punctuation); the
    caller decides what an empty search means (the store: match everything, like the official
    server's `''`).
    """
    clauses = _query_clauses(query, _term_clauses)
    if not clauses:
        return None
    return " AND ".join(clauses)


def _query_clauses(query: str, term_clauses: Callable[..., list[str]]) -> list[str]:
    """The clauses of a user's search text, each term written by `term_clauses` (FTS5's or a
    tsquery's): bare words as prefixes, quoted phrases exact (a trailing `*`: prefix on the last word)."""
    clauses: list[str] = []
    # SQLite ends a string at NUL, which would leave an unterminated FTS5 string.
    query = query.replace("\x00", " ")
    for match in _QUERY_PART.finditer(query):
        phrase, star, bare = match.groups()
        if bare is not None:
            # A bare word: strip a user-typed trailing `*` (prefix is the default anyway) and any
            # stray quote characters, which have no meaning outside a balanced pair.
            word = bare.replace('"', " ").rstrip("*")
            clauses.extend(term_clauses(word, prefix=True, exact_phrase=False))
        else:
            clauses.extend(term_clauses(phrase, prefix=bool(star), exact_phrase=True))
    return clauses


def narrow_prefixes(match: str, terms_with_prefix: Callable[[str], list[str] | None]) -> str:
    """`match` (from build_match / build_match_any) with each word prefix `"word"*` replaced by
    the indexed terms that start with the word: `"deployment"`, or `("release" OR "released")`.

    FTS5 answers a prefix longer than the indexed prefix lengths by merging the doclists of every
    term with that prefix into one buffer before it returns a row, and bm25 merges them again to
    count documents: a common word costs more as a prefix than as its one term (bench/RESULTS.md,
    "search_nodes: the rank window and word prefixes"). `terms_with_prefix(word)` reads the index's vocabulary; it returns None when
    more than MAX_PREFIX_TERMS terms start with the word, and the prefix query is kept. Only
    plain ASCII words are narrowed (unicode61 indexes them lower-cased and unchanged otherwise);
    any other text keeps FTS5's own prefix matching. The same rows match either way; with
    several terms, bm25 scores each term with its own frequency instead of the prefix's."""

    def narrowed(found: re.Match[str]) -> str:
        text = found.group()
        word = _narrowable_word(text)
        if word is None:
            return text
        terms = terms_with_prefix(word)
        if not terms:  # too many terms, or none (and a prefix with no terms is cheap)
            return text
        if len(terms) == 1:
            return _quote(terms[0])
        return "(" + " OR ".join(_quote(term) for term in terms) + ")"

    return _MATCH_STRING.sub(narrowed, match)


def prefix_words(match: str) -> list[str]:
    """The words `narrow_prefixes` looks up in `match`, lower-cased, each once, in order."""
    words = (_narrowable_word(found.group()) for found in _MATCH_STRING.finditer(match))
    return list(dict.fromkeys(word for word in words if word is not None))


def _narrowable_word(text: str) -> str | None:
    word = _ASCII_WORD_PREFIX.fullmatch(text)
    if word is None or len(word.group(1)) <= max(INDEXED_PREFIX_LENGTHS):
        return None
    return word.group(1).lower()


def build_match_any(terms: list[str]) -> str | None:
    """A safe MATCH expression that matches text holding any of `terms` (each a word prefix, or a
    CJK run as its bigram phrase). For ranked keyword candidates, where bm25 orders by how many
    and how rare the matched terms are."""
    groups = []
    for term in terms:
        clauses = _term_clauses(term.replace('"', " ").replace("\x00", " "), prefix=True, exact_phrase=False)
        if clauses:
            groups.append(clauses[0] if len(clauses) == 1 else "(" + " AND ".join(clauses) + ")")
    return " OR ".join(groups) if groups else None


# --- PostgreSQL: the same queries as tsquery text -------------------------------------------------
#
# A query is cut into terms exactly as for FTS5 (build_match), and each term into FTS5's tokens
# (`tokens`, as the index form on PostgreSQL is): a bare word is a prefix `'word':*`, a phrase
# joins its tokens with `<->` (the last one a prefix when FTS5's would be), CJK runs are bigram
# phrases, a single CJK character a prefix; terms are ANDed with `&`. Each token is a quoted
# lexeme: `to_tsquery('simple', ...)` reads it as `to_tsvector('simple', ...)` read the index
# form, so whatever the server's parser makes of a word, it makes the same of both.


def _lexeme(token: str) -> str:
    # index_word leaves only ASCII letters and digits: nothing to escape.
    return f"'{index_word(token)}'"


def _tsquery_clauses(text: str, *, prefix: bool, exact_phrase: bool) -> list[str]:
    """tsquery clauses for one user term or phrase (as `_term_clauses` for FTS5)."""
    clauses: list[str] = []
    pieces = _pieces(text)
    for index, (piece, is_cjk) in enumerate(pieces):
        if is_cjk:
            chars = tokens(piece)
            if len(chars) == 1 and len(chars[0]) == 1:
                clauses.append(_lexeme(chars[0]) + ":*")
            elif chars:
                run = "".join(chars)
                bigrams = [_lexeme(run[i : i + 2]) for i in range(len(run) - 1)]
                clauses.append(f"({' <-> '.join(bigrams)})" if len(bigrams) > 1 else bigrams[0])
            continue
        if not _has_token_chars(piece):  # as build_match: symbols alone leave the query to the caller
            continue
        words = tokens(piece)
        if not words:
            continue
        is_last = index == len(pieces) - 1
        wants_prefix = prefix and (is_last or not exact_phrase)
        phrase = " <-> ".join(_lexeme(word) for word in words) + (":*" if wants_prefix else "")
        clauses.append(f"({phrase})" if len(words) > 1 else phrase)
    return clauses


def build_tsquery(query: str) -> str | None:
    """`build_match` for PostgreSQL: the user's search text as the text of a tsquery for
    `to_tsquery('simple', ...)`; None when nothing in it is searchable."""
    clauses = _query_clauses(query, _tsquery_clauses)
    if not clauses:
        return None
    return " & ".join(clauses)


def build_tsquery_any(terms: list[str]) -> str | None:
    """`build_match_any` for PostgreSQL: a tsquery text matching text that holds any of `terms`."""
    groups = []
    for term in terms:
        clauses = _tsquery_clauses(term.replace('"', " ").replace("\x00", " "), prefix=True, exact_phrase=False)
        if clauses:
            groups.append(clauses[0] if len(clauses) == 1 else "(" + " & ".join(clauses) + ")")
    return " | ".join(groups) if groups else None
