"""Crash test: SIGKILL the server while clients write, restart it, and check what survived.

    python -m bench.crash --rounds 50 --durability sync
    python -m bench.crash --rounds 50 --durability async

Each round starts daphne on the same database file, runs writer threads that send writes over
HTTP (REST `/v1/graph/create_entities`, `add_observations`, `create_relations` and
`/v1/memory/write`), each carrying a unique keyword, and kills the server with SIGKILL after a
random delay. The server is then started again on the file and the round checks:

- every write the server acknowledged (a 200 with the written item in its body) is there, in this
  round and in every earlier one: read back by exact lookup (`open_nodes`) and found by its
  keyword (`search_nodes`, `/v1/memory/search`) through the API, and counted in the file;
- a write that got no answer (in flight at the kill) is there once or not at all, and whole
  (an entity never without the observation it was created with);
- nothing is duplicated, and no row exists that no writer sent;
- `PRAGMA integrity_check` and `foreign_key_check` pass; the counters (obs_count, out_deg, in_deg,
  type counts) equal recounts and the FTS5 indexes hold exactly what their content says (the
  checker of tests/graph/test_invariants.py, reused); every observation has its embedding once the
  restarted server has drained the embedding backlog (texts are embedded behind the write).

What a kill can and cannot show: SIGKILL ends the process, not the machine. Whatever the process
had handed to the kernel (write() returned) is in the OS page cache and reaches the disk anyway,
so in WAL mode even synchronous=NORMAL (`async`) should lose nothing here. What `sync`
(synchronous=FULL: the WAL is fsynced at every commit) adds is surviving a power cut or a kernel
panic, which a kill cannot simulate; that needs a VM whose disk cache can be dropped.

The logic is importable: tests/durability/test_crash.py runs a few rounds through `run()`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.setup import free_port

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE_PREFIX = "crash"
ENTITY_TYPE = "crashtest"
RELATION_TYPE = "follows"
# Kinds of write and how often each is sent (relations and observations need an entity first).
WEIGHTS = {"entity": 35, "observation": 25, "relation": 15, "memory": 25}

POWER_NOTE = (
    "SIGKILL kills the process, not the machine: what it wrote is in the OS page cache, so in WAL mode "
    "`async` (synchronous=NORMAL) is not expected to lose anything here either. `sync` (synchronous=FULL, "
    "an fsync per commit) is what protects acknowledged writes from a power cut or kernel panic, which "
    "cannot be simulated without a VM."
)


# --- the server ---------------------------------------------------------------------------------------


def server_env(data_dir: Path, durability: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "memoryhub.settings",
        "MEMORYHUB_DATA_DIR": str(data_dir),
        "MEMORYHUB_DB_PATH": str(data_dir / "hub.sqlite3"),
        "MEMORYHUB_DURABILITY": durability,
        "MEMORYHUB_RATE_LIMIT_PER_MINUTE": "0",
        # Texts the killed process had claimed for embedding wait for its lease to end before the
        # restarted one embeds them: a short lease keeps each round short.
        "MEMORYHUB_EMBED_BACKLOG_LEASE_SECONDS": "3",
    }
    env.pop("MEMORYHUB_TEST_DB_PATH", None)  # set by the test suite for its own database
    return env


@dataclass
class Server:
    """A daphne process on the database in `data_dir`, restartable on the same file."""

    data_dir: Path
    durability: str = "sync"
    env: dict[str, str] = field(init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    port: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.env = server_env(self.data_dir, self.durability)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "hub.sqlite3"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, text=True, capture_output=True
        )

    def prepare(self) -> str:
        """Migrate the database and return a new API key that may write every crash namespace."""
        self.manage("migrate", "--noinput", "-v0")
        return self.manage("create_api_key", "--user", "crash", "--grant", f"{NAMESPACE_PREFIX}:*=write").stdout.strip()

    def start(self) -> float:
        """Start daphne and wait until /healthz answers; return how long that took."""
        if self.process is not None:
            raise RuntimeError("the server is already running")
        started = time.monotonic()
        self.port = free_port()
        with open(self.data_dir / "daphne.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "memoryhub.asgi:application"],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = started + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"daphne did not start; see {self.data_dir / 'daphne.log'}")

    def wait_for_backlog(self, timeout: float = 300) -> float:
        """Wait until the server has embedded every pending text (its /healthz backlog is empty);
        return how long that took. Texts committed before a kill are embedded after the restart."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=10) as response:
                if json.loads(response.read())["embedding_backlog"]["pending"] == 0:
                    return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"the embedding backlog did not drain within {timeout:g} s")

    def kill(self) -> None:
        """SIGKILL: no signal handler, no atexit, no connection closed, nothing flushed."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


# --- the writers --------------------------------------------------------------------------------------


@dataclass
class Write:
    """One write request and what became of it.

    outcome: 'acked' (a 200 confirming the write), 'rejected' (any other answer), 'unanswered'
    (sent, no complete answer: in flight when the server died), 'refused' (the connection was
    refused: it never reached the server)."""

    kind: str
    namespace: str
    token: str  # a unique keyword in the write's text, for full-text search
    name: str = ""  # entity; for a relation, its source
    target: str = ""  # a relation's destination
    text: str = ""  # the entity's first observation, the observation, or the memory
    round: int = 0
    outcome: str = "sent"
    memory_id: str = ""

    def request(self) -> tuple[str, dict[str, Any]]:
        """The path and JSON body of this write."""
        if self.kind == "entity":
            entity = {"name": self.name, "entityType": ENTITY_TYPE, "observations": [self.text]}
            return "/v1/graph/create_entities", {"namespace": self.namespace, "entities": [entity]}
        if self.kind == "observation":
            addition = {"entityName": self.name, "contents": [self.text]}
            return "/v1/graph/add_observations", {"namespace": self.namespace, "observations": [addition]}
        if self.kind == "relation":
            relation = {"from": self.name, "to": self.target, "relationType": RELATION_TYPE}
            return "/v1/graph/create_relations", {"namespace": self.namespace, "relations": [relation]}
        return "/v1/memory/write", {"namespace": self.namespace, "text": self.text}

    def confirmed(self, answer: dict[str, Any]) -> bool:
        """Whether a 200 answer says this write was applied (not skipped as already there)."""
        if self.kind == "entity":
            return [e["name"] for e in answer.get("entities", [])] == [self.name]
        if self.kind == "observation":
            return answer.get("results") == [{"entityName": self.name, "addedObservations": [self.text]}]
        if self.kind == "relation":
            return answer.get("relations") == [{"from": self.name, "to": self.target, "relationType": RELATION_TYPE}]
        self.memory_id = str(answer.get("id", ""))
        return self.memory_id.startswith("mem_")


def new_token() -> str:
    # A letter first, then hex: one FTS5 token that no other write's token is a prefix of.
    return f"k{uuid.uuid4().hex[:20]}"


class Writer:
    """Threads that send writes to one server until stopped, recording every outcome."""

    def __init__(self, base_url: str, key: str, namespace: str, *, threads: int, seed: int, round_no: int = 0):
        host, port = base_url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.key = key
        self.namespace = namespace
        self.round_no = round_no
        self.writes: list[Write] = []
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(random.Random(seed * 1000 + n),), daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def acked(self) -> list[Write]:
        with self._lock:
            return [w for w in self.writes if w.outcome == "acked"]

    def wait_for_acks(self, count: int, timeout: float = 60) -> None:
        with self._acked:
            if not self._acked.wait_for(
                lambda: sum(w.outcome == "acked" for w in self.writes) >= count, timeout=timeout
            ):
                raise RuntimeError(f"fewer than {count} writes acknowledged in {timeout} s")

    def _next(self, rng: random.Random, entities: list[str], linked: int) -> Write:
        kinds = [
            k for k in WEIGHTS if (k != "observation" or entities) and (k != "relation" or linked + 1 < len(entities))
        ]
        kind = rng.choices(kinds, weights=[WEIGHTS[k] for k in kinds])[0]
        token = new_token()
        write = Write(kind=kind, namespace=self.namespace, token=token, round=self.round_no)
        if kind == "entity":
            write.name, write.text = f"ent {token}", f"created as {token}a in a crash test"
        elif kind == "observation":
            write.name, write.text = rng.choice(entities), f"later fact {token}"
        elif kind == "relation":
            # Each thread links its own entities in a chain: every pair is sent once.
            write.name, write.target = entities[linked], entities[linked + 1]
        else:
            write.text = f"a free memory {token} written during a crash test"
        return write

    def _run(self, rng: random.Random) -> None:
        entities: list[str] = []  # this thread's acknowledged entities
        linked = 0
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            write = self._next(rng, entities, linked)
            with self._lock:
                self.writes.append(write)
            path, body = write.request()
            outcome = "unanswered"
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(*self.address, timeout=60)
                    connection.connect()
                connection.request(
                    "POST",
                    path,
                    body=json.dumps(body),
                    headers={"X-API-Key": self.key, "Content-Type": "application/json"},
                )
                response = connection.getresponse()
                answer = response.read()
                applied = response.status == 200 and write.confirmed(json.loads(answer))
                outcome = "acked" if applied else "rejected"
            except ConnectionRefusedError:
                outcome = "refused"
                connection = None
            except (OSError, http.client.HTTPException, ValueError):
                # No complete answer: the request may or may not have been applied.
                with suppress(OSError):
                    if connection is not None:
                        connection.close()
                connection = None
            with self._acked:
                write.outcome = outcome
                self._acked.notify_all()
            if outcome == "refused":
                break  # the server is gone; the round is over
            if write.kind == "entity" and outcome == "acked":
                entities.append(write.name)
            elif write.kind == "relation":
                # Sent once, whatever its answer: a pair whose answer was lost may still be applied,
                # and sending it again would make a later refused write look present.
                linked += 1


# --- checks through the API ---------------------------------------------------------------------------


def post(base_url: str, key: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class ApiCheck:
    unreadable: list[str] = field(default_factory=list)  # tokens of acked writes open_nodes does not show
    unsearchable: list[str] = field(default_factory=list)  # tokens of acked writes search does not find


def check_through_api(base_url: str, key: str, writes: Iterable[Write]) -> ApiCheck:
    """Read every acknowledged write back by exact lookup and by its keyword, through the REST API."""
    acked = [w for w in writes if w.outcome == "acked"]
    result = ApiCheck()
    by_namespace: dict[str, list[Write]] = {}
    for write in acked:
        by_namespace.setdefault(write.namespace, []).append(write)
    for namespace, group in by_namespace.items():
        names = sorted({n for w in group for n in (w.name, w.target) if n})
        entities: dict[str, list[str]] = {}
        relations: Counter[tuple[str, str, str]] = Counter()
        for part in chunks(names, 500):
            page = post(base_url, key, "/v1/graph/open_nodes", {"namespace": namespace, "names": part})
            entities.update({e["name"]: e["observations"] for e in page["entities"]})
            # open_nodes lists the relations touching the names asked for, so a relation between
            # two chunks can be listed twice: count each only once per page.
            relations.update({(r["from"], r["to"], r["relationType"]) for r in page["relations"]})
        for write in group:
            if write.kind in ("entity", "observation"):
                ok = entities.get(write.name, []).count(write.text) == 1
            elif write.kind == "relation":
                ok = relations[(write.name, write.target, RELATION_TYPE)] >= 1
            else:
                ok = True  # a memory is read back by its id below
            if not ok:
                result.unreadable.append(write.token)

    def found(write: Write) -> bool:
        if write.kind == "memory":
            # The whole text, not the keyword alone: hybrid search ranks by meaning lifted by exact
            # terms, and a bare random keyword is closer in meaning to the short "later fact <keyword>"
            # texts than to the memory holding it (its exact match lifts it, but not always into the
            # top 10). The full-text index itself is checked row by row in verify_database().
            answer = post(
                base_url, key, "/v1/memory/search", {"namespace": write.namespace, "query": write.text, "topK": 10}
            )
            return [hit["id"] for hit in answer["results"]].count(write.memory_id) == 1
        if write.kind == "relation":
            return True  # relations carry no text of their own
        answer = post(base_url, key, "/v1/graph/search_nodes", {"namespace": write.namespace, "query": write.token})
        return [e["name"] for e in answer["entities"]] == [write.name]

    with ThreadPoolExecutor(4) as pool:
        for write, ok in zip(acked, pool.map(found, acked), strict=True):
            if not ok:
                result.unsearchable.append(write.token)
    return result


# --- checks on the file (run in a subprocess with Django set up on the crash database) --------------------


def verify_database(ledger: list[dict[str, Any]], namespaces: list[str]) -> dict[str, Any]:
    """Count every ledger write in the database and check its integrity. Needs Django set up.

    Returns {"found": [count per ledger write], "torn", "phantoms", "memory_ids_wrong",
    "unembedded", "integrity", "foreign_keys", "invariants"}."""
    from graph.sql import db

    # The invariant checker of the graph's property tests (counters equal recounts, both FTS5
    # indexes exactly what their content tokenizes to), reused rather than written twice.
    from tests.graph.test_invariants import assert_materialized_state_is_consistent

    conn = db()
    integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    foreign_keys = len(conn.execute("PRAGMA foreign_key_check").fetchall())
    invariants: list[str] = []
    for namespace in namespaces:
        try:
            assert_materialized_state_is_consistent(namespace)
        except AssertionError as error:
            invariants.append(f"{namespace}: {error!r}"[:500])

    crash = (f"{NAMESPACE_PREFIX}:%",)
    entities = Counter(
        conn.execute(
            "SELECT n.name, e.name FROM graph_entity e JOIN graph_namespace n ON n.id = e.namespace_id "
            "WHERE n.name LIKE ?",
            crash,
        ).fetchall()
    )
    rows = conn.execute(
        "SELECT n.name, e.name, o.body, o.id, (SELECT count(*) FROM vectors_embedding v "
        "WHERE v.owner_kind = 'observation' AND v.owner_id = o.id) "
        "FROM graph_observation o JOIN graph_namespace n ON n.id = o.namespace_id "
        "LEFT JOIN graph_entity e ON e.id = o.entity_id WHERE n.name LIKE ?",
        crash,
    ).fetchall()
    observations = Counter((ns, entity or "", body) for ns, entity, body, _, _ in rows)
    observation_ids = {(ns, entity or "", body): f"mem_{oid}" for ns, entity, body, oid, _ in rows}
    unembedded = sum(1 for *_, vectors in rows if vectors != 1)
    relations = Counter(
        conn.execute(
            "SELECT n.name, f.name, t.name, ty.name FROM graph_relation r "
            "JOIN graph_namespace n ON n.id = r.namespace_id JOIN graph_entity f ON f.id = r.from_id "
            "JOIN graph_entity t ON t.id = r.to_id JOIN graph_typedict ty ON ty.id = r.type_id WHERE n.name LIKE ?",
            crash,
        ).fetchall()
    )

    found: list[int] = []
    torn = memory_ids_wrong = 0
    expected_entities: set[tuple[str, str]] = set()
    expected_observations: set[tuple[str, str, str]] = set()
    expected_relations: set[tuple[str, str, str, str]] = set()
    for write in ledger:
        ns, kind = write["namespace"], write["kind"]
        if kind == "entity":
            count = entities[(ns, write["name"])]
            # One request, one transaction: the entity never exists without its first observation.
            if count and observations[(ns, write["name"], write["text"])] != 1:
                torn += 1
            expected_entities.add((ns, write["name"]))
            expected_observations.add((ns, write["name"], write["text"]))
        elif kind == "observation":
            count = observations[(ns, write["name"], write["text"])]
            expected_observations.add((ns, write["name"], write["text"]))
        elif kind == "relation":
            count = relations[(ns, write["name"], write["target"], RELATION_TYPE)]
            expected_relations.add((ns, write["name"], write["target"], RELATION_TYPE))
        else:
            count = observations[(ns, "", write["text"])]
            expected_observations.add((ns, "", write["text"]))
            if count and write["outcome"] == "acked" and observation_ids[(ns, "", write["text"])] != write["memory_id"]:
                memory_ids_wrong += 1
        found.append(count)
    phantoms = (
        len(set(entities) - expected_entities)
        + len(set(observations) - expected_observations)
        + len(set(relations) - expected_relations)
    )
    return {
        "found": found,
        "torn": torn,
        "phantoms": phantoms,
        "memory_ids_wrong": memory_ids_wrong,
        "unembedded": unembedded,
        "integrity": integrity,
        "foreign_keys": foreign_keys,
        "invariants": invariants,
    }


def run_verifier(server: Server, ledger: list[Write], namespaces: list[str]) -> dict[str, Any]:
    """verify_database() in a fresh process on the server's database (the caller may be a test
    process whose Django is set up on another database)."""
    ledger_file = server.data_dir / "ledger.json"
    ledger_file.write_text(json.dumps({"writes": [asdict(w) for w in ledger], "namespaces": namespaces}))
    completed = subprocess.run(
        [sys.executable, "-m", "bench.crash", "verify", str(ledger_file)],
        cwd=ROOT,
        env=server.env,
        text=True,
        capture_output=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the verifier failed:\n{completed.stderr[-4000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


# --- rounds -----------------------------------------------------------------------------------------


@dataclass
class RoundResult:
    number: int
    killed_after: float  # seconds of writing before the kill
    restart_seconds: float
    acked: Counter[str]  # per kind, this round
    lost: int  # acknowledged in this round, missing now
    lost_earlier: int  # acknowledged in an earlier round, missing now
    unanswered_found: int
    unanswered_absent: int
    rejected: int
    rejected_present: int
    refused: int
    duplicates: int  # writes (any round, any outcome) found more than once
    torn: int
    phantoms: int
    unembedded: int
    memory_ids_wrong: int
    unreadable: int  # acked this round, not read back by exact lookup through the API
    unsearchable: int  # acked this round, not found by keyword through the API
    integrity: list[str]
    foreign_keys: int
    invariants: list[str]

    @property
    def consistent(self) -> bool:
        return (
            self.integrity == ["ok"]
            and not self.foreign_keys
            and not self.invariants
            and not (self.duplicates or self.torn or self.phantoms or self.unembedded or self.memory_ids_wrong)
            and not (self.rejected_present or self.unreadable or self.unsearchable)
        )

    def line(self, rounds: int, durability: str) -> str:
        acked = sum(self.acked.values())
        kinds = ", ".join(f"{kind} {self.acked[kind]}" for kind in WEIGHTS)
        checks = "ok" if self.consistent else "FAILED"
        problems = {
            "torn": self.torn,
            "phantoms": self.phantoms,
            "unembedded": self.unembedded,
            "memory ids wrong": self.memory_ids_wrong,
            "rejected yet present": self.rejected_present,
            "foreign key violations": self.foreign_keys,
        }
        if any(problems.values()):
            checks += " (" + ", ".join(f"{name} {count}" for name, count in problems.items() if count) + ")"
        return (
            f"round {self.number:>3}/{rounds} {durability}: killed after {self.killed_after:.2f} s; "
            f"acknowledged {acked} ({kinds}); lost {self.lost} (earlier rounds {self.lost_earlier}); "
            f"in flight {self.unanswered_found + self.unanswered_absent} "
            f"(found {self.unanswered_found}, absent {self.unanswered_absent}); refused {self.refused}; "
            f"duplicates {self.duplicates}; api unreadable {self.unreadable}, unsearchable {self.unsearchable}; "
            f"integrity {' '.join(self.integrity)[:60]}, counters/FTS {'ok' if not self.invariants else 'BAD'}; "
            f"checks {checks}; restart {self.restart_seconds:.1f} s"
        )


@dataclass
class Report:
    durability: str
    rounds: list[RoundResult] = field(default_factory=list)
    # Every write sent, in every round, and the namespaces written (one per round).
    ledger: list[Write] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        return sum(sum(r.acked.values()) for r in self.rounds)

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rounds)

    @property
    def lost_earlier(self) -> int:
        return max((r.lost_earlier for r in self.rounds), default=0)

    @property
    def duplicates(self) -> int:
        return max((r.duplicates for r in self.rounds), default=0)

    @property
    def consistent(self) -> bool:
        return all(r.consistent for r in self.rounds)

    def summary(self) -> str:
        found = sum(r.unanswered_found for r in self.rounds)
        absent = sum(r.unanswered_absent for r in self.rounds)
        return (
            f"total {self.durability}, {len(self.rounds)} rounds (SIGKILL each): acknowledged writes "
            f"{self.acknowledged}, lost {self.lost} (and {self.lost_earlier} of earlier rounds missing later); "
            f"in flight at the kill {found + absent} (present once {found}, absent {absent}); "
            f"rejected {sum(r.rejected for r in self.rounds)}; duplicates {self.duplicates}; "
            f"torn writes {sum(r.torn for r in self.rounds)}; "
            f"rounds with a failed check {sum(not r.consistent for r in self.rounds)}"
        )


def run(
    data_dir: Path,
    *,
    rounds: int,
    durability: str,
    threads: int = 3,
    max_delay: float = 1.5,
    seed: int | None = None,
    echo: Any = None,
) -> Report:
    """Run `rounds` kill-and-restart rounds on a new database in `data_dir` (see the module docstring)."""
    rng = random.Random(seed)
    server = Server(data_dir, durability)
    key = server.prepare()
    report = Report(durability)
    ledger, namespaces = report.ledger, report.namespaces
    server.start()
    try:
        for number in range(1, rounds + 1):
            namespace = f"{NAMESPACE_PREFIX}:r{number}"
            namespaces.append(namespace)
            writer = Writer(
                server.base_url, key, namespace, threads=threads, seed=rng.randrange(2**31), round_no=number
            )
            writer.start()
            began = time.monotonic()
            # Kill at a random moment, but only once writes are flowing, so that there is something
            # to lose: before the first acknowledgement there is nothing to check.
            writer.wait_for_acks(1)
            time.sleep(rng.uniform(0, max_delay))
            server.kill()
            killed_after = time.monotonic() - began
            writer.stop()
            ledger.extend(writer.writes)
            restart = server.start()
            # Texts acknowledged before the kill may still be queued for embedding: the restarted
            # server embeds them (checked below: every observation has its vector).
            server.wait_for_backlog()
            api = check_through_api(server.base_url, key, writer.writes)
            # Every namespace's counters and search forms are checked in the last round; the global
            # checks (integrity, both FTS indexes) run every round.
            checked = namespaces if number == rounds else [namespace]
            verdict = run_verifier(server, ledger, checked)
            result = _round_result(number, ledger, verdict, api, killed_after, restart)
            report.rounds.append(result)
            if echo is not None:
                echo(result.line(rounds, durability))
    finally:
        server.stop()
    return report


def _round_result(
    number: int, ledger: list[Write], verdict: dict[str, Any], api: ApiCheck, killed_after: float, restart: float
) -> RoundResult:
    found = verdict["found"]
    counts: Counter[str] = Counter()
    for write, count in zip(ledger, found, strict=True):
        current = write.round == number
        if write.outcome == "acked":
            if current:
                counts[f"acked:{write.kind}"] += 1
            if count == 0:
                counts["lost" if current else "lost_earlier"] += 1
        elif write.outcome == "unanswered" and current:
            counts["unanswered_found" if count else "unanswered_absent"] += 1
        elif write.outcome == "rejected":
            counts["rejected"] += current
            counts["rejected_present"] += bool(count)
        elif write.outcome == "refused":
            counts["refused"] += current
            counts["rejected_present"] += bool(count)  # never reached the server: must be absent
        if count > 1:
            counts["duplicates"] += 1
    return RoundResult(
        number=number,
        killed_after=killed_after,
        restart_seconds=restart,
        acked=Counter({kind: counts[f"acked:{kind}"] for kind in WEIGHTS}),
        lost=counts["lost"],
        lost_earlier=counts["lost_earlier"],
        unanswered_found=counts["unanswered_found"],
        unanswered_absent=counts["unanswered_absent"],
        rejected=counts["rejected"],
        rejected_present=counts["rejected_present"],
        refused=counts["refused"],
        duplicates=counts["duplicates"],
        torn=verdict["torn"],
        phantoms=verdict["phantoms"],
        unembedded=verdict["unembedded"],
        memory_ids_wrong=verdict["memory_ids_wrong"],
        unreadable=len(api.unreadable),
        unsearchable=len(api.unsearchable),
        integrity=verdict["integrity"],
        foreign_keys=verdict["foreign_keys"],
        invariants=verdict["invariants"],
    )


@contextmanager
def scratch_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="memoryhub-crash-") as path:
        yield Path(path)


def _verify_main(ledger_file: str) -> None:
    import django

    django.setup()
    data = json.loads(Path(ledger_file).read_text())
    print(json.dumps(verify_database(data["writes"], data["namespaces"])))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["verify"]:
        _verify_main(argv[1])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--durability", choices=["sync", "async"], default="sync")
    parser.add_argument("--threads", type=int, default=3, help="concurrent writers")
    parser.add_argument("--max-delay", type=float, default=1.5, help="longest wait before the kill, in seconds")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="keep the database and logs here")
    args = parser.parse_args(argv)
    with scratch_dir(args.dir) as data_dir:
        report = run(
            data_dir,
            rounds=args.rounds,
            durability=args.durability,
            threads=args.threads,
            max_delay=args.max_delay,
            seed=args.seed,
            echo=lambda line: print(line, flush=True),
        )
    print(report.summary())
    print(f"note: {POWER_NOTE}")
    if report.lost or report.lost_earlier:
        print(
            f"LOST ACKNOWLEDGED WRITES with durability={args.durability}"
            + (": this must never happen with sync." if args.durability == "sync" else ".")
        )
    failed = (
        report.duplicates
        or not report.consistent
        or (args.durability == "sync" and (report.lost or report.lost_earlier))
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
