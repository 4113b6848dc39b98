"""The crash test of bench/crash.py, shorter: real daphne processes killed with SIGKILL while
writer threads send acknowledged writes over HTTP, restarted on the same file, and checked.

`python -m bench.crash --rounds 50` is the long version (figures in bench/RESULTS.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench import crash

pytestmark = pytest.mark.sqlite_only(
    reason="bench/crash.py restarts daphne on one SQLite file and verifies that file (PRAGMA integrity_check, "
    "FTS5 invariants); its PostgreSQL form needs a verifier over psycopg (not yet written)"
)


def assert_nothing_lost(report: crash.Report, rounds: int) -> None:
    assert len(report.rounds) == rounds
    # Writes were in progress at every kill, so each round had something to lose.
    assert all(sum(r.acked.values()) > 0 for r in report.rounds)
    for result in report.rounds:
        assert (result.lost, result.lost_earlier) == (0, 0), result.line(rounds, report.durability)
        assert result.duplicates == 0, result.line(rounds, report.durability)
        assert result.integrity == ["ok"]
        assert result.invariants == [], result.invariants
        assert result.consistent, result.line(rounds, report.durability)


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[crash.Report, Path]:
    data_dir = tmp_path_factory.mktemp("crash-sync")
    return crash.run(data_dir, rounds=5, durability="sync"), data_dir


def test_sync_loses_no_acknowledged_write_across_sigkills(sync_run):
    report, _ = sync_run
    assert_nothing_lost(report, 5)
    # Writes in flight at a kill are all accounted for: present exactly once or absent.
    assert all(w.outcome in {"acked", "unanswered", "rejected", "refused"} for w in report.ledger)
    assert sum(r.rejected for r in report.rounds) == 0


def test_async_loses_no_acknowledged_write_on_a_process_kill(tmp_path):
    # synchronous=NORMAL skips the fsync per commit, which only matters when the machine stops:
    # after a process kill the OS still has every page the server wrote.
    report = crash.run(tmp_path, rounds=2, durability="async")
    assert_nothing_lost(report, 2)


def test_the_checks_see_a_lost_write_and_a_wrong_counter(sync_run):
    """The harness must be able to fail: take a write away and break a counter behind the
    server's back, and the verifier reports both."""
    report, data_dir = sync_run
    server = crash.Server(data_dir, "sync")
    memory = next(w for w in report.ledger if w.outcome == "acked" and w.kind == "memory")
    entity = next(w for w in report.ledger if w.outcome == "acked" and w.kind == "entity")
    with sqlite3.connect(server.db_path) as conn:
        conn.execute("DELETE FROM graph_observation WHERE id = ?", (int(memory.memory_id.removeprefix("mem_")),))
        conn.execute("UPDATE graph_entity SET obs_count = obs_count + 1 WHERE name = ?", (entity.name,))
    conn.close()

    verdict = crash.run_verifier(server, report.ledger, [entity.namespace])

    lost = [
        w.token for w, count in zip(report.ledger, verdict["found"], strict=True) if w.outcome == "acked" and not count
    ]
    assert lost == [memory.token]
    assert verdict["integrity"] == ["ok"]
    assert len(verdict["invariants"]) == 1
    assert entity.name in verdict["invariants"][0]
