"""Calls racing in threads, for the tests of concurrent writers: each call in a thread of its
own, all started together, each on its own database connection (as on two processes or two
nodes), which is closed when its call ends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def at_once(*calls: Callable[[], Any], timeout: float | None = None) -> list[Any]:
    """Run `calls` in threads released together; each one's result, or the exception it raised
    (a thread still running after `timeout` seconds leaves None)."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            start.wait()
            results[index] = call()
        except Exception as problem:
            results[index] = problem
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results
