"""Start Django on a benchmark database: a new temporary file (deleted afterwards) or `--db PATH`."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def django_on(db: Path | None, *, prefix: str) -> Iterator[tuple[Path, bool]]:
    """Set up Django on `db` (None: a temporary file), migrate, and yield (path, is_temporary).

    The environment is set before django.setup() because settings read it once."""
    temp_dir = tempfile.mkdtemp(prefix=prefix) if db is None else None
    db_path = Path(temp_dir) / "bench.sqlite3" if temp_dir else Path(db or "").resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    if temp_dir:
        os.environ["MEMORYHUB_DATA_DIR"] = temp_dir  # the secret key file goes there too
    os.environ["MEMORYHUB_DB_PATH"] = str(db_path)
    os.environ["DJANGO_SETTINGS_MODULE"] = "memoryhub.settings"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        yield db_path, temp_dir is not None
    finally:
        connection.close()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
