"""Extraction: the facts of a message, written as memories behind it, by the configured model.

A write with `infer: true` (add_memory, /v1/memory/write, add_message, /product/add) stores each
message as a memory, as every write does, and in the same transaction queues a job per message
(`enqueue`; the queue is memory.models.PendingExtraction). The answer says `"inferred": "queued"`;
without a model configured (MEMORYHUB_LLM_URL and MEMORYHUB_LLM_MODEL) it says `"disabled"` and
nothing is queued. Without `infer` nothing here runs, ever.

A job is worked on behind the write (`drain`), in three steps:

1. ask the model for the message's atomic facts (the prompt memory/prompts/extract.md, JSON with a
   schema in the request); the facts are kept on the job, so a retry does not ask again;
2. find the nearest current memories of the message's namespace and actor for each fact (the
   hybrid search every surface uses, memory.selectors), leaving out the message itself and what
   became valid after it was said; when there are none, every fact is added without a second call;
3. ask the model what to do with each fact (memory/prompts/decide.md) and apply its decisions in
   one transaction, with the job's removal: ADD writes a memory, UPDATE supersedes the memory it
   names (graph.validity.supersede: the old one closes, kept as past), INVALIDATE closes it (never
   deletes), NOOP notes a mention of the memory that already says it. Every extracted memory
   carries `source_id` (the message) and `extracted_by` (the model); the versions of every change
   name the operation `memory_extract` and the key and user that wrote the message.

What a model answers is checked, not trusted: an answer that is not JSON or not of the shape asked
for fails the attempt (logged, the job kept); a decision naming a memory the model was not shown,
or one that changed meanwhile, is skipped and logged. A failing, slow (MEMORYHUB_LLM_TIMEOUT_SECONDS)
or malformed answer is retried later with backoff (2^attempts seconds, at most
MEMORYHUB_EXTRACTION_RETRY_MAX_SECONDS) and after MEMORYHUB_EXTRACTION_MAX_ATTEMPTS kept as failed
with its last error, for an operator to retry (admin, `manage.py drain_extractions --retry-failed`).
The message itself is never touched by a failure.

Jobs of one namespace are worked on in the order their messages were written (a job waits while an
older one of its namespace is open), so "Dana's lead is Priya" is decided before "... is Marco".
Who drains: a thread of every server process (MEMORYHUB_EXTRACTION_WORKER=thread: the work is
waiting on the model, not the CPU), Celery workers when a broker is configured, and
`manage.py drain_extractions`. Leases (`claimed_until`) keep two of them off one job; a process
killed mid-job leaves its lease to run out, and the job is done again from the start (its
decisions are applied only together with the job's removal, so none is applied twice).
"""

from __future__ import annotations

import atexit
import datetime
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from access import changes, namespaces
from graph import dedupe as dedupe_rules
from graph import limits as store_limits
from graph import observations, validity
from graph import services as graph_services
from graph.sql import as_json, db, now
from kernel import metrics
from kernel.errors import DomainError, InvalidArgument
from kernel.metrics import Exposition
from kernel.sql import POSTGRES, in_json, iso, json_values, stored_time
from kernel.task_queue import DrainLoop
from memory import dedupe as judging
from memory import llm, selectors
from memory.llm import ChatClient, Malformed
from memory.wire import memory_id, parse_memory_id, stored
from vectors.embedding import embedded_ahead

logger = logging.getLogger(__name__)

# What a write's answer says of `infer`.
QUEUED = "queued"
DISABLED = "disabled"
# The operation the versions of extracted changes name.
OPERATION = "memory_extract"
EVENTS = ("ADD", "UPDATE", "INVALIDATE", "NOOP")
# Other names models use for the same events (mem0's vocabulary among them): a DELETE is applied
# as INVALIDATE, since nothing is deleted on a model's word.
SYNONYMS = {"DELETE": "INVALIDATE", "REMOVE": "INVALIDATE", "CLOSE": "INVALIDATE", "NONE": "NOOP", "KEEP": "NOOP"}
PROMPTS = Path(__file__).resolve().parent / "prompts"
MAX_ERROR_LENGTH = 500
# A claim lasts the two calls' timeouts plus this margin for the search and the writes.
LEASE_MARGIN_SECONDS = 60


# --- the write side: what `infer` answers, and queueing -------------------------------------------


def requested(infer: Any) -> str | None:
    """What a write with this `infer` answers: None (not asked: nothing to say), "queued" (its
    messages will be extracted) or "disabled" (no model is configured). InvalidArgument unless a
    boolean or None."""
    if infer is None or infer is False:
        return None
    if infer is not True:
        raise InvalidArgument("infer must be true or false", field="infer")
    return QUEUED if llm.enabled() else DISABLED


_after_queued: list[Callable[[], object]] = []


def after_queued(hook: Callable[[], object]) -> None:
    """Have `hook` run after every commit that queued jobs (MemoryConfig.ready: wake this
    process's worker; queue a Celery drain when a broker is configured)."""
    if hook not in _after_queued:
        _after_queued.append(hook)


def _run_after_commit() -> None:
    for hook in _after_queued:
        hook()


# PostgreSQL types the select list from its parameters and JSON values, so they are cast to the
# columns' types there.
_ENQUEUE = (
    "INSERT INTO memory_pendingextraction(source_id, namespace_id, said_at, key_id, key_prefix, user_id, "
    "enqueued_at, attempts, next_attempt_at, claimed_until, last_error, facts, failed_at) "
    + (
        "SELECT CAST(value ->> 0 AS bigint), CAST(?1 AS bigint), CAST(value ->> 1 AS timestamptz), "
        "CAST(?2 AS bigint), ?3, CAST(?4 AS bigint), CAST(?5 AS timestamptz), 0, NULL, NULL, '', '', NULL "
        "FROM jsonb_array_elements(CAST(?6 AS jsonb)) AS value"
        if POSTGRES
        else "SELECT value ->> 0, ?1, value ->> 1, ?2, ?3, ?4, ?5, 0, NULL, NULL, '', '', NULL FROM json_each(?6)"
    )
)


def enqueue(namespace_id: int, messages: Sequence[tuple[int, str | None]]) -> None:
    """Queue these messages (free memories of one namespace: (id, when it was said, as stored, or
    None for its validity start)) for extraction, in the caller's transaction, one statement. The
    caller of the change under way (access.changes) is kept on each job for the versions of what
    its extraction changes."""
    if not messages:
        return
    change = changes.current()
    db().execute(
        _ENQUEUE,
        (
            namespace_id,
            change.key_id,
            change.key_prefix or "",
            change.user_id,
            now(),
            as_json([list(m) for m in messages]),
        ),
    )
    transaction.on_commit(_run_after_commit)


# --- prompts --------------------------------------------------------------------------------------


def prompt(name: str) -> str:
    """The text of prompt `name` (extract or decide): MEMORYHUB_EXTRACTION_PROMPT_DIR/<name>.md
    when that file exists, else the shipped memory/prompts/<name>.md. Read at every job, so an
    operator's edit applies without a restart."""
    folder = settings.MEMORYHUB_EXTRACTION_PROMPT_DIR
    if folder:
        custom = Path(folder) / f"{name}.md"
        if custom.is_file():
            return custom.read_text(encoding="utf-8")
    return (PROMPTS / f"{name}.md").read_text(encoding="utf-8")


def render(template: str, values: dict[str, str]) -> str:
    """`template` with each {{name}} replaced by its value (one pass: a value holding {{...}} is
    not expanded again). Unknown placeholders are left as they are."""
    out = template
    marks = {f"{{{{{name}}}}}": f"\x00{index}\x00" for index, name in enumerate(values)}
    for mark, token in marks.items():
        out = out.replace(mark, token)
    for index, value in enumerate(values.values()):
        out = out.replace(f"\x00{index}\x00", value)
    return out


SYSTEM = "You turn conversation messages into facts for a long-term memory. Answer with JSON only."

FACTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"facts": {"type": "array", "items": {"type": "string"}}},
    "required": ["facts"],
    "additionalProperties": False,
}
DECISIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decisions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "event": {"type": "string", "enum": list(EVENTS)},
                    "fact": {"type": "string"},
                    "id": {"type": "string"},
                },
                # Strict structured outputs need every property listed; "" where one does not apply.
                "required": ["event", "fact", "id"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["decisions"],
    "additionalProperties": False,
}


def parse_facts(value: Any) -> list[str]:
    """The facts of the first call's answer: {"facts": [...]} (a bare list is taken too; items may
    be strings or {"fact": ...}). Blank ones are dropped, repeats kept once, at most
    MEMORYHUB_EXTRACTION_MAX_FACTS. Malformed otherwise."""
    items = value.get("facts") if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise Malformed(f'expected {{"facts": [...]}}, got {json.dumps(value, ensure_ascii=False)[:200]}')
    facts: list[str] = []
    for item in items:
        text = item.get("fact", item.get("text")) if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise Malformed(f"a fact must be a string, got {json.dumps(item, ensure_ascii=False)[:200]}")
        if text.strip() and text.strip() not in facts:
            facts.append(text.strip())
    return facts[: settings.MEMORYHUB_EXTRACTION_MAX_FACTS]


@dataclass(frozen=True)
class Decision:
    event: str
    fact: str
    id: str


def parse_decisions(value: Any) -> list[Decision]:
    """The decisions of the second call's answer: {"decisions": [{"event", "fact", "id"}]} (a bare
    list is taken too). Malformed when it is not a list of objects; an object without a known
    event is kept with event "" (skipped and logged when applied)."""
    items = value.get("decisions") if isinstance(value, dict) else value
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise Malformed(f'expected {{"decisions": [...]}}, got {json.dumps(value, ensure_ascii=False)[:200]}')
    found = []
    for item in items:
        event = str(item.get("event") or item.get("decision") or "").strip().upper()
        event = SYNONYMS.get(event, event)
        fact = item.get("fact", item.get("text"))
        ident = item.get("id")
        found.append(
            Decision(
                event if event in EVENTS else "",
                fact.strip() if isinstance(fact, str) else "",
                str(ident).strip() if isinstance(ident, str | int) and not isinstance(ident, bool) else "",
            )
        )
    return found


# --- one job --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    id: int
    source_id: int
    namespace_id: int
    said_at: str | None
    key_id: int | None
    key_prefix: str
    user_id: int | None
    attempts: int
    facts: str
    # The claim this worker holds (claimed_until as stored): writes check it is still theirs.
    lease: str


def _lease_seconds() -> int:
    configured = int(settings.MEMORYHUB_EXTRACTION_LEASE_SECONDS)
    return configured or 2 * int(settings.MEMORYHUB_LLM_TIMEOUT_SECONDS) + LEASE_MARGIN_SECONDS


_IDS_4 = json_values("?4")
# SQLite: BEGIN IMMEDIATE makes a claim one writer's at a time. PostgreSQL runs claims side by
# side: a second claimer would wait for the first's row lock, then recheck only `id = (...)` and
# claim the same job, so the subquery locks the job it picks and skips one another claim holds
# (the older-job-of-the-namespace check still sees a locked job, so order per namespace holds).
_SKIP_LOCKED = " FOR UPDATE OF p SKIP LOCKED" if POSTGRES else ""


def _claim(*, ignore_backoff: bool = False, tried: Sequence[int] = ()) -> Job | None:
    """Lease the oldest due job whose namespace has no older open job, or None; not one of
    `tried` (a drain attempts each job once, whatever `ignore_backoff`)."""
    moment = timezone.now()
    until = stored_time(moment + datetime.timedelta(seconds=_lease_seconds()))
    stamp = stored_time(moment)
    with transaction.atomic():
        row = (
            db()
            .execute(
                "UPDATE memory_pendingextraction SET claimed_until = ?1 WHERE id = (SELECT p.id FROM "
                "memory_pendingextraction p WHERE p.failed_at IS NULL "
                "AND (p.claimed_until IS NULL OR p.claimed_until < ?2) "
                "AND (?3 OR p.next_attempt_at IS NULL OR p.next_attempt_at <= ?2) "
                f"AND p.id NOT IN {_IDS_4} "
                "AND NOT EXISTS (SELECT 1 FROM memory_pendingextraction q WHERE q.namespace_id = p.namespace_id "
                f"AND q.id < p.id AND q.failed_at IS NULL) ORDER BY p.id LIMIT 1{_SKIP_LOCKED}) "
                "RETURNING id, source_id, namespace_id, said_at, key_id, key_prefix, user_id, attempts, facts, "
                "claimed_until",
                (until, stamp, ignore_backoff, as_json(list(tried))),
            )
            .fetchone()
        )
    if row is None:
        return None
    ident, source, namespace, said, key_id, key_prefix, user_id, attempts, facts, lease = row
    return Job(ident, source, namespace, stored(said), key_id, key_prefix, user_id, attempts, facts, stored(lease))


# The condition of a write to a job this worker claimed (its id and lease).
OURS = "id = ? AND claimed_until = ?"


def _save_facts(job: Job, facts: list[str]) -> None:
    with transaction.atomic():
        db().execute(
            f"UPDATE memory_pendingextraction SET facts = ? WHERE {OURS}",
            (as_json(facts), job.id, job.lease),
        )


def _release(job: Job) -> bool:
    """Delete the job if this worker still holds it (inside the transaction that applies it)."""
    row = (
        db().execute(f"DELETE FROM memory_pendingextraction WHERE {OURS} RETURNING id", (job.id, job.lease)).fetchone()
    )
    return row is not None


def _failed(job: Job, error: BaseException) -> None:
    """Count an attempt, push the next one back, keep the error; after the last attempt keep the
    job as failed. The message is not touched."""
    message = (str(error) or type(error).__name__)[:MAX_ERROR_LENGTH]
    attempts = job.attempts + 1
    moment = timezone.now()
    wait = min(settings.MEMORYHUB_EXTRACTION_RETRY_MAX_SECONDS, 2 ** min(attempts, 20))
    final = attempts >= settings.MEMORYHUB_EXTRACTION_MAX_ATTEMPTS
    with transaction.atomic():
        db().execute(
            "UPDATE memory_pendingextraction SET attempts = ?, last_error = ?, claimed_until = NULL, "
            f"next_attempt_at = ?, failed_at = ? WHERE {OURS}",
            (
                attempts,
                message,
                stored_time(moment + datetime.timedelta(seconds=wait)),
                stored_time(moment) if final else None,
                job.id,
                job.lease,
            ),
        )
    if final:
        logger.error(
            "extraction of mem_%d failed %d times; kept as failed (the message is kept): %s",
            job.source_id,
            attempts,
            message,
        )
    else:
        logger.warning(
            "extraction of mem_%d failed (attempt %d, retried in %d s): %s", job.source_id, attempts, wait, message
        )


@dataclass(frozen=True)
class Message:
    id: int
    text: str
    namespace_id: int
    namespace: str
    actor: str
    role: str
    start: str  # when it was said (its validity start), as stored


def _message(job: Job) -> Message | None:
    """The job's message, if it is still a free memory of its namespace."""
    row = observations.rows([job.source_id]).get(job.source_id)
    if row is None or row.namespace_id != job.namespace_id or row.entity_name is not None:
        return None
    name = namespaces.names([row.namespace_id]).get(row.namespace_id)
    if name is None:
        return None
    role = next((tag.removeprefix("role:") for tag in row.tags if tag.startswith("role:")), "user")
    start = job.said_at or validity.starts([row.id]).get(row.id) or stored(row.created_at)
    return Message(row.id, row.body, row.namespace_id, name, row.actor_id, role, start)


@dataclass(frozen=True)
class Candidate:
    id: int
    text: str
    start: str


def _candidates(message: Message, facts: list[str]) -> dict[int, Candidate]:
    """The current memories of the message's namespace and actor nearest to each fact: the best of
    the hybrid search, and the best by keyword (a subject's name weighs little against the rest of
    a sentence in meaning: "Person7 lives in Paris" is nearer "Person77 lives in Paris" than
    "Person7 lives in Rome"), without the message itself and what became valid after it was said
    (a later fact is not the message's to replace)."""
    found: dict[int, str] = {}
    spaces = {message.namespace_id: message.namespace}
    for fact in facts:
        arguments: dict[str, Any] = {
            "namespaces": spaces,
            "query": fact,
            "actor_id": message.actor,
            "top_k": settings.MEMORYHUB_EXTRACTION_CANDIDATES,
            "memories_only": True,
        }
        hits = selectors.search_memories(**arguments, mode="keyword")["results"]
        try:
            hits = selectors.search_memories(**arguments)["results"] + hits
        except DomainError:
            logger.warning("extraction: the hybrid search failed; candidates by keyword only", exc_info=True)
        for hit in hits:
            ident = parse_memory_id(hit["id"])
            if ident != message.id:
                found.setdefault(ident, hit["text"])
    current = validity.valid_ids(validity.OBSERVATIONS, list(found), validity.CURRENT)
    starts = validity.starts(sorted(current))
    return {
        ident: Candidate(ident, text, starts[ident])
        for ident, text in found.items()
        if ident in current and ident in starts and starts[ident] <= message.start
    }


def _user_prompt(name: str, message: Message, **values: str) -> list[dict[str, str]]:
    text = render(
        prompt(name),
        {
            "message": message.text,
            "role": message.role,
            "actor": message.actor,
            "time": iso(message.start) or "",
            **values,
        },
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def extract_facts(client: ChatClient, message: Message) -> list[str]:
    facts, _, _ = client.ask(
        "extract",
        _user_prompt("extract", message),
        schema_name="memoryhub_facts",
        schema=FACTS_SCHEMA,
        parse=parse_facts,
    )
    return facts


def decide(client: ChatClient, message: Message, facts: list[str], candidates: dict[int, Candidate]) -> list[Decision]:
    held = [{"id": memory_id(c.id), "text": c.text} for c in candidates.values()]
    decisions, _, _ = client.ask(
        "decide",
        _user_prompt(
            "decide",
            message,
            facts=json.dumps(facts, ensure_ascii=False, indent=1),
            memories=json.dumps(held, ensure_ascii=False, indent=1),
        ),
        schema_name="memoryhub_decisions",
        schema=DECISIONS_SCHEMA,
        parse=parse_decisions,
    )
    return decisions


def _target(decision: Decision, candidates: dict[int, Candidate]) -> Candidate | None:
    text = decision.id.removeprefix("mem_")
    return candidates.get(int(text)) if text.isdigit() else None


def _apply(job: Job, message: Message, decisions: list[Decision], candidates: dict[int, Candidate], model: str) -> bool:
    """Apply the decisions and remove the job, in one transaction, as one change; False when the
    job is no longer this worker's (nothing applied). Decisions that cannot be applied are
    skipped and logged."""
    counts = dict.fromkeys(("add", "update", "invalidate", "noop", "skipped"), 0)

    def skip(decision: Decision, why: str) -> None:
        counts["skipped"] += 1
        logger.warning("extraction of mem_%d: skipped %s (%s)", message.id, decision, why)

    # In inline embedding mode the texts are embedded before the write lock is taken, as every write does.
    texts = [d.fact for d in decisions if d.event in ("ADD", "UPDATE") and d.fact]
    with (
        embedded_ahead(texts),
        changes.changing(
            OPERATION, surface="system", key_id=job.key_id, key_prefix=job.key_prefix or None, user_id=job.user_id
        ),
        transaction.atomic(),
    ):
        if not _release(job):
            return False
        added: list[graph_services.MemoryInput] = []
        keys: set[str] = set()
        for decision in decisions:
            target = _target(decision, candidates)
            if decision.event in ("ADD", "UPDATE"):
                try:
                    text = store_limits.observation(decision.fact, field="fact") if decision.fact else ""
                except InvalidArgument as error:
                    skip(decision, error.message)
                    continue
                if not text:
                    skip(decision, "no fact given")
                    continue
            if decision.event == "ADD":
                key = judging.key_of(text)
                if key in keys:
                    continue  # the same fact twice in one answer
                keys.add(key)
                added.append(
                    {
                        "body": text,
                        "actor_id": message.actor,
                        "tags": [],
                        "expires_at": None,
                        "dedupe_key": key,
                        "valid_from": message.start,
                        "source_id": message.id,
                        "extracted_by": model,
                    }
                )
            elif decision.event in ("UPDATE", "INVALIDATE", "NOOP") and target is None:
                if decision.event == "NOOP":
                    counts["noop"] += 1  # nothing named: nothing to note
                else:
                    skip(decision, "it names no memory the model was shown")
            elif decision.event == "UPDATE" and target is not None:
                try:
                    validity.supersede(
                        target.id,
                        text,
                        namespace_ids=[message.namespace_id],
                        free_only=True,
                        at=_closing_time(message, target),
                        dedupe_key=judging.key_of(text),
                        source_id=message.id,
                        extracted_by=model,
                    )
                except DomainError as error:  # superseded or deleted since it was shown
                    skip(decision, error.message)
                    continue
                counts["update"] += 1
            elif decision.event == "INVALIDATE" and target is not None:
                if validity.close(validity.OBSERVATIONS, [target.id], at=_closing_time(message, target)):
                    counts["invalidate"] += 1
                else:
                    skip(decision, f"{memory_id(target.id)} is no longer current")
            elif decision.event == "NOOP" and target is not None:
                dedupe_rules.note_mentions(message.namespace_id, {target.id: 1})
                counts["noop"] += 1
            else:
                skip(decision, "unknown event")
        if added:
            graph_services.insert_memories(namespace=message.namespace, memories=added)
            counts["add"] += len(added)
    for kind, count in counts.items():
        if count:
            metrics.observe_extraction_decisions(kind, count)
    logger.info("extraction of mem_%d by %s: %s", message.id, model, counts)
    return True


def _closing_time(message: Message, target: Candidate) -> str:
    """When the fact `target` stops holding: when the message was said, unless that is not after
    the target began (messages stored out of order): then now, so the old fact keeps its span."""
    return message.start if message.start > target.start else now()


def process(job: Job, client: ChatClient | None = None) -> bool:
    """Work on one claimed job; True when it was applied (or had nothing to do), False when it
    failed (and was rescheduled or kept as failed)."""
    client = client or ChatClient.from_settings()
    try:
        message = _message(job)
        if message is None:  # deleted (or purged) since it was written: nothing to extract from
            with transaction.atomic():
                _release(job)
            return True
        if job.facts:
            facts = parse_facts(json.loads(job.facts))
        else:
            facts = extract_facts(client, message)
            _save_facts(job, facts)
        candidates = _candidates(message, facts) if facts else {}
        if candidates:
            decisions = decide(client, message, facts, candidates)
        else:
            # Nothing held is near: every fact is new, and asking the model would only cost.
            decisions = [Decision("ADD", fact, "") for fact in facts]
        _apply(job, message, decisions, candidates, client.model)
    except Exception as error:  # a model, search or database failure: the job waits for its retry
        if not isinstance(error, DomainError):
            logger.exception("extraction of mem_%d crashed", job.source_id)
        _failed(job, error)
        return False
    return True


def drain(*, stop: threading.Event | None = None, ignore_backoff: bool = False, limit: int | None = None) -> int:
    """Work on due jobs until none is left (or `stop` is set, or `limit` jobs were worked on);
    return how many were worked on. Nothing when no model is configured (the jobs wait for one).
    `ignore_backoff` takes jobs waiting out a backoff too (not failed ones). Each job is attempted
    at most once per call."""
    if not llm.enabled():
        return 0
    client = ChatClient.from_settings()
    tried: list[int] = []
    while (stop is None or not stop.is_set()) and (limit is None or len(tried) < limit):
        job = _claim(ignore_backoff=ignore_backoff, tried=tried)
        if job is None:
            break
        tried.append(job.id)
        process(job, client)
    return len(tried)


def retry(*, ids: Sequence[int] | None = None, failed: bool = True) -> int:
    """End the backoff and the claim of these jobs (by row id; None: all), giving failed ones
    (with `failed`) their attempts back; wake the drainer. Returns how many jobs."""
    condition = "true" if ids is None else f"id {in_json()}"
    scope = "" if failed else " AND failed_at IS NULL"
    with transaction.atomic():
        changed = (
            db()
            .execute(
                "UPDATE memory_pendingextraction SET next_attempt_at = NULL, claimed_until = NULL, failed_at = NULL, "
                f"attempts = CASE WHEN failed_at IS NULL THEN attempts ELSE 0 END WHERE {condition}{scope}",
                () if ids is None else (as_json(list(ids)),),
            )
            .rowcount
        )
        transaction.on_commit(_run_after_commit)
    return int(changed)


# --- what is queued (health, metrics, admin) ------------------------------------------------------


@dataclass(frozen=True)
class QueueState:
    pending: int  # jobs still to do (failed ones not counted)
    failing: int  # of those, whose last attempt failed
    failed: int  # kept as failed: out of attempts
    oldest_age_seconds: float  # since the oldest pending job was queued
    last_error: str


def state() -> QueueState:
    pending, failing, failed, oldest = (
        db()
        .execute(
            "SELECT count(*) FILTER (WHERE failed_at IS NULL), count(*) FILTER (WHERE failed_at IS NULL AND attempts > 0), "
            "count(*) FILTER (WHERE failed_at IS NOT NULL), min(enqueued_at) FILTER (WHERE failed_at IS NULL) "
            "FROM memory_pendingextraction"
        )
        .fetchone()
    )
    error = ""
    if failing or failed:
        row = (
            db()
            .execute("SELECT last_error FROM memory_pendingextraction WHERE attempts > 0 ORDER BY id DESC LIMIT 1")
            .fetchone()
        )
        error = row[0] if row else ""
    age = 0.0
    parsed = parse_datetime(str(oldest)) if oldest else None
    if parsed is not None:
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, datetime.UTC)
        age = max((timezone.now() - parsed).total_seconds(), 0.0)
    return QueueState(int(pending), int(failing or 0), int(failed or 0), round(age, 3), error)


def health() -> dict[str, Any]:
    """The /healthz report: whether extraction is on, and the queue. Always ok: a model that is
    down delays facts, it loses nothing (alert on memoryhub_extraction_backlog_oldest_seconds).
    The model's error is in the admin, not here (/healthz is public)."""
    queue = state()
    return {
        "ok": True,
        "enabled": llm.enabled(),
        "pending": queue.pending,
        "failing": queue.failing,
        "failed": queue.failed,
        "oldest_seconds": queue.oldest_age_seconds,
    }


def scrape(out: Exposition) -> None:
    """The queue's gauges in /metrics (the calls, tokens and decisions are kernel.metrics counters)."""
    try:
        queue = state()
    except Exception:  # a locked or missing table is a scrape without these families, not a failure
        return
    out.sample(
        out.family("extraction_backlog_jobs", "gauge", "Messages waiting for extraction (all processes)."),
        queue.pending,
    )
    out.sample(
        out.family(
            "extraction_backlog_failing_jobs", "gauge", "Waiting messages whose last extraction attempt failed."
        ),
        queue.failing,
    )
    out.sample(
        out.family("extraction_failed_jobs", "gauge", "Messages whose extraction ran out of attempts (kept)."),
        queue.failed,
    )
    out.sample(
        out.family("extraction_backlog_oldest_seconds", "gauge", "Age of the oldest message waiting (0: none)."),
        queue.oldest_age_seconds,
    )


# --- the worker of a server process ---------------------------------------------------------------


class Worker:
    """Drains in a thread of the server process: at once when woken (a local write queued jobs),
    else every MEMORYHUB_EXTRACTION_POLL_MS (other processes' jobs, backoffs that ended)."""

    def __init__(self) -> None:
        self.loop = DrainLoop(
            lambda stop: drain(stop=stop),
            poll_seconds=settings.MEMORYHUB_EXTRACTION_POLL_MS / 1000,
            what="extraction",
        )
        self.thread = threading.Thread(target=self.loop.run, name="memoryhub-extraction", daemon=True)
        self.thread.start()

    def wake(self) -> None:
        self.loop.wake()

    def close(self) -> None:
        self.loop.close()
        self.thread.join(timeout=10)


_worker: Worker | None = None
_worker_lock = threading.Lock()


def start_in_background() -> Worker | None:
    """Start this server process's worker (once; kernel.startup.on_server_start), when a model is
    configured and MEMORYHUB_EXTRACTION_WORKER is "thread"."""
    global _worker
    if not llm.enabled() or settings.MEMORYHUB_EXTRACTION_WORKER != "thread":
        return None
    with _worker_lock:
        if _worker is None:
            _worker = Worker()
            atexit.register(_worker.close)
        return _worker


def wake() -> None:
    """Have this process's worker (if it runs one) look at the queue now."""
    if _worker is not None:
        _worker.wake()
