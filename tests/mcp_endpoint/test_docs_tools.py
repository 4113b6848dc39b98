"""The tool counts and lists in the README and docs/reference/graph-tools.md are the registry's
(they drifted once: `memory` (5) listed five tools while the registry had six)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import mcp_endpoint.tools  # noqa: F401 (registers the tools)
from mcp_endpoint import registry

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
TOOLS_PAGE = (ROOT / "docs" / "reference" / "graph-tools.md").read_text()


def _counts() -> Counter[str]:
    return Counter(tool.category for tool in registry.tools())


def test_each_category_count_in_the_docs_is_the_registrys() -> None:
    found = re.findall(r"`(kg-read|kg-write|vectors|memory)` \((\d+)\)", TOOLS_PAGE)
    written = {name: int(count) for name, count in found}
    assert len(found) == len(written)  # each category counted once
    counts = _counts()
    assert written == {name: counts[name] for name in ("kg-read", "kg-write", "vectors", "memory")}


def test_the_totals_in_the_docs_are_the_registrys() -> None:
    counts = _counts()
    total = re.search(r"(\d+) in all", TOOLS_PAGE)
    assert total is not None
    assert int(total.group(1)) == sum(counts.values())
    summary = re.search(r"the (\d+)\s+knowledge-graph tools, the (\d+) vector tools, the (\d+) memory tools", README)
    assert summary is not None
    assert [int(n) for n in summary.groups()] == [
        counts["kg-read"] + counts["kg-write"],
        counts["vectors"],
        counts["memory"],
    ]


def test_each_listed_category_names_all_its_tools() -> None:
    for category in ("vectors", "memory"):
        paragraph = re.search(rf"- `{category}` \(\d+\).*?(?=\n- |\n\n)", TOOLS_PAGE, re.S)
        assert paragraph is not None, category
        names = {tool.name for tool in registry.tools([category])}
        missing = {name for name in names if f"`{name}`" not in paragraph.group(0)}
        assert missing == set(), f"graph-tools.md's {category} list lacks {missing}"
