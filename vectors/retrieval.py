"""Ranking arithmetic for semantic search: keyword terms, gated hybrid fusion, MMR.

Pure functions over numbers and strings; the selectors fetch candidates and call these.

Why not plain reciprocal-rank fusion: on a paraphrased question the keyword side's hits are
mostly noise (they share a common word with the query, not its meaning), and RRF gives that noise
the same weight as the vector side, so hybrid ends up worse than vector alone. Here the vector
similarity is the base score and keyword evidence can only lift a candidate, by an amount that
depends on how strong the evidence is:

- identifier-like terms (ports, error codes, ticket ids, versions, hostnames, env var names:
  anything with a digit, an inner `_ . - : /`, or camelCase) are exact evidence: a
  candidate holding all of them is lifted a long way toward 1, one holding some a little;
- ordinary words are weak evidence: the lift grows with the square of the share of the query's
  content words present, and stopwords never count.

So on a paraphrase query hybrid ranks (almost) as vector search does, and on an exact-identifier
query the memories carrying that identifier rise above their near-duplicates. The weights were
chosen on the evaluation set in bench/eval (see bench/retrieval.py).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from graph.fts import has_cjk

# How far toward 1.0 exact-identifier and word evidence can lift a vector similarity.
IDENTIFIER_LIFT = 0.6
WORD_LIFT = 0.1
# A query made only of identifiers (a ticket id, an error code, a token) asks for exactly that: a
# text holding all of them goes above anything that merely resembles it. Meaning says little about
# a random string, so a bare id's vector neighbours are noise with similarities up to ~0.7.
ONLY_IDENTIFIERS_LIFT = 0.95

_TOKEN = re.compile(r"[\w][\w.\-:/@#]*[\w]|[\w]", re.UNICODE)
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3041-\u30ff\uac00-\ud7af]+")

STOPWORDS_EN = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves tell know remember anything something
    please find show give get got use used using uses did does my our any""".split()  # noqa: SIM905
)
# Function and question words. Inside a run of Chinese (which has no spaces) only the longer ones
# are cut out; single characters are cut only at a run's ends, since inside a word they are part
# of it ("对象", "自我").
_ZH_WORDS = (
    "的 了 是 在 我 你 他 她 它 们 我们 你们 他们 这 那 这个 那个 什么 怎么 怎样 如何 哪 哪个 哪些 吗 呢 吧 啊 和 与 "
    "及 或 也 都 就 还 又 把 被 给 对 从 到 为 为了 有 没有 一个 一下 请 告诉 记得 之前 以前 关于 是否 多少 几 谁 "
    "哪里 哪儿 用的 是什么 什么样"
)
STOPWORDS_ZH = frozenset(_ZH_WORDS.split())
_ZH_LONG_STOPS = sorted((w for w in STOPWORDS_ZH if len(w) > 1), key=len, reverse=True)


def _cjk_terms(run: str) -> list[str]:
    """Character bigrams of a CJK run, stopwords removed: the units keyword matching uses for text
    without word boundaries (the FTS index stores the same bigrams, see graph/fts.py)."""
    for stop in _ZH_LONG_STOPS:
        run = run.replace(stop, " ")
    terms: list[str] = []
    for segment in run.split():
        while segment and segment[0] in STOPWORDS_ZH:
            segment = segment[1:]
        while segment and segment[-1] in STOPWORDS_ZH:
            segment = segment[:-1]
        terms.extend(segment[i : i + 2] for i in range(len(segment) - 1))
    return terms


@dataclass(frozen=True)
class QueryTerms:
    """The content terms of a query: what keyword search looks for and what fusion weighs."""

    words: tuple[str, ...]  # lower-cased, stopwords removed (CJK runs kept whole)
    identifiers: tuple[str, ...]  # the subset that looks like an identifier

    def __bool__(self) -> bool:
        return bool(self.words)


def is_identifier(token: str) -> bool:
    """Whether a token reads as an exact identifier rather than a word."""
    if any(ch.isdigit() for ch in token):
        return True
    if len(token) > 2 and any(ch in "_.-:/@#" for ch in token[1:-1]):
        return True
    # camelCase / PostgreSQL / iOS: a capital right after a lower-case letter. An all-capitals word
    # (UI, API, HTTP) is an acronym, an ordinary word; FOO_BAR is caught by its underscore above.
    return any(a.islower() and b.isupper() for a, b in itertools.pairwise(token))


def query_terms(query: str) -> QueryTerms:
    words: list[str] = []
    identifiers: list[str] = []
    for token in _TOKEN.findall(query):
        token = token.strip(".-:/@#")
        if not token:
            continue
        lowered = token.lower()
        if lowered in STOPWORDS_EN or lowered in STOPWORDS_ZH:
            continue
        if has_cjk(token):
            for run_or_text in re.split(f"({_CJK_RUN.pattern})", lowered):
                if not run_or_text:
                    continue
                if _CJK_RUN.fullmatch(run_or_text):
                    words.extend(_cjk_terms(run_or_text))
                elif run_or_text.strip("_.-:/@#"):
                    words.append(run_or_text.strip("_.-:/@#"))
            continue
        if len(lowered) == 1 and not lowered.isdigit():
            continue
        if lowered not in words:
            words.append(lowered)
            if is_identifier(token):
                identifiers.append(lowered)
    return QueryTerms(tuple(dict.fromkeys(words)), tuple(dict.fromkeys(identifiers)))


def _contains(text: str, term: str) -> bool:
    if has_cjk(term):
        return term in text
    # Word-prefix match, as the FTS side matches: "deploy" finds "deployment".
    return re.search(r"(?<![\w])" + re.escape(term), text) is not None


def keyword_lift(text: str, terms: QueryTerms) -> float:
    """The keyword evidence a text holds for the query, in [0, 1] (see the module docstring)."""
    if not terms:
        return 0.0
    lowered = text.lower()
    if terms.identifiers:
        found = sum(_contains(lowered, term) for term in terms.identifiers)
        if found == len(terms.identifiers):
            return ONLY_IDENTIFIERS_LIFT if len(terms.identifiers) == len(terms.words) else IDENTIFIER_LIFT
        if found:
            return IDENTIFIER_LIFT * 0.25 * found / len(terms.identifiers)
        return 0.0
    share = sum(_contains(lowered, term) for term in terms.words) / len(terms.words)
    return WORD_LIFT * share * share


def fuse(similarity: float, lift: float, *, vector_weight: float = 1.0, text_weight: float = 1.0) -> float:
    """The hybrid score in [0, 1]: the similarity, lifted toward 1 by the keyword evidence."""
    base = min(max(similarity, 0.0), 1.0)
    total = max(vector_weight + text_weight, 1e-9)
    # With the default equal weights this is base + (1 - base) * lift; the weights tilt it.
    tilt = 2 * text_weight / total
    lifted = base + (1.0 - base) * min(lift * tilt, 1.0)
    return float(min(max(lifted, 0.0), 1.0))


def unit(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def mmr(
    query: npt.NDArray[np.float32],
    candidates: npt.NDArray[np.float32],
    *,
    k: int,
    lambda_: float,
    relevance: Sequence[float] | None = None,
) -> list[int]:
    """Maximal marginal relevance: positions of `k` candidates, each chosen to be relevant to the
    query (weight `lambda_`) and unlike those already chosen (weight 1 - `lambda_`)."""
    if len(candidates) == 0 or k <= 0:
        return []
    cand = unit(candidates)
    rel = np.asarray(relevance, dtype=np.float32) if relevance is not None else cand @ unit(query[None, :])[0]
    pairwise = cand @ cand.T
    chosen: list[int] = []
    best_sim = np.full(len(cand), -np.inf, dtype=np.float32)
    available = np.ones(len(cand), dtype=bool)
    for _ in range(min(k, len(cand))):
        redundancy = np.where(np.isinf(best_sim), 0.0, best_sim)
        scores = lambda_ * rel - (1.0 - lambda_) * redundancy
        scores = np.where(available, scores, -np.inf)
        pick = int(np.argmax(scores))
        chosen.append(pick)
        available[pick] = False
        best_sim = np.maximum(best_sim, pairwise[pick])
    return chosen
