"""What `/healthz` checks: the database, the channel layer, the Celery broker when one is
configured, and what the apps above the kernel add (`add_check`: the vectors app reports its
embedding backlog). Each check answers `{"ok": bool, "latency_ms": float, ...}` within CHECK_TIMEOUT
seconds; nothing here returns tenant data or connection strings (the endpoint is public).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError

from kernel.database import describe_database

# Per check: a healthy channel layer or broker answers in milliseconds; a load balancer's probe
# should not hang on a dead one.
CHECK_TIMEOUT = 2.0


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _failure(started: float, problem: BaseException, **details: Any) -> dict[str, Any]:
    message = str(problem) or type(problem).__name__
    if isinstance(problem, TimeoutError):
        message = f"no answer within {CHECK_TIMEOUT:g} s"
    return {"ok": False, **details, "error": message[:300], "latency_ms": _elapsed_ms(started)}


def check_database() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        database = describe_database()
    except DatabaseError as problem:
        return _failure(started, problem)
    return {"ok": True, **database, "latency_ms": _elapsed_ms(started)}


async def check_channel_layer() -> dict[str, Any]:
    """A message sent to a new channel of this process's layer must come back (a round trip
    through Redis with the Redis layer)."""
    from channels.layers import get_channel_layer

    started = time.perf_counter()
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer is configured", "latency_ms": _elapsed_ms(started)}
    backend = type(layer).__name__
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            channel = await layer.new_channel("healthz")
            nonce = uuid.uuid4().hex
            await layer.send(channel, {"type": "healthz.ping", "nonce": nonce})
            message = await layer.receive(channel)
        if message.get("nonce") != nonce:
            raise RuntimeError("the channel layer returned another message")
    except Exception as problem:
        return _failure(started, problem, backend=backend)
    return {"ok": True, "backend": backend, "latency_ms": _elapsed_ms(started)}


def broker_url() -> str | None:
    """The Celery broker URL when one is configured (CELERY_BROKER_URL), else None."""
    url = getattr(settings, "CELERY_BROKER_URL", None)
    return str(url) if url else None


def default_queue() -> str:
    return str(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", None) or "celery")


_redis_clients: dict[str, Any] = {}
_redis_lock = threading.Lock()


def _redis(url: str) -> Any:
    """One client (and connection pool) per broker URL, with short timeouts."""
    import redis

    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = _redis_clients[url] = redis.Redis.from_url(
                url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT
            )
        return client


def _is_redis(url: str) -> bool:
    return urlsplit(url).scheme in ("redis", "rediss")


# kombu's Redis transport keeps a queue's messages of priority p != 0 in the list
# "<queue>\x06\x16<p>" (default priority steps 0, 3, 6, 9).
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


def queue_depth(url: str) -> int | None:
    """Messages waiting in the default queue (a Redis broker; None for other brokers). Raises
    when the broker cannot be reached."""
    if not _is_redis(url):
        return None
    queue = default_queue()
    pipe = _redis(url).pipeline(transaction=False)
    for step in _PRIORITY_STEPS:
        pipe.llen(queue if step == 0 else f"{queue}{_PRIORITY_SEPARATOR}{step}")
    return int(sum(pipe.execute()))


def _ping_broker(url: str) -> dict[str, Any]:
    if _is_redis(url):
        _redis(url).ping()
        return {"transport": "redis", "queue_depth": queue_depth(url)}
    from kombu import Connection

    with Connection(url, connect_timeout=CHECK_TIMEOUT) as connection:
        connection.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT)
    return {"transport": urlsplit(url).scheme}


def check_broker() -> dict[str, Any]:
    started = time.perf_counter()
    url = broker_url()
    if url is None:
        return {"ok": True, "configured": False}
    try:
        details = _ping_broker(url)
    except Exception as problem:
        return _failure(started, problem, configured=True)
    return {"ok": True, "configured": True, **details, "latency_ms": _elapsed_ms(started)}


# Checks of the apps above the kernel, by name, in registration order (run on the database thread).
_app_checks: dict[str, Callable[[], dict[str, Any]]] = {}


def add_check(name: str, check: Callable[[], dict[str, Any]]) -> None:
    """Add a check to /healthz under `name`: a function answering `{"ok": bool, ...}` (no tenant
    data, no connection strings); one that raises is reported as failed."""
    _app_checks[name] = check


def _run_app_checks() -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name, check in _app_checks.items():
        started = time.perf_counter()
        try:
            results[name] = check()
        except Exception as problem:
            results[name] = _failure(started, problem)
    return results


async def check_all() -> dict[str, Any]:
    """Every check, run concurrently; `status` is "ok" only when each one is."""
    database, channel_layer, broker, apps = await asyncio.gather(
        sync_to_async(check_database, thread_sensitive=True)(),
        check_channel_layer(),
        sync_to_async(check_broker, thread_sensitive=False)(),
        sync_to_async(_run_app_checks, thread_sensitive=True)(),
    )
    checks = {"database": database, "channel_layer": channel_layer, "broker": broker, **apps}
    return {"status": "ok" if all(check["ok"] for check in checks.values()) else "error", **checks}
