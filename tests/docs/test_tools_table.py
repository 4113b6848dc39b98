"""The tool table in docs/reference/graph-tools.md is the registry's: `manage.py docs_tools --check`
passes on the committed page, and would fail on a page that lost or gained a row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mcp_endpoint.tools  # noqa: F401 (registers the tools)
from mcp_endpoint import registry
from mcp_endpoint.management.commands import docs_tools

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_tool_table_is_up_to_date() -> None:
    checked = subprocess.run(
        [sys.executable, "manage.py", "docs_tools", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert "up to date" in checked.stdout


def test_the_table_lists_every_registered_tool_once() -> None:
    page = docs_tools.PAGE.read_text()
    table = page.split(docs_tools.START, 1)[1].split(docs_tools.END, 1)[0]
    listed = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert listed == [tool.name for tool in registry.tools()]
    assert f"{len(listed)} tools:" in table


def test_a_stale_table_is_told_apart() -> None:
    page = docs_tools.PAGE.read_text()
    stale = page.replace("| `get_entity` |", "| `get_entity_old` |", 1)
    assert stale != page
    assert docs_tools.render(stale) == page  # rewriting restores the registry's table
    dropped = "\n".join(line for line in page.splitlines() if not line.startswith("| `open_nodes` |")) + "\n"
    assert docs_tools.render(dropped) == page
