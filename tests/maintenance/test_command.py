"""`manage.py maintenance`: list the jobs, run some now."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kernel.maintenance import JOBS
from kernel.models import MaintenanceJob
from tests.maintenance.helpers import memories, new_namespace

pytestmark = pytest.mark.django_db


def _call(*args: str) -> str:
    out = StringIO()
    call_command("maintenance", *args, stdout=out)
    return out.getvalue()


def test_it_lists_every_job_with_its_schedule_and_last_run():
    text = _call()
    assert text.startswith("Scheduled jobs are run by a timer in each server process.")
    for job in JOBS:
        assert job.name in text
        assert job.interval_setting in text
    assert "never ran" in text

    _call("--job", "purge_sessions")
    listing = {item["job"]: item for item in json.loads(_call("--list", "--json"))}
    assert listing["purge_sessions"]["runs"] == 1
    assert listing["purge_sessions"]["lastResult"] == {"purged": 0}
    assert listing["purge_sessions"]["lastRunner"].startswith("command ")
    assert listing["optimize"]["interval"] == 3600  # a database job both backends schedule


def test_it_runs_the_named_jobs_now():
    ns = new_namespace()
    memories(ns, ["stale"], expired=True)
    text = _call("--job", "purge_expired", "--job", "hnsw_compact", "--namespace", ns)
    assert "purge_expired: ok in " in text
    assert text.rstrip().endswith('{"checked": 0, "rebuilt": []}')
    assert MaintenanceJob.objects.get(name="purge_expired").last_result == {"purged": 1}


def test_a_failed_job_fails_the_command():
    with pytest.raises(CommandError, match="failed: reembed"):
        _call("--job", "reembed", "--namespace", "org:test:nowhere")
    assert MaintenanceJob.objects.get(name="reembed").last_error == (
        "InvalidArgument: namespace 'org:test:nowhere' does not exist"
    )


def test_enqueue_needs_a_broker():
    with pytest.raises(CommandError, match="CELERY_BROKER_URL"):
        _call("--job", "optimize", "--enqueue")
