"""The examples in docs/ run against a live server, so none of them rots.

A fenced `sh` block right after the line `<!-- docs-test -->` is run, command by command, in bash,
with `http://127.0.0.1:8000` replaced by the test server's URL and `mh_...` by a key made as
`make run` makes the first one (write on every namespace, default namespace `org:team:project`).
Lines before the first `curl` (`KEY=mh_...`) are kept as a prelude for every command. Each `curl`
must exit 0 and answer 2xx, unless its expected output shows an error. A `# {...}` comment right
after a command is that expected output: the real answer must have its shape (the keys it shows,
recursively, with values of the same JSON type; `null` stands for any value, `[]` for any list,
and a list's first element is compared with the answer's first). Every `json` block must parse.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.mcp_endpoint.conftest import McpServer, running_servers

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MARKED_BLOCK = re.compile(r"<!-- docs-test -->\n```sh\n(.*?)```", re.S)
JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.S)
DOC_URL, DOC_KEY = "http://127.0.0.1:8000", "mh_..."
STATUS = "\n__status__:"


@dataclass
class Step:
    command: str
    expected: Any = None  # the parsed `# {...}` comment, when there is one
    comment: list[str] = field(default_factory=list)


def steps(block: str) -> tuple[str, list[Step]]:
    """The block's prelude (assignments before the first curl) and its commands."""
    prelude: list[str] = []
    found: list[Step] = []
    current: list[str] = []
    open_step: Step | None = None  # the command a `#` line right after it describes
    for line in block.splitlines():
        if current or line.startswith("curl "):
            # A command goes on over continuation lines and open single-quoted arguments.
            current.append(line)
            text = "\n".join(current)
            if not text.endswith("\\") and text.count("'") % 2 == 0:
                open_step = Step(text)
                found.append(open_step)
                current = []
        elif line.startswith("#"):
            if open_step is not None:
                open_step.comment.append(line.lstrip("#").strip())
        else:
            open_step = None
            if line.strip() and not found:
                prelude.append(line)
    assert not current, f"unfinished command in:\n{block}"
    for step in found:
        if step.comment:
            step.expected = json.loads(" ".join(step.comment))
    return "\n".join(prelude), found


def marked_blocks() -> Iterator[Any]:
    for page in PAGES:
        for index, match in enumerate(MARKED_BLOCK.finditer(page.read_text())):
            yield pytest.param(match.group(1), id=f"{page.relative_to(ROOT)}#{index + 1}")


def same_shape(expected: Any, actual: Any, where: str = "$") -> list[str]:
    if expected is None:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r:.80}"]
        problems: list[str] = []
        for key in expected:
            if key in actual:
                problems += same_shape(expected[key], actual[key], f"{where}.{key}")
            else:
                problems.append(f"{where}.{key}: missing")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {actual!r:.80}"]
        if expected and not actual:
            return [f"{where}: expected at least one item, got none"]
        return same_shape(expected[0], actual[0], f"{where}[0]") if expected else []
    if isinstance(expected, bool) or isinstance(actual, bool):
        return [] if type(expected) is type(actual) else [f"{where}: expected {expected!r}, got {actual!r}"]
    if isinstance(expected, int | float):
        return [] if isinstance(actual, int | float) else [f"{where}: expected a number, got {actual!r:.80}"]
    return [] if isinstance(actual, type(expected)) else [f"{where}: expected {expected!r:.40}, got {actual!r:.80}"]


def expected_status(expected: Any) -> range:
    if isinstance(expected, dict):
        code = expected.get("code")
        if isinstance(code, int) and code >= 400:  # the MemOS envelope carries the HTTP status
            return range(code, code + 1)
        if "error" in expected:
            return range(400, 500)
    return range(200, 300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[McpServer, str]]:
    with running_servers(tmp_path_factory.mktemp("docs-server")) as (server,):
        # What docs/reference/marketplace.md's example assumes: agent 1 on sale, 100 credits.
        key, _, _ = server.commands(
            ["create_api_key", "--user", "docs", "--grant", "*=write", "--default-namespace", "org:team:project"],
            ["create_agent", "--name", "Helper", "--price", "1", "--publish"],
            ["grant_credits", "--user", "docs", "--credits", "100"],
        )
        key = key.strip()
        yield server, key


@pytest.mark.parametrize("block", list(marked_blocks()))
def test_the_example_runs(server: tuple[McpServer, str], block: str) -> None:
    live, key = server
    prelude, found = steps(block)
    assert found, "a docs-test block without a curl command"
    for step in found:
        command = step.command.replace("curl ", f"curl -sS -w '{STATUS}%{{http_code}}' ", 1)
        script = f"{prelude}\n{command}".replace(DOC_URL, live.base_url).replace(DOC_KEY, key)
        ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, f"{step.command}\n{ran.stderr}"
        body, _, status = ran.stdout.rpartition(STATUS)
        assert int(status) in expected_status(step.expected), f"{step.command}\nHTTP {status}: {body[:500]}"
        if step.expected is not None:
            problems = same_shape(step.expected, json.loads(body))
            assert problems == [], f"{step.command}\n{body[:1000]}"


def test_the_quickstart_rest_and_memos_examples_are_marked() -> None:
    marked = {param.id.split("#")[0] for param in marked_blocks()}
    assert {
        "docs/quickstart.md",
        "docs/reference/rest-memory-api.md",
        "docs/reference/memos-api.md",
    } <= marked


def test_every_json_block_parses() -> None:
    parsed = 0
    for page in PAGES:
        for match in JSON_BLOCK.finditer(page.read_text()):
            json.loads(match.group(1))
            parsed += 1
    assert parsed >= 3


def test_the_shape_check_tells_a_wrong_answer_apart() -> None:
    expected = {"results": [{"id": "mem_1", "score": 0.4, "entityName": None}], "totalResults": 1}
    assert (
        same_shape(expected, {"results": [{"id": "mem_9", "score": 1, "entityName": "Ada"}], "totalResults": 3}) == []
    )
    assert same_shape(expected, {"results": [], "totalResults": 0}) == [
        "$.results: expected at least one item, got none"
    ]
    assert same_shape(expected, {"results": [{"id": 9, "score": 0.1}], "totalResults": "1"}) == [
        "$.results[0].id: expected 'mem_1', got 9",
        "$.results[0].entityName: missing",
        "$.totalResults: expected a number, got '1'",
    ]
