"""The embedded timer: jobs on their intervals in a thread of the server process, one at a time,
a failing job never stopping the others, and never two processes on one job."""

from __future__ import annotations

import pytest

from kernel import maintenance
from kernel.maintenance import JOBS, JOBS_BY_NAME, Job, Timer, beat_schedule, start_in_process
from kernel.models import MaintenanceJob
from tests.maintenance import jobs
from tests.maintenance.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TICK = Job("tick", "tests.maintenance.jobs.tick", "MEMORYHUB_TEST_TICK_SECONDS", "counts its runs")
EXPLODE = Job("explode", "tests.maintenance.jobs.explode", "MEMORYHUB_TEST_EXPLODE_SECONDS", "always fails")
SLOW = Job("slow", "tests.maintenance.jobs.slow", "MEMORYHUB_TEST_SLOW_SECONDS", "holds its lease a while")


def _runs() -> dict[str, tuple[int, int]]:
    return {row.name: (row.runs, row.failures) for row in MaintenanceJob.objects.all()}


def test_jobs_run_on_schedule_and_a_failing_one_does_not_stop_the_others(settings, caplog):
    settings.MEMORYHUB_TEST_TICK_SECONDS = 0.2
    settings.MEMORYHUB_TEST_EXPLODE_SECONDS = 0.2
    settings.MEMORYHUB_MAINTENANCE_OPTIMIZE_SECONDS = 0.2
    jobs.reset()
    timer = Timer([EXPLODE, TICK, JOBS_BY_NAME["optimize"]], first_delay=0).start()
    try:
        wait_for(
            lambda: (
                (runs := _runs()).get("tick", (0, 0))[0] >= 3
                and runs.get("optimize", (0, 0))[0] >= 3
                and runs.get("explode", (0, 0))[1] >= 3
            ),
            message="three runs of each job",
        )
    finally:
        timer.stop()
    assert not timer.alive
    rows = {row.name: row for row in MaintenanceJob.objects.all()}
    assert rows["explode"].failures == rows["explode"].runs
    assert rows["explode"].last_error == "RuntimeError: this job always fails"
    assert rows["tick"].failures == rows["optimize"].failures == 0
    assert rows["tick"].last_result == {"calls": jobs.calls["tick"]}
    assert rows["optimize"].last_runner.startswith("timer ")
    assert "maintenance explode failed" in caplog.text
    assert "maintenance tick done" in caplog.text


def test_two_processes_never_run_one_job_at_once(settings):
    """Two timers, each a thread with its own database connection, like two server processes."""
    settings.MEMORYHUB_TEST_SLOW_SECONDS = 0.01  # always due: they contend for every run
    jobs.reset()
    timers = [Timer([SLOW], first_delay=0).start() for _ in range(2)]
    try:
        wait_for(lambda: jobs.calls.get("slow", 0) >= 10, message="ten runs of the slow job")
    finally:
        for timer in timers:
            timer.stop()
    assert jobs.overlaps == []
    assert MaintenanceJob.objects.get(name="slow").runs == jobs.calls["slow"]


def test_a_job_with_interval_zero_is_not_scheduled(settings):
    settings.MEMORYHUB_MAINTENANCE_PURGE_EXPIRED_SECONDS = 0
    assert "purge_expired" not in beat_schedule()
    assert Timer([JOBS_BY_NAME["purge_expired"]], first_delay=0).run_due() == 60.0
    assert not MaintenanceJob.objects.exists()


def test_the_beat_schedule_has_every_job_with_its_interval():
    schedule = beat_schedule()
    assert set(schedule) == {job.name for job in JOBS}
    for job in JOBS:
        assert schedule[job.name]["task"] == job.task
        assert schedule[job.name]["schedule"].total_seconds() == job.interval
        assert schedule[job.name]["options"] == {"expires": job.interval, "ignore_result": True}


def test_the_server_starts_the_timer_only_without_a_broker(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/5"
    assert start_in_process() is None
    settings.CELERY_BROKER_URL = None
    settings.MEMORYHUB_MAINTENANCE = False
    assert start_in_process() is None
    settings.MEMORYHUB_MAINTENANCE = True
    timer = start_in_process()
    try:
        assert timer is not None
        assert timer.alive
        assert start_in_process() is timer  # one per process
    finally:
        assert timer is not None
        timer.stop()
        maintenance._timer = None
    assert not timer.alive
