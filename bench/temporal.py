"""Facts in time (issue 19): does an agent get the current fact now, and the fact valid then when it
asks about the past? Replays the scripted histories of bench/eval/temporal.jsonl against a real
MemoryHub server over REST, and times asOf reads against current reads at scale.

    python -m bench.temporal --check                          # the set's shape and counts only
    python -m bench.temporal                                  # baseline, supersede, dated, functional
    python -m bench.temporal --modes baseline                 # what an agent got before issue 19
    python -m bench.temporal --modes supersede,functional --shared   # one namespace per language
    python -m bench.temporal --modes extraction               # infer:true with bench/llm_standin.py
    python -m bench.temporal --server http://127.0.0.1:8000 --key KEY   # an already running server
    python -m bench.temporal --cost 100000                    # asOf vs current reads at 100k memories

A history is one fact and its changes (A -> B, A -> B -> C, or A -> B -> A), with questions about
now (`asOf` null: the top search result must be the current fact) and about a date between two
steps (the answer must be the fact valid then). Memory histories hold sentences; relation
histories hold edges `from -relationType-> to` (with the sentence that states each, for the
extraction mode). Each history runs in a namespace of its own (`--shared`: all histories of one
language in one namespace, so a question also competes with the other histories' facts).

Modes (`--modes`, comma-separated), each in namespaces of its own on one server:

- baseline: the same histories as plain memories and plain relations, no supersession and no
  validity (what an agent got before this issue); every question is a current search, since a
  server without validity has no past to ask about. A relation question is right when open_nodes
  lists exactly one relation of that type from the entity, to the expected target.
- supersede (memory): the first step written, every change `POST /v1/memory/supersede {id, text}`
  in real time; a dated question is asked at the real instant between the two steps it falls
  between (the script sleeps between steps, so every gap holds a whole second). Supersede sets
  validFrom = now, so the scripted dates are mapped onto the replay's own clock.
- dated (memory): every step written with the scripted validFrom and, but for the last, validTo =
  the next step's time (`/v1/memory/write`, dedupe off); questions asked with the scripted dates.
- functional (relation): each relation type declared functional in the namespace
  (`POST /v1/graph/declare_relation_type`), then `create_relations` per step in real time (the
  new edge closes the old one); questions through `/v1/graph/open_nodes` with asOf, mapped onto
  the replay's clock as in supersede.
- extraction: a server started with MEMORYHUB_LLM_URL pointing at bench/llm_standin.py's `serve()`;
  every step's sentence written with `infer: true` (its scripted time as validFrom) and nothing
  superseded by the script; once the extraction has settled, the "now" questions (and, for
  information, the dated ones) are searched. Extracted facts are new sentences, so an answer is
  right when the top result holds the expected value and no other value of that history.

Searches ask `/v1/memory/search` with topK 5 and look at the first result only.

The cost measurement (`--cost N`) runs in this process on a temporary database: N memories in one
namespace (generated sentences, embedded on write as in production), a tenth of them superseded
afterwards; then p50/p95 of keyword and hybrid search, current vs asOf (a moment before the
supersessions), and of read_graph / open_nodes current vs asOf on a graph of `--graph-entities`
entities (5 observations each: 100k observations by default; a relation from each to the next; a tenth
of both closed). The
target: asOf at most 1.5x current.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import itertools
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stats import median, p95

SET = Path(__file__).resolve().parent / "eval" / "temporal.jsonl"
MODES = ("baseline", "supersede", "dated", "functional", "extraction")
KINDS = {"baseline": ("memory", "relation"), "supersede": ("memory",), "dated": ("memory",)}
KINDS |= {"functional": ("relation",), "extraction": ("memory", "relation")}
TOP_K = 5
GAP_SECONDS = (
    2.2  # between two steps of the replay: every gap holds a whole second (times on the wire are to the second)
)

History = dict[str, Any]


# --- the set ---------------------------------------------------------------------------------------


def load(path: Path = SET) -> list[History]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def answers(history: History) -> list[str]:
    """What each step makes true: its sentence (memory) or its target (relation)."""
    key = "text" if history["kind"] == "memory" else "to"
    return [step[key] for step in history["steps"]]


def valid_at(history: History, moment: str | None) -> str | None:
    """The answer valid at `moment` (None: now), by the scripted step times."""
    if moment is None:
        return answers(history)[-1]
    at = parse_time(moment)
    found = None
    for step, answer in zip(history["steps"], answers(history), strict=True):
        if parse_time(step["at"]) <= at:
            found = answer
    return found


def value_of(history: History, expect: str) -> str:
    """The short value that tells `expect` apart from the history's other answers."""
    if history["kind"] == "relation":
        return expect
    return next(step["value"] for step in history["steps"] if step["text"] == expect)


def problems(histories: Sequence[History]) -> list[str]:
    """Everything wrong with the set's shape (an empty list when it is fine)."""
    found: list[str] = []
    ids: set[str] = set()
    subjects: dict[str, str] = {}
    for number, history in enumerate(histories, 1):
        name = str(history.get("id", f"line {number}"))
        if name in ids:
            found.append(f"{name}: id repeated")
        ids.add(name)
        if history.get("lang") not in ("en", "zh"):
            found.append(f"{name}: lang must be en or zh")
        kind = history.get("kind")
        if kind not in ("memory", "relation"):
            found.append(f"{name}: kind must be memory or relation")
            continue
        steps = history.get("steps") or []
        if len(steps) < 2:
            found.append(f"{name}: a history needs a fact and at least one change")
            continue
        times = [parse_time(step["at"]) for step in steps]
        if any(moment.tzinfo is None for moment in times) or times != sorted(set(times)):
            found.append(f"{name}: step times must be UTC and strictly increasing")
        if any(moment >= datetime.now(UTC) for moment in times):
            found.append(f"{name}: a step lies in the future")
        if kind == "memory":
            for index, step in enumerate(steps):
                if not str(step.get("text", "")).strip():
                    found.append(f"{name}: step {index} has no text")
                if step.get("supersedes") != (index - 1 if index else None):
                    found.append(f"{name}: step {index} must supersede step {index - 1 if index else None}")
                if step.get("value") not in step.get("text", ""):
                    found.append(f"{name}: step {index}'s value is not in its text")
            subject = ""
        else:
            subject = steps[0].get("from", "")
            for index, step in enumerate(steps):
                if not all(step.get(key) for key in ("from", "relationType", "to")):
                    found.append(f"{name}: step {index} needs from, relationType and to")
                if (step.get("from"), step.get("relationType")) != (subject, steps[0].get("relationType")):
                    found.append(f"{name}: every step must change the same (from, relationType)")
                if step.get("to") not in step.get("text", ""):
                    found.append(f"{name}: step {index}'s sentence does not name its target")
            if subject in subjects:
                found.append(f"{name}: entity {subject!r} already used by {subjects[subject]}")
            subjects[subject] = name
        values = answers(history)
        if any(a == b for a, b in itertools.pairwise(values)):
            found.append(f"{name}: a step repeats the one before it (not a change)")
        if kind == "memory" and len({step["value"] for step in steps}) != len(set(values)):
            found.append(f"{name}: step values must tell the steps apart")
        questions = history.get("questions") or []
        if not any(q.get("asOf") is None for q in questions) or all(q.get("asOf") is None for q in questions):
            found.append(f"{name}: needs a question about now and one about the past")
        for question in questions:
            if not str(question.get("q", "")).strip():
                found.append(f"{name}: a question has no text")
            if question.get("expect") not in values:
                found.append(f"{name}: expected answer {question.get('expect')!r} is not in the history")
            elif question.get("expect") != valid_at(history, question.get("asOf")):
                found.append(f"{name}: {question.get('expect')!r} was not valid at {question.get('asOf') or 'now'}")
    return found


def shape_counts(histories: Sequence[History]) -> str:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    questions: dict[str, int] = defaultdict(int)
    for history in histories:
        counts[(history["lang"], history["kind"])] += 1
        for question in history["questions"]:
            questions["now" if question["asOf"] is None else "as of"] += 1
    parts = ", ".join(f"{lang} {kind}: {n}" for (lang, kind), n in sorted(counts.items()))
    return f"{len(histories)} histories ({parts}); questions: {questions['now']} now, {questions['as of']} as of"


# --- the server ------------------------------------------------------------------------------------


class Rest:
    """A REST client with a key: post(path, body) -> the decoded answer; errors raise with the body."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base.rstrip("/"), key

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.base}{path}",
            data=json.dumps(body).encode(),
            headers={"X-API-Key": self.key, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{path} -> {error.code}: {error.read().decode(errors='replace')[:400]}") from None


@contextlib.contextmanager
def server(env: dict[str, str] | None = None) -> Iterator[Rest]:
    """A daphne server on a temporary database with a key granted write on every namespace."""
    from bench.mcp import Servers

    servers = Servers()
    try:
        servers.env.update(env or {})
        servers.prepare()
        servers.start_http()
        yield Rest(f"http://127.0.0.1:{servers.port}", servers.key)
    finally:
        servers.close()


# --- replay ----------------------------------------------------------------------------------------


@dataclass
class Replay:
    """One history replayed: its namespace, ids written, and the real instants around each step."""

    history: History
    namespace: str
    ids: list[str] = field(default_factory=list)
    before: list[datetime] = field(default_factory=list)
    after: list[datetime] = field(default_factory=list)

    def moment(self, scripted: str) -> str:
        """The replay instant standing for a scripted date between two steps: the first whole
        second after the earlier step was stored (before the later one began)."""
        at = parse_time(scripted)
        index = max(i for i, step in enumerate(self.history["steps"]) if parse_time(step["at"]) <= at)
        if index + 1 >= len(self.after):
            return _wire(datetime.now(UTC))
        instant = self.after[index].replace(microsecond=0) + timedelta(seconds=1)
        assert instant < self.before[index + 1], "steps too close: raise GAP_SECONDS"
        return _wire(instant)


def _wire(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def namespace_of(run: str, mode: str, history: History, shared: bool) -> str:
    place = history["lang"] if shared else history["id"]
    return f"temporal:{run}:{mode}:{place}"


def write_step(rest: Rest, mode: str, replay: Replay, index: int) -> None:
    history, step = replay.history, replay.history["steps"][index]
    namespace = replay.namespace
    if history["kind"] == "relation" and mode in ("baseline", "functional"):
        rest.post(
            "/v1/graph/create_entities",
            {
                "namespace": namespace,
                "entities": [
                    {"name": step["from"], "entityType": "subject", "observations": []},
                    {"name": step["to"], "entityType": "value", "observations": []},
                ],
            },
        )
        relation = {"from": step["from"], "to": step["to"], "relationType": step["relationType"]}
        rest.post("/v1/graph/create_relations", {"namespace": namespace, "relations": [relation]})
        return
    if mode == "baseline":
        replay.ids.append(rest.post("/v1/memory/write", {"namespace": namespace, "text": step["text"]})["id"])
    elif mode == "supersede":
        if index == 0:
            written = rest.post("/v1/memory/write", {"namespace": namespace, "text": step["text"], "dedupe": False})
        else:
            written = rest.post("/v1/memory/supersede", {"id": replay.ids[-1], "text": step["text"]})
        replay.ids.append(written["id"])
    elif mode == "dated":
        steps = history["steps"]
        body = {"namespace": namespace, "text": step["text"], "validFrom": step["at"], "dedupe": False}
        if index + 1 < len(steps):
            body["validTo"] = steps[index + 1]["at"]
        replay.ids.append(rest.post("/v1/memory/write", body)["id"])
    elif mode == "extraction":
        body = {"namespace": namespace, "text": step["text"], "validFrom": step["at"], "infer": True, "dedupe": False}
        replay.ids.append(rest.post("/v1/memory/write", body)["id"])
    else:
        raise ValueError(f"{mode} does not write {history['kind']} histories")


def replay_all(
    rest: Rest, mode: str, histories: Sequence[History], run: str, shared: bool, settle: float = 0
) -> list[Replay]:
    """Step 0 of every history, a pause, step 1 of every history, ... (the pauses are shared, so
    real-time modes take seconds, not minutes). In extraction mode the pause lasts until the
    extraction of the round's messages is done, as in a conversation where the next message comes
    after the last was understood."""
    replays = [Replay(h, namespace_of(run, mode, h, shared)) for h in histories if h["kind"] in KINDS[mode]]
    if mode == "functional":  # once per namespace and type (--shared puts several histories in one)
        for namespace, relation_type in dict.fromkeys(
            (r.namespace, r.history["steps"][0]["relationType"]) for r in replays if r.history["kind"] == "relation"
        ):
            body = {"namespace": namespace, "relationType": relation_type, "functional": True}
            rest.post("/v1/graph/declare_relation_type", body)
    longest = max((len(r.history["steps"]) for r in replays), default=0)
    for index in range(longest):
        if index and mode == "extraction":
            settle_extraction(rest, settle)
        if index:
            time.sleep(GAP_SECONDS)
        for replay in replays:
            if index < len(replay.history["steps"]):
                replay.before.append(datetime.now(UTC))
                write_step(rest, mode, replay, index)
                replay.after.append(datetime.now(UTC))
    return replays


@dataclass
class Outcome:
    history: History
    question: dict[str, Any]
    got: str | None
    right: bool


def ask(rest: Rest, mode: str, replay: Replay, question: dict[str, Any]) -> Outcome:
    history = replay.history
    scripted = question["asOf"]
    if mode == "baseline" or scripted is None:
        as_of = None  # baseline: a server without validity, every question is about what is stored
    elif mode in ("dated", "extraction"):
        as_of = scripted  # written with the scripted times as validFrom
    else:
        as_of = replay.moment(scripted)  # written in real time: the replay's instant for that date
    if history["kind"] == "relation" and mode != "extraction":
        body: dict[str, Any] = {"namespace": replay.namespace, "names": [history["steps"][0]["from"]]}
        if as_of is not None:
            body["asOf"] = as_of
        found = rest.post("/v1/graph/open_nodes", body)
        step = history["steps"][0]
        targets = sorted(
            {
                r["to"]
                for r in found["relations"]
                if r["from"] == step["from"] and r["relationType"] == step["relationType"]
            }
        )
        got = ", ".join(targets) or None
        return Outcome(history, question, got, targets == [question["expect"]])
    body = {"namespace": replay.namespace, "query": question["q"], "topK": TOP_K}
    if as_of is not None:
        body["asOf"] = as_of
    results = rest.post("/v1/memory/search", body)["results"]
    top = results[0]["text"] if results else None
    if mode == "extraction":
        wanted = value_of(history, question["expect"])
        others = {value_of(history, a) for a in answers(history)} - {wanted}
        right = top is not None and wanted in top and not any(other in top for other in others)
    else:
        right = top is not None and top.strip() == question["expect"].strip()
    return Outcome(history, question, top, right)


def _find(tree: Any, key: str) -> Any:
    """The value under `key` anywhere in a decoded JSON document (None when absent)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def settle_extraction(rest: Rest, timeout: float) -> None:
    """Wait until the extraction queue is empty (/healthz's extraction_backlog: nothing pending,
    twice in a row), at most `timeout` seconds."""
    deadline, empty = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{rest.base}/healthz", timeout=30) as response:
            backlog = _find(json.loads(response.read()), "extraction_backlog")
        if backlog is None:
            raise RuntimeError("/healthz reports no extraction_backlog: is extraction merged?")
        if backlog.get("failed"):
            print(f"  extraction: {backlog['failed']} messages failed", file=sys.stderr, flush=True)
        empty = empty + 1 if not backlog.get("pending") else 0
        if empty >= 2:
            return
        time.sleep(1)
    print(f"  extraction: still pending after {timeout:.0f} s", file=sys.stderr, flush=True)


def run_mode(
    rest: Rest, mode: str, histories: Sequence[History], run: str, *, shared: bool, settle: float
) -> list[Outcome]:
    replays = replay_all(rest, mode, histories, run, shared, settle)
    if mode == "extraction":
        settle_extraction(rest, settle)
    return [ask(rest, mode, replay, question) for replay in replays for question in replay.history["questions"]]


# --- the report ------------------------------------------------------------------------------------


def share(outcomes: Sequence[Outcome]) -> str:
    if not outcomes:
        return "-"
    right = sum(o.right for o in outcomes)
    return f"{right / len(outcomes):.3f} ({right}/{len(outcomes)})"


def table(results: dict[str, list[Outcome]]) -> None:
    print("| mode | kind | lang | now: top result current | as of: fact valid then |")
    print("|---|---|---|---|---|")
    for mode, outcomes in results.items():
        for kind in (*KINDS[mode], "all"):
            if kind == "all" and len(KINDS[mode]) == 1:
                continue
            for lang in ("en", "zh", "all"):
                chosen = [
                    o for o in outcomes if kind in ("all", o.history["kind"]) and lang in ("all", o.history["lang"])
                ]
                now = [o for o in chosen if o.question["asOf"] is None]
                past = [o for o in chosen if o.question["asOf"] is not None]
                print(f"| {mode} | {kind} | {lang} | {share(now)} | {share(past)} |")
    explicit = results.get("supersede", []) + results.get("functional", [])
    if "supersede" in results and "functional" in results:
        for lang in ("en", "zh", "all"):
            chosen = [o for o in explicit if lang in ("all", o.history["lang"])]
            now = [o for o in chosen if o.question["asOf"] is None]
            past = [o for o in chosen if o.question["asOf"] is not None]
            print(f"| supersede + functional | all | {lang} | {share(now)} | {share(past)} |")


def misses(results: dict[str, list[Outcome]]) -> None:
    for mode, outcomes in results.items():
        for o in outcomes:
            if not o.right:
                when = o.question["asOf"] or "now"
                print(
                    f"  miss [{mode}] {o.history['id']} {when}: {o.question['q']!r} -> {o.got!r}, wanted {o.question['expect']!r}"
                )


# --- the cost of asOf ------------------------------------------------------------------------------


def _as_of_keyword(function: Callable[..., Any]) -> str:
    """The keyword a read takes its asOf under (the operations' own name, whatever it is)."""
    names = inspect.signature(function).parameters
    for name in ("as_of", "asOf", "at", "moment", "when"):
        if name in names:
            return name
    raise SystemExit(f"{function.__qualname__} takes no asOf yet (merge the issue 19 branches first)")


def _timed(samples: list[float], function: Callable[[], Any]) -> None:
    started = time.perf_counter()
    function()
    samples.append((time.perf_counter() - started) * 1000)


def memory_cost(size: int, *, searches: int, batch: int) -> None:
    from django.db import transaction

    from access import namespaces
    from access.operations import get, perform
    from access.permissions import Access, Grant, Permission
    from bench.corpus import corpus, held_out
    from graph import validity
    from kernel.startup import freeze_heap
    from memory import operations
    from memory.services import NewMemory
    from vectors import backlog

    search = get(operations.SEARCH).function
    keyword = _as_of_keyword(search)  # before minutes of writing: stops here on a server without asOf
    access = Access(grants=(Grant("*", Permission.WRITE),), default_namespace="bench:time")
    space = "bench:time"
    texts = corpus(size)
    started = time.perf_counter()
    ids: list[int] = []
    for start in range(0, size, batch):
        written = perform(
            access,
            operations.WRITE,
            namespace=space,
            memories=[NewMemory(text=text) for text in texts[start : start + batch]],
            dedupe=False,
        )
        ids.extend(int(row["id"].removeprefix("mem_")) for row in written)
    backlog.drain()
    print(f"wrote {size:,} memories in {time.perf_counter() - started:.0f} s (embedded)", flush=True)
    time.sleep(1.1)
    before = _wire(datetime.now(UTC))  # every first version valid, none of the successors yet
    time.sleep(1.1)
    namespace_id = namespaces.lookup(space)
    started = time.perf_counter()
    for number, memory_id in enumerate(ids[::10]):
        with transaction.atomic():
            validity.supersede(
                memory_id, f"{texts[number * 10]} (revised)", namespace_ids=[namespace_id], free_only=True
            )
    backlog.drain()
    print(f"superseded {len(ids[::10]):,} of them in {time.perf_counter() - started:.0f} s", flush=True)

    # The reads compared must find something: asOf before the supersessions finds a superseded
    # memory's first version first, a current read its successor.
    probe = texts[0]
    then = perform(access, operations.SEARCH, namespace=space, query=probe, top_k=1, **{keyword: before})
    now = perform(access, operations.SEARCH, namespace=space, query=probe, top_k=1)
    print(f"check: asOf finds {then['results'][0]['text']!r}, current finds {now['results'][0]['text']!r}")
    queries = held_out(searches, set(texts[: min(size, 50_000)]))
    # As a server process does once started (kernel/startup.py): what is alive now is out of the
    # garbage collector's reach, so a read pays for what it allocates, not for the whole heap.
    freeze_heap()
    timings: dict[str, list[float]] = defaultdict(list)
    for round_, query in enumerate(queries):
        for mode in ("keyword", "hybrid"):
            # alternate which goes first, so caches warmed by one do not favour the other
            order = (None, before) if round_ % 2 == 0 else (before, None)
            for as_of in order:
                extra = {keyword: as_of} if as_of else {}
                label = f"{mode} search, {'asOf' if as_of else 'current'}"
                _timed(
                    timings[label],
                    lambda mode=mode, extra=extra, query=query: perform(
                        access, operations.SEARCH, namespace=space, query=query, top_k=10, mode=mode, **extra
                    ),
                )

    print_costs(timings, f"{size:,} memories (+{len(ids[::10]):,} successors), {searches} searches each")


def graph_cost(*, searches: int, entities: int) -> None:
    from django.db import transaction

    from access import namespaces
    from access.operations import get, perform
    from access.permissions import Access, Grant, Permission
    from bench.corpus import corpus
    from graph import validity
    from graph.operations import keyword_arguments
    from kernel.sql import db
    from kernel.startup import freeze_heap

    graph_keyword = next(iter(keyword_arguments({"asOf": None})))
    if graph_keyword not in inspect.signature(get("open_nodes").function).parameters:
        raise SystemExit("open_nodes takes no asOf yet (merge the issue 19 branches first)")
    access = Access(grants=(Grant("*", Permission.WRITE),), default_namespace="bench:time")
    size = entities * 5
    texts = corpus(size)
    timings: dict[str, list[float]] = defaultdict(list)
    graph_space = "bench:time:graph"
    for start in range(0, entities, 500):
        perform(
            access,
            "create_entities",
            namespace=graph_space,
            entities=[
                {"name": f"e{i}", "entityType": "thing", "observations": texts[(i * 5) % size : (i * 5) % size + 5]}
                for i in range(start, min(entities, start + 500))
            ],
        )
        perform(
            access,
            "create_relations",
            namespace=graph_space,
            relations=[
                {"from": f"e{i}", "to": f"e{(i + 1) % entities}", "relationType": "next"}
                for i in range(start, min(entities, start + 500))
            ],
        )
    time.sleep(1.1)
    graph_before = _wire(datetime.now(UTC))
    time.sleep(1.1)
    graph_ns = namespaces.lookup(graph_space)
    relation_ids = [
        row[0] for row in db().execute("SELECT id FROM graph_relation WHERE namespace_id = ? ORDER BY id", (graph_ns,))
    ]
    observation_ids = [
        row[0]
        for row in db().execute(
            "SELECT id FROM graph_observation WHERE namespace_id = ? AND entity_id IS NOT NULL ORDER BY id", (graph_ns,)
        )
    ]
    with transaction.atomic():
        validity.close("graph_relation", relation_ids[::10])
        validity.close("graph_observation", observation_ids[::10])
    # e0 -> e1 was closed (the first relation), e1 -> e2 was not: asOf shows both of e1, current one
    then = perform(
        access, "open_nodes", namespace=graph_space, names=["e1"], **keyword_arguments({"asOf": graph_before})
    )
    now = perform(access, "open_nodes", namespace=graph_space, names=["e1"])
    shown = [(len(page["relations"]), len(page["entities"][0]["observations"])) for page in (then, now)]
    print(
        f"check: e1 asOf shows {shown[0][0]} relations, {shown[0][1]} observations; current {shown[1][0]}, {shown[1][1]}"
    )
    freeze_heap()  # as in memory_cost
    for round_ in range(searches):
        names = [f"e{(round_ * 37 + j * 101) % entities}" for j in range(10)]
        for as_of in (None, graph_before) if round_ % 2 == 0 else (graph_before, None):
            extra = keyword_arguments({"asOf": as_of}) if as_of else {}
            state = "asOf" if as_of else "current"
            _timed(
                timings[f"open_nodes 10 names, {state}"],
                lambda names=names, extra=extra: perform(
                    access, "open_nodes", namespace=graph_space, names=names, **extra
                ),
            )
            _timed(
                timings[f"read_graph first page, {state}"],
                lambda extra=extra: perform(access, "read_graph", namespace=graph_space, **extra),
            )
    print_costs(timings, f"graph of {entities:,} entities x 5 observations, a relation each, {searches} reads each")


def print_costs(timings: dict[str, list[float]], title: str) -> None:
    print(f"\n{title}")
    print("| read | p50 ms | p95 ms | asOf / current (p50) |\n|---|---|---|---|")
    for label, samples in timings.items():
        ratio = ""
        if label.endswith("asOf"):
            base = timings[label.replace("asOf", "current")]
            ratio = f"{median(samples) / median(base):.2f}x"
        print(f"| {label} | {median(samples):.2f} | {p95(samples):.2f} | {ratio} |")


# --- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=SET, help="the histories (JSON lines)")
    parser.add_argument("--check", action="store_true", help="check the set's shape and print its counts, then stop")
    parser.add_argument(
        "--modes", default="baseline,supersede,dated,functional", help=f"comma-separated: {', '.join(MODES)}"
    )
    parser.add_argument("--shared", action="store_true", help="one namespace per language instead of one per history")
    parser.add_argument("--server", help="base URL of a running server (default: start one on a temporary database)")
    parser.add_argument("--key", help="an API key with write on temporal:* (with --server)")
    parser.add_argument("--settle", type=float, default=600, help="extraction: seconds to wait at most (default 600)")
    parser.add_argument("--misses", action="store_true", help="list every question answered wrong")
    parser.add_argument(
        "--cost", type=int, default=0, metavar="N", help="time asOf vs current reads at N memories instead"
    )
    parser.add_argument("--searches", type=int, default=200, help="reads timed per kind in --cost (default 200)")
    parser.add_argument(
        "--graph-entities", type=int, default=20_000, help="entities in --cost, 5 observations each (default 20,000)"
    )
    parser.add_argument(
        "--cost-parts", default="memory,graph", help="--cost: memory search, graph reads, or both (default)"
    )
    parser.add_argument("--batch", type=int, default=1000, help="memories per write call in --cost")
    options = parser.parse_args(argv)

    if options.cost:
        from bench.setup import django_on

        os.environ.setdefault("MEMORYHUB_RATE_LIMIT_PER_MINUTE", "0")
        if "memory" not in options.cost_parts:
            os.environ["MEMORYHUB_EMBED_ON_WRITE"] = "false"  # graph reads read no vectors
        with django_on(None, prefix="memoryhub-bench-temporal-"):
            if "memory" in options.cost_parts:
                memory_cost(options.cost, searches=options.searches, batch=options.batch)
            if "graph" in options.cost_parts:
                graph_cost(searches=options.searches, entities=options.graph_entities)
        return

    histories = load(options.set)
    wrong = problems(histories)
    print(shape_counts(histories))
    for problem in wrong:
        print(f"PROBLEM {problem}")
    if wrong:
        raise SystemExit(1)
    if options.check:
        return
    modes = [mode for mode in options.modes.split(",") if mode]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    run = uuid.uuid4().hex[:8]
    results: dict[str, list[Outcome]] = {}
    plain = [mode for mode in modes if mode != "extraction"]
    if plain:
        with contextlib.ExitStack() as stack:
            rest = Rest(options.server, options.key or "") if options.server else stack.enter_context(server())
            for mode in plain:
                started = time.perf_counter()
                results[mode] = run_mode(rest, mode, histories, run, shared=options.shared, settle=options.settle)
                print(f"  {mode}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if "extraction" in modes:
        from bench.llm_standin import serve  # type: ignore[import-not-found,unused-ignore]

        with serve() as url, server({"MEMORYHUB_LLM_URL": url, "MEMORYHUB_LLM_MODEL": "standin"}) as rest:
            results["extraction"] = run_mode(
                rest, "extraction", histories, run, shared=options.shared, settle=options.settle
            )
    print(
        f"\nnamespaces: {'one per language' if options.shared else 'one per history'}, top {TOP_K}, first result judged"
    )
    table(results)
    if options.misses:
        misses(results)


if __name__ == "__main__":
    main()
