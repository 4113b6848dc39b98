"""`manage.py docs_tools [--check]`: the tool table of docs/reference/graph-tools.md, from the registry.

The table sits between two marker comments and is rewritten whole, so the page never lists a tool
the registry lacks or misses one it has. `--check` changes nothing and exits non-zero when the
committed table is not what the registry gives (a test runs it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import mcp_endpoint.tools  # noqa: F401 (registers the tools)
from mcp_endpoint import registry

PAGE = Path(__file__).resolve().parents[3] / "docs" / "reference" / "graph-tools.md"
START, END = "<!-- tools-table:start -->", "<!-- tools-table:end -->"


def _summary(description: str) -> str:
    """The description's first sentence on one line, safe inside a table cell."""
    text = " ".join(description.split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return sentence.replace("|", "\\|")


def _kind(tool: registry.Tool) -> str:
    annotations = tool.annotations
    if annotations["readOnlyHint"]:
        return "read"
    return "write, destructive" if annotations["destructiveHint"] else "write"


def table() -> str:
    rows = ["| Tool | Category | Title | Kind | What it does |", "|---|---|---|---|---|"]
    for tool in registry.tools():
        name = f"`{tool.name}`" + (f" (`{tool.alias}`)" if tool.alias else "")
        rows.append(f"| {name} | `{tool.category}` | {tool.title} | {_kind(tool)} | {_summary(tool.description)} |")
    counts = {category: len(registry.tools([category])) for category in registry.CATEGORIES}
    total = ", ".join(f"`{category}` {count}" for category, count in counts.items())
    return "\n".join([*rows, "", f"{sum(counts.values())} tools: {total}."])


def render(page: str) -> str:
    before, found, rest = page.partition(START)
    if not found or END not in rest:
        raise CommandError(f"{PAGE}: the markers {START} and {END} are missing")
    after = rest.split(END, 1)[1]
    return f"{before}{START}\n{table()}\n{END}{after}"


class Command(BaseCommand):
    help = "Rewrite the tool table in docs/reference/graph-tools.md from the registry (--check: only compare)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="exit 1 when the committed table is stale")

    def handle(self, *args: Any, **options: Any) -> None:
        current = PAGE.read_text()
        wanted = render(current)
        if options["check"]:
            if wanted != current:
                raise CommandError(f"{PAGE} is stale: run `python manage.py docs_tools`")
            self.stdout.write("the tool table is up to date")
            return
        if wanted != current:
            PAGE.write_text(wanted)
            self.stdout.write(f"rewrote the tool table in {PAGE}")
        else:
            self.stdout.write("the tool table is up to date")
