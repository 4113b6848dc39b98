"""The banner a server process prints once when it starts."""

from __future__ import annotations

import sys

from django.conf import settings


def announce() -> None:
    # Printed (not logged) so an operator always sees which file the server writes to.
    print(
        f"MemoryHub database: {settings.DB_PATH} "
        f"(SQLite WAL, durability={settings.DURABILITY}, data dir {settings.DATA_DIR})",
        file=sys.stderr,
        flush=True,
    )
