"""Real Celery workers for the maintenance tests: `celery -A memoryhub worker` subprocesses on the
real Redis (database 5, a queue of their own per test run) and on the very database this test
session uses (its SQLite file, or on PostgreSQL its test database), so a test writes through the services (committed: `transactional_db`), sends a task
with `.apply_async()`, and checks what the worker did in the database.

Redis is required: without it these tests fail (they never skip).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection

from memoryhub.celery import app as celery_app
from tests.mcp_endpoint.conftest import server_env

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("MEMORYHUB_MAINTENANCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
# One run's queues: several runs of this suite on one Redis never take each other's tasks.
RUN = uuid.uuid4().hex[:8]


def require_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as problem:
        pytest.fail(
            f"Redis at {REDIS_URL} does not answer ({problem}). The maintenance tests run real Celery "
            "workers on it (apt-get install redis-server, or set MEMORYHUB_MAINTENANCE_TEST_REDIS_URL).",
            pytrace=False,
        )
    return client


def process_env(data_dir: Path, database: str, **extra: str) -> dict[str, str]:
    """A worker's or a server's environment: the MCP tests' (tests/mcp_endpoint/conftest.py) on
    this database (`test_db_path`: a SQLite file, or a postgres:// URL), with the Celery broker on
    the test Redis."""
    where = (
        {"MEMORYHUB_DATABASE_URL": database}
        if database.startswith(("postgres://", "postgresql://"))
        else {"MEMORYHUB_DB_PATH": database}
    )
    return server_env(
        data_dir,
        **where,
        CELERY_BROKER_URL=REDIS_URL,
        MEMORYHUB_LOG_LEVEL="info",
        # No index warm-up in workers: they search nothing.
        MEMORYHUB_VECTOR_WARMUP="false",
        **extra,
    )


@dataclass
class Worker:
    name: str
    queue: str
    log: Path
    process: subprocess.Popen[bytes]

    def send(self, task: Any, *, timeout: float = 120, **kwargs: Any) -> Any:
        """Send `task` to this worker with apply_async and return its result."""
        result = task.apply_async(kwargs=kwargs, queue=self.queue)
        try:
            return result.get(timeout=timeout)
        finally:
            result.forget()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # warm shutdown: the task under way finishes first
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_worker(data_dir: Path, db_path: str, label: str, **env: str) -> Iterator[Worker]:
    queue = f"memoryhub-test-{RUN}-{label}"
    name = f"{label}-{RUN}@%h"
    log = data_dir / f"worker-{label}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "memoryhub",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-n",
            name,
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=process_env(data_dir, db_path, MEMORYHUB_CELERY_QUEUE=queue, **env),
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115 - closed with the process
    )
    worker = Worker(name=name.replace("%h", os.uname().nodename), queue=queue, log=log, process=process)
    try:
        deadline = time.monotonic() + 90
        while not celery_app.control.ping(destination=[worker.name], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start:\n{worker.log_text()[-3000:]}", pytrace=False)
        yield worker
    finally:
        _stop(process)
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


@pytest.fixture(scope="session")
def celery_client() -> Iterator[redis.Redis]:
    """The project's Celery app, pointed at the test Redis for this session (the settings under
    test have no CELERY_BROKER_URL: that is the embedded mode the rest of the suite runs)."""
    client = require_redis()
    saved = (celery_app.conf.broker_url, celery_app.conf.result_backend)
    _point_at(REDIS_URL, REDIS_URL)
    yield client
    _point_at(*saved)


def _point_at(broker: str | None, backend: str | None) -> None:
    celery_app.conf.broker_url = broker
    celery_app.conf.result_backend = backend
    # Whatever was connected with the previous settings (if anything used the app) is replaced.
    celery_app._pool = None
    celery_app._backend = celery_app._get_backend()


@pytest.fixture(scope="session")
def test_db_path(django_db_setup, django_db_blocker) -> str:
    """The SQLite file of this test session (workers open the same one); on PostgreSQL the URL of
    this session's test database."""
    with django_db_blocker.unblock():
        name = str(connection.settings_dict["NAME"])
    if connection.vendor == "postgresql":
        from tests.postgres.databases import url_for

        return url_for(name)
    return name


@pytest.fixture(scope="session")
def ivf_worker(celery_client, test_db_path, tmp_path_factory) -> Iterator[Worker]:
    """A worker whose settings build IVF-Flat indexes (4 lists), embed with MiniLM (the tests
    write with the built-in model, so to this worker every namespace has "another model"), and
    keep no vector change log past a prune."""
    with running_worker(
        tmp_path_factory.mktemp("ivf-worker"),
        test_db_path,
        "ivf",
        MEMORYHUB_VECTOR_INDEX="ivf",
        MEMORYHUB_IVF_NLIST="4",
        MEMORYHUB_EMBEDDER="minilm",
        MEMORYHUB_VECTOR_CHANGE_RETENTION_SECONDS="0",
    ) as worker:
        yield worker


@pytest.fixture(scope="session")
def hnsw_worker(celery_client, test_db_path, tmp_path_factory) -> Iterator[Worker]:
    """A worker whose settings build HNSW indexes."""
    with running_worker(
        tmp_path_factory.mktemp("hnsw-worker"), test_db_path, "hnsw", MEMORYHUB_VECTOR_INDEX="hnsw"
    ) as worker:
        yield worker


def wait_for(predicate, *, timeout: float = 60, message: str = "the condition") -> None:
    """Poll until `predicate()` is true (no timing is asserted: the deadline only bounds a hang)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {message}", pytrace=False)
        time.sleep(0.1)
