# Chinese patterns are written with their own punctuation.
# ruff: noqa: RUF001, RUF002, RUF003
"""A deterministic, rule-based stand-in for the LLM that extraction calls (memory/extraction.py):
a real local OpenAI-compatible HTTP server (tests/fake_llm.py's) whose answers follow rules, so
the temporal evaluation (bench/temporal.py) and the tests can measure what extraction does without
a model, the same way every run.

    from bench.llm_standin import serve
    with serve() as url:            # e.g. "http://127.0.0.1:PORT/v1": MEMORYHUB_LLM_URL
        ...

What it answers (it tells the two calls apart by the JSON schema named in the request's
`response_format`, memoryhub_facts or memoryhub_decisions, else by the prompt):

- facts: the sentences of the text between <message> and </message> (split at . ! ? 。！？ and
  line ends), questions and greetings (under three words and four Chinese characters) left out;
- decisions, for each fact against the memories between <memories> and </memories> (each
  memory's text split into sentences too): a fact states a slot (subject, relation) and a value
  when it matches one of the patterns below. A memory stating the same slot with the same value:
  NOOP (that memory). Memories stating the same slot with another value: UPDATE the first with
  the fact, INVALIDATE the others. A negative fact ("X no longer works at Y", "X left Y",
  "X不再在Y工作", "X离开了Y") INVALIDATEs the memories stating that job. Otherwise (no slot, or
  nothing held about it): a memory stating the same frame ("changed": both start with the same
  three words, or four Chinese characters, or three and end with the same one, and differ in
  between, e.g. "Olivia drives a Honda" / "Olivia drives a Tesla") is updated the same way; NOOP
  when a memory's sentence is the fact itself, else ADD.

Patterns (the subject may be any words; "now" / "现在" before the verb is ignored):

    English   X's <role> is Y      X works at Y / X works for Y      X lives in Y / X moved to Y
    Chinese   X的<role>是Y          X在Y工作                            X住在Y / X搬到(了)Y
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from tests.fake_llm import FakeLLM

FACTS_SCHEMA = "memoryhub_facts"
DECISIONS_SCHEMA = "memoryhub_decisions"

# Sentence ends: . ! ? before a space or the end (not inside "carlos.mendes@contoso.com", nor after
# a title such as "Dr." or "Mrs." or an initial), 。！？, line ends.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\b[A-Z][a-z]\.)(?<!\b[A-Z][a-z]{2}\.)(?:\s+|$)|(?<=[。！？])|\n"
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_NOW = re.compile(r"(?:\s+now|\s*现在)$", re.I)


class Slot(NamedTuple):
    subject: str
    relation: str
    value: str
    negative: bool = False


# (pattern, relation or None to take the <role> group, negative). The value group is "v".
_RULES: list[tuple[re.Pattern[str], str | None, bool]] = [
    (
        re.compile(r"^(?P<s>.+?)\s+(?:no longer works|does not work|doesn't work) (?:at|for)\s+(?P<v>.+)$", re.I),
        "works at",
        True,
    ),
    (re.compile(r"^(?P<s>.+?)\s+(?:left|quit)\s+(?P<v>.+)$", re.I), "works at", True),
    (re.compile(r"^(?P<s>.+?)\s+works (?:at|for)\s+(?P<v>.+)$", re.I), "works at", False),
    (re.compile(r"^(?P<s>.+?)\s+(?:lives|is living) in\s+(?P<v>.+)$", re.I), "lives in", False),
    (re.compile(r"^(?P<s>.+?)\s+(?:moved|has moved|relocated) to\s+(?P<v>.+)$", re.I), "lives in", False),
    (re.compile(r"^(?P<s>.+?)'s\s+(?P<r>[\w\s-]+?)\s+is\s+(?:now\s+)?(?P<v>.+)$", re.I), None, False),
    (re.compile(r"^(?P<s>.+?)(?:现在)?不再在(?P<v>.+?)工作$"), "在…工作", True),
    (re.compile(r"^(?P<s>.+?)离开了(?P<v>.+)$"), "在…工作", True),
    (re.compile(r"^(?P<s>.+?)(?:现在)?在(?P<v>.+?)工作$"), "在…工作", False),
    (re.compile(r"^(?P<s>.+?)住在(?P<v>.+)$"), "住在", False),
    (re.compile(r"^(?P<s>.+?)搬到了?(?P<v>.+)$"), "住在", False),
    (re.compile(r"^(?P<s>.+?)的(?P<r>.+?)(?:现在)?是(?P<v>.+)$"), None, False),
]


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip(" \t.!?。！？")]


def _tokens(sentence: str) -> list[str]:
    """Words (lower case), or characters when the sentence is Chinese; punctuation dropped."""
    text = sentence.strip().rstrip(".!?。！？").strip()
    if _CJK.search(text):
        return [char for char in text if not char.isspace() and char not in "，、：；"]
    return [word.strip(",;:").lower() for word in text.split()]


def frame(fact: str, held: str) -> str | None:
    """How a held sentence relates to a fact when no pattern names their slot: "same" (the same
    words), "changed" (the same frame, another value: a common start of at least three words, or
    four Chinese characters, or three and a common end, and different middles), else None."""
    a, b = _tokens(fact), _tokens(held)
    if not a or not b:
        return None
    if a == b:
        return "same"
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    if prefix == min(len(a), len(b)):
        return None  # one is the other with more words: not a changed value
    chinese = bool(_CJK.search(fact))
    framed = (prefix >= 4 or (prefix >= 3 and suffix >= 1)) if chinese else prefix >= 3
    return "changed" if framed else None


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip(".!。！").strip()).lower()


def slot(sentence: str) -> Slot | None:
    """The (subject, relation, value) a sentence states, when it matches a pattern."""
    text = sentence.strip().rstrip(".!。！").strip()
    for pattern, relation, negative in _RULES:
        match = pattern.match(text)
        if match:
            subject = _NOW.sub("", match.group("s").strip())
            named = relation or _clean(match.group("r"))
            return Slot(_clean(subject), named, _clean(match.group("v")), negative)
    return None


def _between(text: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", text, re.S)
    return match.group(1) if match else None


def facts_of(prompt: str) -> list[str]:
    """The message's statements: not questions, not greetings (under three words and four Chinese
    characters)."""
    message = _between(prompt, "message")
    return [
        s
        for s in sentences(message if message is not None else prompt)
        if not s.endswith(("?", "？")) and (len(s.split()) >= 3 or len(_CJK.findall(s)) >= 4)
    ]


def decisions_of(prompt: str) -> list[dict[str, str]]:
    facts = json.loads(_between(prompt, "facts") or "[]")
    memories = json.loads(_between(prompt, "memories") or "[]")
    decided: list[dict[str, str]] = []
    for fact in facts:
        wanted = slot(fact)
        same: list[str] = []
        other: list[str] = []
        for memory in memories:
            for sentence in sentences(memory["text"]):
                found = slot(sentence)
                if wanted is None or found is None:
                    relation = frame(fact, sentence) if wanted is None or not wanted.negative else None
                    if relation == "same":
                        same.append(memory["id"])
                    elif relation == "changed":
                        other.append(memory["id"])
                    continue
                if found.negative:
                    continue
                if (found.subject, found.relation) != (wanted.subject, wanted.relation):
                    continue
                if wanted.negative:
                    if not wanted.value or found.value == wanted.value:
                        other.append(memory["id"])
                elif found.value == wanted.value:
                    same.append(memory["id"])
                else:
                    other.append(memory["id"])
        other = [ident for ident in dict.fromkeys(other) if ident not in same]
        if wanted is not None and wanted.negative:
            decided += [{"event": "INVALIDATE", "fact": "", "id": ident} for ident in other]
            if not other:
                decided.append({"event": "NOOP", "fact": "", "id": ""})
            continue
        if same:
            decided.append({"event": "NOOP", "fact": "", "id": same[0]})
            decided += [{"event": "INVALIDATE", "fact": "", "id": ident} for ident in other]
        elif other:
            decided.append({"event": "UPDATE", "fact": fact, "id": other[0]})
            decided += [{"event": "INVALIDATE", "fact": "", "id": ident} for ident in other[1:]]
        else:
            identical = next((m["id"] for m in memories if _clean(m["text"]) == _clean(fact)), None)
            decided.append(
                {"event": "NOOP", "fact": "", "id": identical}
                if identical
                else {"event": "ADD", "fact": fact, "id": ""}
            )
    return decided


def answer(body: dict[str, Any]) -> str:
    """The completion text for one chat request (FakeLLM's callable answer)."""
    messages = body.get("messages") or []
    prompt = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    response_format = body.get("response_format") or {}
    name = (response_format.get("json_schema") or {}).get("name", "")
    if name == DECISIONS_SCHEMA or (not name and "<memories>" in prompt):
        return json.dumps({"decisions": decisions_of(prompt)}, ensure_ascii=False)
    return json.dumps({"facts": facts_of(prompt)}, ensure_ascii=False)


@contextlib.contextmanager
def serve() -> Iterator[str]:
    """A running stand-in; yields its base URL (for MEMORYHUB_LLM_URL), stops on exit."""
    with FakeLLM() as server:
        server.answer = answer
        yield server.url


if __name__ == "__main__":  # a stand-in to point a server at by hand
    import time

    with serve() as url:
        print(f"MEMORYHUB_LLM_URL={url} MEMORYHUB_LLM_MODEL=standin", flush=True)
        while True:
            time.sleep(3600)
