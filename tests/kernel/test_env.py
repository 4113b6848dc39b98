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
