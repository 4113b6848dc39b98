"""`celery -A memoryhub beat` sends the jobs on the schedule of kernel/maintenance.py, and a
worker runs them: here purge_expired every second (every other job off), against this session's
database."""

from __future__ import annotations

import subprocess
import sys

import pytest

from graph.models import Observation
from kernel.maintenance import JOBS
from kernel.models import MaintenanceJob
from tests.maintenance.conftest import ROOT, _stop, process_env, wait_for
from tests.maintenance.helpers import memories, new_namespace

pytestmark = pytest.mark.django_db(transaction=True)


def test_beat_sends_the_due_jobs_to_the_workers(ivf_worker, test_db_path, tmp_path):
    ns = new_namespace("beat")
    memories(ns, ["kept"])
    memories(ns, ["expired a while ago"], expired=True)
    intervals = {job.interval_setting: "0" for job in JOBS} | {"MEMORYHUB_MAINTENANCE_PURGE_EXPIRED_SECONDS": "1"}
    log = tmp_path / "beat.log"
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "memoryhub", "beat", "--loglevel=INFO"],
        cwd=ROOT,
        # The schedule file goes to the data directory (tmp_path); tasks to the worker's queue.
        env=process_env(tmp_path, test_db_path, MEMORYHUB_CELERY_QUEUE=ivf_worker.queue, **intervals),
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115 - closed with the process
    )
    try:
        wait_for(
            lambda: not Observation.objects.filter(namespace__name=ns, expires_at__isnull=False).exists(),
            timeout=90,
            message=f"beat and the worker to purge the expired memory (beat log:\n{log.read_text()[-2000:]})",
        )
    finally:
        _stop(beat)
    assert Observation.objects.filter(namespace__name=ns).count() == 1
    job = MaintenanceJob.objects.get(name="purge_expired")
    assert job.last_runner.startswith("celery ")
    assert job.last_status == "ok"
    text = log.read_text()
    assert "Sending due task purge_expired (graph.tasks.purge_expired_task)" in text
    assert "wal_checkpoint" not in text  # interval 0: not scheduled
