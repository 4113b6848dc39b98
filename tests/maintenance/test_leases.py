"""The job lease: what keeps two processes from running one job at once, and shares the schedule
between them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from graph.tasks import purge_expired_task
from kernel import maintenance
from kernel.maintenance import Job, claim, finish, run_job
from kernel.models import MaintenanceJob
from tests.maintenance import jobs

pytestmark = pytest.mark.django_db


def test_a_held_lease_keeps_everyone_else_out_until_it_is_released():
    mine = claim("job", runner="timer a")
    assert mine is not None
    assert claim("job", runner="timer b") is None
    finish(mine, result={"n": 1}, duration_ms=7)

    row = MaintenanceJob.objects.get(name="job")
    assert (row.lease_owner, row.lease_until, row.last_status, row.last_result) == ("", None, "ok", {"n": 1})
    assert (row.runs, row.failures, row.last_runner, row.last_duration_ms) == (1, 0, "timer a", 7)
    assert claim("job", runner="timer b") is not None


def test_a_job_is_not_due_again_before_its_interval_whoever_ran_it():
    first = claim("job", runner="timer a", due_after=3600)
    assert first is not None
    finish(first, result=None, duration_ms=1)
    assert claim("job", runner="timer b", due_after=3600) is None  # ran a moment ago elsewhere
    assert claim("job", runner="command", due_after=None) is not None  # run now: not about the schedule


def test_the_lease_of_a_process_that_died_expires():
    dead = claim("job", runner="timer a")
    assert dead is not None
    MaintenanceJob.objects.filter(name="job").update(lease_until=timezone.now() - timedelta(seconds=1))
    alive = claim("job", runner="timer b")
    assert alive is not None
    # The late finish of the old holder neither releases nor overwrites the new holder's lease.
    finish(dead, error="late", duration_ms=1)
    row = MaintenanceJob.objects.get(name="job")
    assert row.lease_owner == alive.owner
    assert row.runs == 0


def test_a_failed_run_is_recorded_and_not_raised(settings):
    settings.MEMORYHUB_TEST_EXPLODE_SECONDS = 60
    outcome = run_job(
        Job("explode", "tests.maintenance.jobs.explode", "MEMORYHUB_TEST_EXPLODE_SECONDS", ""), runner="t"
    )
    assert (outcome.status, outcome.error) == ("failed", "RuntimeError: this job always fails")
    row = MaintenanceJob.objects.get(name="explode")
    assert (row.last_status, row.last_error, row.runs, row.failures, row.lease_owner) == (
        "failed",
        "RuntimeError: this job always fails",
        1,
        1,
        "",
    )


def test_a_long_job_stops_at_its_next_batch_when_the_process_exits(settings):
    settings.MEMORYHUB_TEST_SLOW_SECONDS = 60
    jobs.reset()
    stopping = threading.Event()
    stopping.set()
    outcome = run_job(
        Job("slow", "tests.maintenance.jobs.slow", "MEMORYHUB_TEST_SLOW_SECONDS", ""), runner="t", stop=stopping
    )
    assert outcome.status == "failed"
    assert outcome.error.startswith("MaintenanceStopped")
    assert MaintenanceJob.objects.get(name="slow").lease_owner == ""


def test_keep_alive_renews_the_lease_of_a_long_run(settings):
    settings.MEMORYHUB_MAINTENANCE_LEASE_SECONDS = 40
    held = claim("job", runner="t")
    assert held is not None
    MaintenanceJob.objects.filter(name="job").update(lease_until=timezone.now() + timedelta(seconds=5))
    held.renewed -= 11  # a quarter of the lease has passed since it was taken
    maintenance._current.claim = held
    try:
        maintenance.keep_alive()
    finally:
        maintenance._current.claim = None
    assert MaintenanceJob.objects.get(name="job").lease_until > timezone.now() + timedelta(seconds=30)


def test_a_task_whose_job_runs_elsewhere_returns_at_once():
    held = claim("purge_expired", runner="another worker")
    assert held is not None
    assert purge_expired_task() == {"skipped": "purge_expired is running in another process"}
    finish(held, result={"purged": 0}, duration_ms=1)
    assert purge_expired_task() == {"purged": 0}
    row = MaintenanceJob.objects.get(name="purge_expired")
    assert row.runs == 2
    assert row.last_runner.startswith("celery ")
