"""What a server process does once when it starts: print its banner, start background work.

Every server process calls it (memoryhub/asgi.py for daphne, and the mcp_stdio and mcp_tcp
commands). The apps above the kernel add their own background work with `on_server_start` from
their AppConfig.ready (vectors: warming up its indexes).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

from django.conf import settings

# Called in registration order, after the GIL setting and before the maintenance timer starts.
_server_start_hooks: list[Callable[[], object]] = []


def on_server_start(hook: Callable[[], object]) -> None:
    """Have `hook` run (once per process) when a server process starts its background work."""
    if hook not in _server_start_hooks:
        _server_start_hooks.append(hook)


def start_background_work() -> None:
    """What every server process (daphne, mcp_stdio, mcp_tcp) starts besides serving."""
    from kernel.maintenance import start_in_process

    shorten_gil_switch_interval()
    for hook in _server_start_hooks:
        hook()
    # The maintenance jobs on a timer thread, unless Celery workers run them (CELERY_BROKER_URL).
    start_in_process()
    freeze_heap()


def freeze_heap() -> None:
    """Move everything alive now (Django, the apps, their imports) out of the garbage
    collector's reach: a full collection then walks only what requests allocated. Reads that
    build large answers (a read_graph page with every fact's validity) set off full collections,
    and with the startup heap in them those cost tens of milliseconds (bench/RESULTS.md, "Facts
    in time")."""
    gc.collect()
    gc.freeze()


def shorten_gil_switch_interval() -> None:
    """A server process is two busy threads: the event loop and the database thread every MCP
    message visits (kernel/asyncdb.py). The database thread gives up the GIL around each
    SQLite call and then waits for the loop to hand it back, by default for up to 5 ms. A much
    shorter interval serves more read calls per second (bench/load.py, paired runs; the figures
    are in bench/RESULTS.md, "Design measurements")."""
    sys.setswitchinterval(settings.MEMORYHUB_GIL_SWITCH_INTERVAL_US / 1_000_000)


def announce() -> None:
    # Printed (not logged) so an operator always sees which database the server writes to.
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.postgresql":
        from kernel.backups import PostgresTarget

        synchronous_commit = "on" if settings.DURABILITY == "sync" else "off"
        line = (
            f"MemoryHub database: {PostgresTarget.from_settings(database)} (PostgreSQL, durability="
            f"{settings.DURABILITY}: synchronous_commit={synchronous_commit}, data dir {settings.DATA_DIR})"
        )
    else:
        line = (
            f"MemoryHub database: {settings.DB_PATH} "
            f"(SQLite WAL, durability={settings.DURABILITY}, data dir {settings.DATA_DIR})"
        )
    print(line, file=sys.stderr, flush=True)
