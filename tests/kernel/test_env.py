"""The typed settings helpers fail loudly on bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from kernel.datadir import persisted_secret_key
from kernel.env import env_bool, env_choice, env_int, env_list, env_secret, env_str


def test_env_bool(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "off")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
        env_bool("X_FLAG", False)
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True


def test_env_int_bounds(monkeypatch):
    monkeypatch.setenv("X_NUM", "12")
    assert env_int("X_NUM", 1, minimum=1, maximum=20) == 12
    monkeypatch.setenv("X_NUM", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="below the minimum 1"):
        env_int("X_NUM", 5, minimum=1)


def test_env_choice_list_and_str(monkeypatch):
    monkeypatch.setenv("X_MODE", "SYNC")
    assert env_choice("X_MODE", "async", ["sync", "async"]) == "sync"
    monkeypatch.setenv("X_MODE", "fast")
    with pytest.raises(ImproperlyConfigured, match="must be one of: sync, async"):
        env_choice("X_MODE", "async", ["sync", "async"])
    monkeypatch.setenv("X_HOSTS", " a.example , b.example,, ")
    assert env_list("X_HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.setenv("X_EMPTY", "")
    assert env_str("X_EMPTY", "default") == "default"


def test_env_secret_reads_a_file(monkeypatch, tmp_path: Path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_secret("X_SECRET") == "s3cret"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_secret("X_SECRET")


def test_the_generated_secret_key_is_private_and_stable(tmp_path: Path):
    key = persisted_secret_key(tmp_path)
    assert len(key) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert persisted_secret_key(tmp_path) == key


def test_processes_starting_at_once_all_get_the_one_whole_key(tmp_path: Path):
    # Server processes of one data dir start together (make run-cluster): each must read the key
    # the winner wrote, whole, never an empty or partial file.
    import subprocess
    import sys

    script = "import sys; from pathlib import Path; from kernel.datadir import persisted_secret_key as k; print(k(Path(sys.argv[1])))"
    for attempt in range(5):
        data_dir = tmp_path / f"run{attempt}"
        runs = [
            subprocess.Popen([sys.executable, "-c", script, str(data_dir)], stdout=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        keys = {run.communicate(timeout=60)[0].strip() for run in runs}
        assert keys == {(data_dir / "secret_key").read_text(encoding="utf-8")}
        assert len(keys.pop()) >= 50
        assert [p.name for p in data_dir.iterdir()] == ["secret_key"]  # no draft left behind
