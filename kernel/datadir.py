"""Where MemoryHub keeps its state (database, generated secret key) on disk.

State never lives inside the installed package: a checkout keeps it in `var/` beside
`manage.py` (ignored by git), an installed copy in the user's data directory.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def default_data_dir(project_root: Path) -> Path:
    if (project_root / "manage.py").is_file() and os.access(project_root, os.W_OK):
        return project_root / "var"
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "memoryhub"


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"cannot create the data directory {path}: {exc}") from None
    return path


def persisted_secret_key(data_dir: Path) -> str:
    """Return the secret key stored in DATA_DIR/secret_key, generating it (mode 0600) on first use.

    This keeps `make run` free of configuration while never committing a secret: the key is
    made on the machine that uses it and survives restarts, so sessions and signed values do too.
    """
    key_file = ensure_dir(data_dir) / "secret_key"
    try:
        existing = key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    key = secrets.token_urlsafe(50)
    # Written whole to a file of its own, then linked into place: link() fails if the name exists,
    # so of two processes starting at once exactly one key wins, and the other reads it complete.
    # (Creating the file with O_EXCL and then writing it let the loser read it still empty.)
    fd, draft = tempfile.mkstemp(dir=key_file.parent, prefix=".secret_key.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key)
        os.chmod(draft, 0o600)
        try:
            os.link(draft, key_file)
        except FileExistsError:
            return key_file.read_text(encoding="utf-8").strip()
    finally:
        os.unlink(draft)
    return key
