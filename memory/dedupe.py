"""Whether a new text says the same as a current one: the dedupe judge, without a language model.

The graph asks it (graph/dedupe.py, registered in memory/apps.py) for an entity's observations;
memory.services asks it for free memories. Precision comes first: a wrong merge loses a fact,
a missed one only stores a repeat. So two texts are the same only when

1. after normalising the surface (NFKC, case, whitespace, punctuation, contractions, fillers such as
   "please remember that" or 请记住, articles, plural endings, a short list of spellings and
   synonyms) their content words are the same multiset. Identifiers (numbers with their sign and
   currency, versions, codes, dates, times, emails, URLs, paths, names and Latin words in Chinese
   text) are single tokens that are never stemmed or replaced, so "port 8080" / "port 8081",
   "v2.3.0" / "v2.3.1", "Anna" / "Anne" and "张伟" / "张维" (Chinese is compared character by
   character) always differ. A negation, an antonym, another unit or a different subject or object
   is a word that differs, so it never merges either;
2. and they say it in the same order; or in another order that is not a mere permutation of the
   same words (a swap, "Alice reports to Bob" / "Bob reports to Alice", 张三打了李四 / 李四打了张三,
   never merges), except a phrase of place or time moved whole ("On Fridays the office closes" /
   "The office closes on Fridays", 我明天去北京 / 明天我去北京); and the embedder finds the two
   close in meaning (cosine at least MIN_SIMILARITY): "Dana's team lead is Priya" / "Priya leads
   Dana's team".

A text left with no content word ("ok", "thanks!") repeats only the same text (case and
punctuation aside).

Cheap on the write path: a current text that lacks half of the new text's longest words is
passed over at a glance (`probes`, substring tests) before either text is read; readings are
cached; the first condition is a comparison of two hashable keys; nothing is embedded unless a
candidate has the same words in another order. Free memories are found as candidates by their
dedupe key (`key_of`: the content words, order aside), one indexed look-up for a whole write.
bench/dedupe.py measures the judge on the evaluation set bench/eval/dedupe.jsonl.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from graph import observations
from graph.fts import has_cjk
from vectors import store
from vectors.embedders import default_embedder
from vectors.embedding import embed_texts
from vectors.exceptions import EmbeddingUnavailable
from vectors.models import OwnerKind
from vectors.store import IndexKey

# Cosine similarity of the two texts' embeddings from which a reordered text counts as the same
# (only asked once the words match; bench/RESULTS.md "Dedupe" shows the measured margins).
MIN_SIMILARITY = 0.85

# --- normalisation --------------------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_CJK_CHAR = re.compile(
    "[\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uac00-\ud7af\U00020000-\U0002ffff]"
)
# Said before or after a fact without adding to it. Only at the start (or the end) of the text:
# inside it the same words may carry meaning ("remember the milk").
# Chinese punctuation (full-width comma, full stop, colon, semicolon, exclamation mark, enumeration
# comma), written as escapes because it looks like ASCII punctuation.
_ZH_PUNCT = "\uff0c\u3002\uff1a\uff1b\uff01\u3001"
_LEADING_FILLER = re.compile(
    r"^[\s,.:;!\-]*(?:(?:please|pls|plz|kindly)\s+)?(?:"
    r"remember|note|recall|keep in mind|don't forget|do not forget|be aware|fyi|for your information|"
    r"for the record|just so you know|just a reminder|as a reminder|reminder|heads up|by the way|btw|"
    r"important|ok|okay|hey|hi|hello|oh|so|also|and|i want you to know|you should know|good to know|"
    r"please|pls|plz|kindly"
    r")\b(?:\s+that\b)?[\s,.:;!\-]*",
    re.IGNORECASE,
)
_LEADING_FILLER_ZH = re.compile(
    rf"^[\s,.:;!{_ZH_PUNCT}]*(?:请|麻烦|请你|你)?(?:"
    r"记住|记得|注意|留意|备注|提醒一下|提醒|顺便说一下|顺便提一下|顺便说|顺便|补充一下|补充|另外|对了|"
    r"告诉你|你知道吗|需要注意的是|要知道"
    rf")[\s,.:;!{_ZH_PUNCT}]*"
)
_TRAILING_FILLER = re.compile(
    rf"[\s,.:;!{_ZH_PUNCT}]*(?:please|pls|thanks|thank you|thx|cheers|谢谢|谢了|多谢)[\s.!{_ZH_PUNCT}]*$",
    re.IGNORECASE,
)
_CONTRACTIONS = [
    (re.compile(r"\bwon't\b", re.IGNORECASE), "will not"),
    (re.compile(r"\bcan't\b", re.IGNORECASE), "can not"),
    (re.compile(r"\bcannot\b", re.IGNORECASE), "can not"),
    (re.compile(r"\bshan't\b", re.IGNORECASE), "shall not"),
    (re.compile(r"n't\b", re.IGNORECASE), " not"),
    (re.compile(r"'re\b", re.IGNORECASE), " are"),
    (re.compile(r"'m\b", re.IGNORECASE), " am"),
    (re.compile(r"'ve\b", re.IGNORECASE), " have"),
    (re.compile(r"'ll\b", re.IGNORECASE), " will"),
    (re.compile(r"'d\b", re.IGNORECASE), " would"),
    (re.compile(r"\blet's\b", re.IGNORECASE), "let us"),
    (re.compile(r"\b(it|that|he|she|what|there|here|who|where|how|this)'s\b", re.IGNORECASE), r"\1 is"),
]
# Chinese words with one spelling chosen (compared character by character afterwards).
_ZH_SYNONYMS = [
    ("计算机", "电脑"),
    ("使用", "用"),
    ("采用", "用"),
    ("喜爱", "喜欢"),
    ("星期", "周"),
    ("礼拜", "周"),
    ("居住", "住"),
    ("目前", "现在"),
    ("当前", "现在"),
]

_TOKEN = re.compile(
    rf"(?P<url>(?:https?|ftp)://[^\s<>\"'{_ZH_PUNCT}]+|www\.[^\s<>\"'{_ZH_PUNCT}]+)"
    r"|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<path>(?:[A-Za-z]:\\|~/|\.{1,2}/|/)[\w.\-/\\~]*[\w/]|[\w.-]*\w(?:/[\w.-]*\w)+)"
    r"|(?P<date>\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})"
    r"|(?P<time>\d{1,2}:\d{2}(?::\d{2})?)"
    r"|(?P<version>v?\d+(?:\.\d+){2,}(?:[-+][\w.]+)?|v\d+(?:\.\d+)?)"
    r"|(?P<hex>0x[0-9A-Fa-f]+)"
    r"|(?P<code>[^\W\d_]+(?:[-_.][^\W_]+)*\d[\w-]*|[^\W\d_]+-[^\W_]+\d?)"
    r"|(?P<number>(?:(?<![\w.])[-+\u2212])?[$€£¥₹]?\d+(?:,\d{3})*(?:\.\d+)?%?)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*'?)"
    r"|(?P<op>!=|==|<=|>=|=>|->|<-|&&|\|\||[<>=+*^~&|#@$€£¥₹%°±\u00d7÷≠≤≥])"
)
_SENTENCE_END = set(".!?:;\n\"'(\uff1f\uff08" + _ZH_PUNCT)

# Punctuation around a word, stripped before the fast path looks at it.
_EDGE = ".,;:!?\"'()[]{}\u2026\uff08\uff09\uff1f" + _ZH_PUNCT
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_ARTICLES = frozenset({"a", "an", "the"})
# Kept in the word order (so "X is Y's" / "Y's X" is not a bare permutation) but not in the content.
_STOPWORDS = frozenset({"is", "are", "am", "be", "do", "does", "that", "which", "who", "的"})
_FILLERS = frozenset(
    {
        "please",
        "pls",
        "plz",
        "kindly",
        "really",
        "very",
        "actually",
        "basically",
        "just",
        "also",
        "definitely",
        "absolutely",
        "truly",
        "indeed",
        "currently",
        "um",
        "uh",
        # Chinese particles and politeness that do not change a fact.
        "吧",
        "呢",
        "啊",
        "呀",
        "哦",
        "嘛",
        "哈",
        "很",
        "请",
        "也",
    }
)
NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "nowhere",
        "neither",
        "nor",
        "without",
        "non",
        "不",
        "没",
        "沒",
        "未",
        "别",
        "無",
        "无",
        "非",
        "莫",
        "勿",
        "否",
        "甭",
    }
)
_FUNCTION_WORDS = _ARTICLES | _STOPWORDS | _FILLERS | NEGATIONS
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        [
            *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
            *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"),
            *("nineteen", "twenty"),
        ]
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90"}
# One spelling for words that mean the same in any fact (after the plural ending is removed).
_SYNONYMS = {
    "begin": "start",
    "began": "started",
    "begun": "started",
    "commence": "start",
    "commenced": "started",
    "large": "big",
    "little": "small",
    "purchase": "buy",
    "purchased": "bought",
    "utilize": "use",
    "utilise": "use",
    "utilized": "used",
    "utilised": "used",
    "automobile": "car",
    "quick": "fast",
    "reside": "live",
    "resided": "lived",
    "favourite": "favorite",
    "colour": "color",
    "organisation": "organization",
    "centre": "center",
    "grey": "gray",
    "behaviour": "behavior",
    "telephone": "phone",
    "cellphone": "phone",
    "info": "information",
    "repo": "repository",
    "db": "database",
    "config": "configuration",
    "app": "application",
    "prod": "production",
    "u": "you",
    "ur": "your",
    "thru": "through",
    "approx": "approximately",
    "okay": "ok",
}


@dataclass(frozen=True)
class Reading:
    """What the judge compares of one text: `order` its normalised tokens in order (articles and
    fillers left out), `key` the multiset of its content tokens (stop words left out too) as a
    hashable value, `plain` the text without case, spacing and punctuation (for texts with no
    content word)."""

    order: tuple[str, ...]
    key: frozenset[tuple[str, int]]
    plain: str


# The first words of the leading fillers and the endings of the trailing ones: a text that starts
# and ends otherwise (most of them) is not run through the filler patterns at all.
_FILLER_FIRST_WORDS = frozenset(
    [
        "remember",
        "note",
        "recall",
        "keep",
        "don't",
        "do",
        "be",
        "fyi",
        "for",
        "just",
        "as",
        "reminder",
        "heads",
        "by",
        "btw",
        "important",
        "ok",
        "okay",
        "hey",
        "hi",
        "hello",
        "oh",
        "so",
        "also",
        "and",
        "i",
        "you",
        "good",
        "please",
        "pls",
        "plz",
        "kindly",
    ]
)
_FILLER_FIRST_CHARS = frozenset("请麻你记注留备提顺补另对告需要")
_FILLER_ENDINGS = ("please", "pls", "thanks", "thank you", "thx", "cheers", "谢谢", "谢了", "多谢")
_FIRST_WORD = re.compile(r"[\s,.:;!\-]*([\w']*)")


def _may_have_fillers(text: str) -> bool:
    first = _FIRST_WORD.match(text)
    word = first.group(1).casefold() if first else ""
    if word in _FILLER_FIRST_WORDS or (word and word[0] in _FILLER_FIRST_CHARS):
        return True
    return text.rstrip(" \t\n.!" + _ZH_PUNCT).casefold().endswith(_FILLER_ENDINGS)


def _strip_fillers(text: str) -> str:
    for _ in range(4):
        if not _may_have_fillers(text):
            break
        stripped = _TRAILING_FILLER.sub("", _LEADING_FILLER_ZH.sub("", _LEADING_FILLER.sub("", text)))
        if stripped == text:
            break
        text = stripped
    return text


def _stem(word: str) -> str:
    """The plural (and third person) ending removed; nothing else (tense is kept: "works" and
    "worked" say different things)."""
    if len(word) < 4 or "'" in word or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def _shouting(text: str) -> bool:
    upper = len(_UPPER.findall(text))
    return upper >= 6 and upper >= 0.7 * (upper + len(_LOWER.findall(text)))


def _word(value: str, *, initial: bool, cjk: bool, shouting: bool) -> str:
    """A word's token: a name (capitalised inside a sentence, or mixed case) or a Latin word in
    Chinese text is an identifier, compared exactly and never stemmed or replaced (in a text
    written in capitals, case tells nothing)."""
    lowered = value.casefold()
    if len(value) == 1 and _CJK_CHAR.match(value):
        return value
    rest = value[1:]
    if not shouting and (cjk or (value[0].isupper() and not initial) or rest != rest.lower()):
        # A name that is also a function word ("Plan A", "in The Hague") keeps its case, so it is
        # neither dropped as an article nor read as a filler or a negation.
        return value if lowered in _FUNCTION_WORDS else lowered
    word = _NUMBER_WORDS.get(lowered) or _stem(lowered.strip("'"))
    return _SYNONYMS.get(word, word)


def _tokens(text: str) -> list[str]:
    """The normalised tokens of `text`, in order. Text is read a whitespace-separated chunk at a
    time: a plain word (most of them) takes a fast path, any other chunk the full pattern."""
    cjk = has_cjk(text)
    shouting = _shouting(text)
    found: list[str] = []
    ended = True  # the previous chunk ended a sentence (or there was none)
    for chunk in text.split():
        core = chunk.strip(_EDGE)
        lead = chunk[: len(chunk) - len(chunk.lstrip(_EDGE))]
        initial = ended or any(ch in _SENTENCE_END for ch in lead)
        ended = chunk[-1] in _SENTENCE_END
        if not core:
            continue
        if core.isalpha() and core.isascii():
            found.append(_word(core, initial=initial, cjk=cjk, shouting=shouting))
            continue
        for match in _TOKEN.finditer(chunk):
            kind = match.lastgroup
            value = match.group()
            if kind == "word":
                at = match.start() - 1
                first = initial if at < 0 or chunk[: at + 1].strip(_EDGE) == "" else chunk[at] in _SENTENCE_END
                found.append(_word(value, initial=first, cjk=cjk, shouting=shouting))
            elif kind == "number":
                found.append(value.replace(",", "").replace("\u2212", "-"))
            elif kind in ("url", "path"):
                found.append(value.casefold().rstrip("/"))
            else:
                found.append(value.casefold())
    return found


# Readings kept, and the longest text kept: the cache holds its texts, so its memory is bounded by
# both (a reading takes about a kilobyte; a long text is rare and read once per write anyway).
CACHED_READINGS = 32768
CACHED_LENGTH = 2000


def read(text: str) -> Reading:
    """The judge's reading of one text (cached for texts up to CACHED_LENGTH characters: the same
    observations are read on every write to their entity)."""
    return _cached_read(text) if len(text) <= CACHED_LENGTH else _read(text)


@functools.lru_cache(maxsize=CACHED_READINGS)
def _cached_read(text: str) -> Reading:
    return _read(text)


def _read(text: str) -> Reading:
    normal = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    normal = _strip_fillers(normal)
    for pattern, replacement in _CONTRACTIONS:
        normal = pattern.sub(replacement, normal)
    if has_cjk(normal):
        for variant, chosen in _ZH_SYNONYMS:
            normal = normal.replace(variant, chosen)
        normal = _CJK_CHAR.sub(lambda m: f" {m.group()} ", normal)
    order = tuple(token for token in _tokens(normal) if token not in _ARTICLES and token not in _FILLERS)
    content = Counter(token for token in order if token not in _STOPWORDS)
    plain = " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))
    return Reading(order, frozenset(content.items()), plain)


# --- a cheap first look ---------------------------------------------------------------------------

_QUICK = re.compile(r"[0-9a-z]+|" + _CJK_CHAR.pattern)
# Words looked for in a candidate at a glance, at most; a repeat holds at least half of them.
PROBES = 6


def probes(text: str) -> tuple[str, ...]:
    """What a text that `text` repeats very likely holds: the starts (4 letters, so inflections
    match) of its longest words and its Chinese characters, fillers and function words left out.
    A repeat holds at least half of them (fillers, synonyms and numbers in words change fewer), so
    a current text that does not is passed over before either text is read."""
    return _cached_probes(text) if len(text) <= CACHED_LENGTH else _probes(text)


@functools.lru_cache(maxsize=CACHED_READINGS)
def _cached_probes(text: str) -> tuple[str, ...]:
    return _probes(text)


def _probes(text: str) -> tuple[str, ...]:
    words = [word for word in _QUICK.findall(_strip_fillers(text).casefold()) if word not in _FUNCTION_WORDS]
    longest = sorted(dict.fromkeys(words), key=len, reverse=True)[:PROBES]
    return tuple(word[:4] for word in longest)


def _may_repeat(wanted: tuple[str, ...], other: str) -> bool:
    lowered = other.casefold()
    needed = (len(wanted) + 1) // 2  # at least half of them
    missing = len(wanted) - needed  # how many may be absent
    for probe in wanted:
        if probe in lowered:
            needed -= 1
            if needed <= 0:
                return True
        else:
            missing -= 1
            if missing < 0:
                return False
    return needed <= 0


def clear_caches() -> None:
    """Forget every cached reading and probe (for measurements)."""
    _cached_read.cache_clear()
    _cached_probes.cache_clear()
    _cached_key.cache_clear()


# --- judging --------------------------------------------------------------------------------------


def verdict(new: Reading, old: Reading) -> bool | None:
    """True: the same; False: not the same; None: the same words reordered, for the embedder."""
    if not new.key or not old.key:
        return new.plain == old.plain and bool(new.plain)
    if new.key != old.key:
        return False
    if new.order == old.order:
        return True
    if sorted(new.order) == sorted(old.order):
        # The same words in another order: who did what to whom may have changed, unless a phrase
        # of place or time moved as a whole ("On Fridays the office closes" / "The office closes
        # on Fridays").
        return None if _phrase_moved(new.order, old.order) else False
    return None


# Words that start a phrase of place or time, which may move within a sentence without changing
# who does what ("by" is left out: it names the doer of a passive).
_PHRASE_STARTS = frozenset(
    {"on", "at", "in", "every", "each", "until", "till", "since", "during", "before", "after", "from", "daily"}
)
# Chinese characters of time words (今天, 明天上午, 每周五, 三点...), which may move likewise.
_ZH_TIME = frozenset("今明昨前后天早晚上下中午凌晨夜周月日年号点时每星期礼拜一二三四五六七八九十两")


def _movable(segment: Sequence[str]) -> bool:
    if segment[0] in _PHRASE_STARTS:
        return True
    return all(token in _ZH_TIME or token.isdigit() for token in segment)


def _phrase_moved(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether `b` is `a` with one phrase of place or time moved: what differs is two adjacent
    segments swapped (X Y -> Y X), one of which is such a phrase. A swap of two words around a
    third ("Alice reports to Bob" / "Bob reports to Alice") is not a move."""
    start = 0
    while a[start] == b[start]:
        start += 1
    end = 0
    while a[-1 - end] == b[-1 - end]:
        end += 1
    middle_a, middle_b = list(a[start : len(a) - end]), list(b[start : len(b) - end])
    for split in range(1, len(middle_a)):
        first, second = middle_a[:split], middle_a[split:]
        if second + first == middle_b and (_movable(first) or _movable(second)):
            return True
    return False


Vectors = Callable[[Sequence[int]], Mapping[int, np.ndarray]]


def match(
    texts: Sequence[str],
    current: Sequence[tuple[int, str]],
    *,
    stored: Vectors | None = None,
) -> dict[int, int]:
    """{index in `texts`: id in `current` it says the same as}. The oldest such text (the lowest
    id) is chosen. `stored(ids)` gives the stored vectors of current texts, when there are any;
    the others are embedded when a reordered candidate needs them."""
    ordered = sorted(current)
    found: dict[int, int] = {}
    undecided: list[tuple[int, int, str]] = []  # (index, current id, current text)
    for index, text in enumerate(texts):
        wanted = probes(text)
        reading: Reading | None = None
        reordered: list[tuple[int, str]] = []
        for ident, body in ordered:
            if not _may_repeat(wanted, body):
                continue
            reading = reading or read(text)
            outcome = verdict(reading, read(body))
            if outcome:
                found[index] = ident
                break
            if outcome is None:
                reordered.append((ident, body))
        else:
            undecided += [(index, ident, body) for ident, body in reordered]
    if undecided:
        for index, ident in _close_in_meaning(texts, undecided, stored).items():
            found.setdefault(index, ident)
    return found


def _close_in_meaning(
    texts: Sequence[str], pairs: list[tuple[int, int, str]], stored: Vectors | None
) -> dict[int, int]:
    """{index: current id} of the pairs whose embeddings are at least MIN_SIMILARITY apart. Without
    an embedder (it failed) nothing is merged: storing a repeat is the safe side."""
    embedder = default_embedder()
    known = dict(stored([ident for _, ident, _ in pairs])) if stored is not None else {}
    missing = list(dict.fromkeys(body for _, ident, body in pairs if ident not in known))
    wanted = list(dict.fromkeys([texts[index] for index, _, _ in pairs] + missing))
    try:
        vectors = dict(zip(wanted, embed_texts(wanted, embedder=embedder), strict=True))
    except EmbeddingUnavailable:
        return {}
    found: dict[int, int] = {}
    for index, ident, body in pairs:
        if index in found:
            continue
        old = known.get(ident)
        if old is None or old.shape[0] != embedder.dims:
            old = vectors[body]
        if _cosine(vectors[texts[index]], old) >= MIN_SIMILARITY:
            found[index] = ident
    return found


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms else 0.0


def similarity(a: str, b: str) -> float:
    """The embedder's cosine similarity of two texts (for the evaluation script)."""
    vectors = embed_texts([a, b])
    return _cosine(vectors[0], vectors[1])


def judge(namespace_id: int, texts: Sequence[str], current: Sequence[tuple[int, str]]) -> Mapping[int, int]:
    """The graph's judge (graph.dedupe.Judge): which of `texts` repeat which of `current`, the
    current texts' stored vectors used where the namespace has them."""
    model = default_embedder().model_id

    def stored(ids: Sequence[int]) -> Mapping[int, np.ndarray]:
        return store.vectors_of(IndexKey(namespace_id, OwnerKind.OBSERVATION, model), ids)

    return match(texts, current, stored=stored)


def key_of(text: str) -> str:
    """A text's dedupe key: equal for every two texts `verdict` may find the same (the same content
    words, in any order; the same plain text for texts with none), so a repeat's candidates are
    found by equality (graph.observations.free_memories_keyed). Not a verdict: the judge still
    reads both texts."""
    return _cached_key(text) if len(text) <= CACHED_LENGTH else _key(text)


@functools.lru_cache(maxsize=CACHED_READINGS)
def _cached_key(text: str) -> str:
    return _key(text)


def _key(text: str) -> str:
    reading = read(text)
    basis = repr(sorted(reading.key)) if reading.key else "=" + reading.plain
    return hashlib.blake2b(basis.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


# Free memories with no key yet (from before keys, or rewritten since) keyed per write, at most:
# a namespace of old memories is keyed over its next writes, a bounded cost each.
KEY_BATCH = 2000


def unkeyed(namespace_id: int) -> list[tuple[int, str, str, str]]:
    """[(id, body, actor id, key)] for up to KEY_BATCH of the namespace's free memories with no key
    yet (read before the write's transaction; graph.services.set_dedupe_keys stores them in it)."""
    return [
        (ident, body, actor, key_of(body))
        for ident, body, actor in observations.unkeyed_free_memories(namespace_id, limit=KEY_BATCH)
    ]


def free_repeats(
    namespace_id: int, texts: Sequence[tuple[str, str]], *, extra: Sequence[tuple[int, str, str, str]] = ()
) -> dict[int, int]:
    """{index: id of the current free memory it repeats} for [(text, actor id)]: candidates are
    the namespace's current (unexpired) free memories of the same actor with the same dedupe key
    (one look-up for all the texts; `extra` adds (id, body, actor, key) rows keyed in this write),
    judged as `judge` does. One actor's memories are never compared with another's (MemOS
    user_ids, memory.scopes)."""
    keys = [key_of(text) for text, _ in texts]
    candidates: dict[tuple[str, str], list[tuple[int, str]]] = {}
    wanted = list(dict.fromkeys((actor, key) for (_, actor), key in zip(texts, keys, strict=True)))
    for ident, body, actor, key in [*observations.free_memories_keyed(namespace_id, wanted), *extra]:
        candidates.setdefault((actor, key), []).append((ident, body))
    found: dict[int, int] = {}
    for index, ((text, actor), key) in enumerate(zip(texts, keys, strict=True)):
        current = candidates.get((actor, key))
        if current:
            repeated = judge(namespace_id, [text], current)
            if repeated:
                found[index] = repeated[0]
    return found


def within(texts: Sequence[str]) -> dict[int, int]:
    """{index: index of the earlier text of `texts` it repeats} (repeats inside one write). Only
    texts with the same words in the same order count here: a reordered repeat in the same call
    is stored (the embedder is not asked inside one batch)."""
    first: dict[frozenset[tuple[str, int]] | str, list[tuple[int, Reading]]] = {}
    found: dict[int, int] = {}
    for index, text in enumerate(texts):
        reading = read(text)
        bucket = first.setdefault(reading.key or reading.plain, [])
        earlier = next((position for position, seen in bucket if verdict(reading, seen)), None)
        if earlier is None:
            bucket.append((index, reading))
        else:
            found[index] = earlier
    return found
