"""Jobs of the tests' own (the timer takes any callable as a job's task)."""

from __future__ import annotations

import threading
import time

from kernel.maintenance import keep_alive

calls: dict[str, int] = {}
running: dict[str, int] = {}
overlaps: list[str] = []
_lock = threading.Lock()


def reset() -> None:
    with _lock:
        calls.clear()
        running.clear()
        overlaps.clear()


def _enter(name: str) -> None:
    with _lock:
        calls[name] = calls.get(name, 0) + 1
        running[name] = running.get(name, 0) + 1
        if running[name] > 1:
            overlaps.append(name)


def _leave(name: str) -> None:
    with _lock:
        running[name] -= 1


def tick() -> dict[str, int]:
    _enter("tick")
    _leave("tick")
    return {"calls": calls["tick"]}


def explode() -> None:
    _enter("explode")
    _leave("explode")
    raise RuntimeError("this job always fails")


def slow() -> dict[str, bool]:
    """Holds its lease across a few keep_alive calls, so two timers contend for it."""
    _enter("slow")
    try:
        for _ in range(5):
            keep_alive()
            time.sleep(0.02)
    finally:
        _leave("slow")
    return {"done": True}
