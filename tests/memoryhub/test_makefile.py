"""`make run` says what it is doing before each slow step (it was silent for ~20 s while pip ran)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SLOW = ("-m venv", "pip install", "manage.py migrate", "daphne ")


def test_make_run_announces_each_slow_step() -> None:
    # -n prints the commands without running them; -B as if nothing were installed yet.
    plan = subprocess.run(
        ["make", "-n", "-B", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    slow = [
        index for index, line in enumerate(plan) if not line.startswith("echo ") and any(step in line for step in SLOW)
    ]
    assert len(slow) >= 4, plan
    for index in slow:
        before = plan[:index]
        assert any(line.startswith("echo ") for line in before[-2:]), f"nothing said before: {plan[index]}"
