"""The embedded default (no CELERY_BROKER_URL): a real server process (daphne) runs every job on
its timer thread, with one-second intervals here, and keeps serving."""

from __future__ import annotations

import json
import urllib.request

from kernel.maintenance import JOBS
from tests.maintenance.conftest import wait_for
from tests.mcp_endpoint.conftest import query, running_servers


def _write(base_url: str, key: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base_url}/v1/memory/write",
        data=json.dumps(body).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_a_server_without_a_broker_runs_every_job_on_its_timer(tmp_path):
    every_second = {job.interval_setting: "1" for job in JOBS}
    with running_servers(tmp_path, MEMORYHUB_LOG_LEVEL="info", **every_second) as (server,):
        ns = server.namespace("alice")
        kept = _write(server.base_url, server.keys["alice"], {"namespace": ns, "text": "kept"})
        _write(server.base_url, server.keys["alice"], {"namespace": ns, "text": "gone soon", "ttlMs": 1})

        def every_job_ran_and_the_memory_is_gone() -> bool:
            ran = {name for (name,) in query(server.env, "SELECT name FROM memoryhub_maintenancejob WHERE runs > 0")}
            left = query(server.env, "SELECT count(*) FROM graph_observation WHERE expires_at IS NOT NULL")[0][0]
            return ran == {job.name for job in JOBS} and left == 0

        wait_for(every_job_ran_and_the_memory_is_gone, timeout=120, message="the timer to run every job")
        jobs = query(server.env, "SELECT name, last_status, last_runner, failures FROM memoryhub_maintenancejob")
        for name, status, runner, failures in jobs:
            assert (name, status, failures) == (name, "ok", 0)
            assert runner.startswith("timer ")
        ids = [row[0] for row in query(server.env, "SELECT id FROM graph_observation")]
        assert [f"mem_{i}" for i in ids] == [kept["id"]]
        # Still serving.
        with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=10) as response:
            assert response.status == 200
    # running_servers sent SIGTERM: the timer thread stopped with the process, without an error.
    log = (tmp_path / "daphne.log").read_text()
    assert f"maintenance: {len(JOBS)} jobs on a timer in this process" in log
    assert "Traceback" not in log
