"""A second, independent MCP client: the official MCP Inspector's CLI (TypeScript SDK), pinned in
package.json and installed by `make test`.

It drives MemoryHub (a) over Streamable HTTP with the API key header and (b) over stdio, spawning
`manage.py mcp_stdio`. Its output is the JSON of the MCP result, which the tests parse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.mcp_endpoint.conftest import ALL_TOOLS, READ_TOOLS, ROOT, McpServer

INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector"

ENTITY = {"name": "Inspector ✓ 検査", "entityType": "tool", "observations": ["seen by the TypeScript SDK 🎯"]}
# Inspector arguments: call create_entities with ENTITY.
CREATE_ENTITY = (
    "--method",
    "tools/call",
    "--tool-name",
    "create_entities",
    "--tool-arg",
    f"entities={json.dumps([ENTITY], ensure_ascii=False)}",
)


@pytest.fixture(scope="module")
def inspector_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or not INSPECTOR.exists():
        pytest.fail(
            f"the MCP Inspector is not installed ({INSPECTOR.relative_to(ROOT)} or node is missing): run "
            "`make test`, which installs the pinned node packages (npm ci) before the suite"
        )
    # The Inspector keeps a catalog and OAuth storage under $HOME; keep them out of the real one.
    return tmp_path_factory.mktemp("inspector-home")


def run_inspector(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(Path(shutil.which("node") or "/usr/bin/node").parent) + ":/usr/bin:/bin",
        "HOME": str(home),
        "MCP_CATALOG_PATH": str(home / "mcp.json"),
        "MCP_STORAGE_DIR": str(home / "storage"),
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [str(INSPECTOR), "--cli", *args], cwd=ROOT, env=env, text=True, capture_output=True, timeout=120
    )
    if check:
        assert done.returncode == 0, f"inspector exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done


def result_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def text_payload(result: dict[str, Any]) -> Any:
    assert result.get("isError") is not True, result
    [block] = result["content"]
    assert block["type"] == "text"
    payload = json.loads(block["text"])
    return payload


# --- (a) Streamable HTTP ---------------------------------------------------------------------------


def http_args(mcp_server: McpServer, persona: str, namespace: str) -> list[str]:
    return [
        "--transport",
        "http",
        "--server-url",
        mcp_server.endpoint(namespace=namespace),
        "--header",
        f"X-API-Key: {mcp_server.keys[persona]}",
    ]


def test_tools_list_over_http(mcp_server: McpServer, inspector_home: Path) -> None:
    done = run_inspector(
        inspector_home, *http_args(mcp_server, "alice", mcp_server.namespace()), "--method", "tools/list"
    )
    tools = result_json(done)["tools"]
    # The test server pages tools/list by 10; the Inspector follows nextCursor to the end.
    names = [tool["name"] for tool in tools]
    assert set(names) >= ALL_TOOLS
    assert len(names) == len(set(names))
    for tool in tools:
        assert tool["inputSchema"]["type"] == "object"
        assert tool["title"]
        assert tool["description"]


def test_tools_call_over_http(mcp_server: McpServer, inspector_home: Path) -> None:
    namespace = mcp_server.namespace()
    connect = http_args(mcp_server, "alice", namespace)
    created = result_json(
        run_inspector(
            inspector_home,
            *connect,
            *CREATE_ENTITY,
        )
    )
    assert text_payload(created) == [ENTITY]
    assert created["structuredContent"]["entities"] == [ENTITY]

    graph = result_json(run_inspector(inspector_home, *connect, "--method", "tools/call", "--tool-name", "read_graph"))
    assert text_payload(graph) == graph["structuredContent"]
    assert graph["structuredContent"]["entities"] == [ENTITY]
    assert graph["structuredContent"]["relations"] == []

    # A missing entity is a tool error result (the Inspector exits 5 for those), not a protocol failure.
    done = run_inspector(
        inspector_home,
        *connect,
        "--method",
        "tools/call",
        "--tool-name",
        "add_observations",
        "--tool-arg",
        'observations=[{"entityName": "Nobody", "contents": ["x"]}]',
        check=False,
    )
    assert done.returncode == 5, done.stderr
    assert json.loads(done.stderr)["error"]["code"] == "tool_is_error"
    failed = result_json(done)
    assert failed["isError"] is True
    assert failed["content"][0]["text"] == "Entity with name Nobody not found"


def test_a_wrong_key_is_refused_over_http(mcp_server: McpServer, inspector_home: Path) -> None:
    done = run_inspector(
        inspector_home,
        "--transport",
        "http",
        "--server-url",
        mcp_server.endpoint(namespace=mcp_server.namespace()),
        "--header",
        "X-API-Key: mh_00000000_not-a-real-key",
        "--method",
        "tools/list",
        check=False,
    )
    assert done.returncode != 0
    assert '"tools"' not in done.stdout


def test_another_tenants_namespace_is_refused_over_http(mcp_server: McpServer, inspector_home: Path) -> None:
    namespace = mcp_server.namespace("alice")
    run_inspector(
        inspector_home,
        *http_args(mcp_server, "alice", namespace),
        *CREATE_ENTITY,
    )
    done = run_inspector(
        inspector_home,
        *http_args(mcp_server, "bob", namespace),
        "--method",
        "tools/call",
        "--tool-name",
        "read_graph",
        check=False,
    )
    assert ENTITY["name"] not in done.stdout
    if done.returncode == 0:
        assert result_json(done)["isError"] is True


# --- (b) stdio: manage.py mcp_stdio -----------------------------------------------------------------


def stdio_args(
    mcp_server: McpServer, namespace: str, *extra: str, key: str | None = None, command: tuple[str, ...] = ()
) -> list[str]:
    """Inspector options that spawn `manage.py mcp_stdio` on the test server's database. The
    Inspector passes the server only a minimal environment plus `-e` pairs, so the settings go
    through `-e`."""
    env = {name: value for name, value in mcp_server.env.items() if name.startswith(("MEMORYHUB_", "DJANGO_"))}
    if key is not None:
        env["MEMORYHUB_API_KEY"] = key
    args = ["--cwd", str(ROOT)]
    for name, value in sorted(env.items()):
        args += ["-e", f"{name}={value}"]
    return [*args, *extra, "--", sys.executable, "manage.py", "mcp_stdio", "--namespace", namespace, *command]


def test_tools_list_over_stdio(mcp_server: McpServer, inspector_home: Path) -> None:
    done = run_inspector(inspector_home, *stdio_args(mcp_server, mcp_server.namespace(), "--method", "tools/list"))
    names = [tool["name"] for tool in result_json(done)["tools"]]
    assert set(names) >= ALL_TOOLS
    assert len(names) == len(set(names))


def test_tools_list_over_stdio_with_a_category_filter(mcp_server: McpServer, inspector_home: Path) -> None:
    done = run_inspector(
        inspector_home,
        *stdio_args(mcp_server, mcp_server.namespace(), "--method", "tools/list", command=("--tools", "kg-read")),
    )
    tools = result_json(done)["tools"]
    assert {tool["name"] for tool in tools} == READ_TOOLS
    assert all(tool["annotations"]["readOnlyHint"] is True for tool in tools)


def test_tools_call_over_stdio_as_the_local_operator(mcp_server: McpServer, inspector_home: Path) -> None:
    namespace = mcp_server.namespace("root")
    created = result_json(
        run_inspector(
            inspector_home,
            *stdio_args(
                mcp_server,
                namespace,
                *CREATE_ENTITY,
            ),
        )
    )
    assert text_payload(created) == [ENTITY]
    graph = result_json(
        run_inspector(
            inspector_home, *stdio_args(mcp_server, namespace, "--method", "tools/call", "--tool-name", "read_graph")
        )
    )
    assert graph["structuredContent"]["entities"] == [ENTITY]


def test_stdio_with_a_key_shares_the_database_with_http(mcp_server: McpServer, inspector_home: Path) -> None:
    """What alice writes over stdio with her key, she reads back over HTTP."""
    namespace = mcp_server.namespace("alice")
    run_inspector(
        inspector_home,
        *stdio_args(
            mcp_server,
            namespace,
            *CREATE_ENTITY,
            key=mcp_server.keys["alice"],
        ),
    )
    found = result_json(
        run_inspector(
            inspector_home,
            *http_args(mcp_server, "alice", namespace),
            "--method",
            "tools/call",
            "--tool-name",
            "open_nodes",
            "--tool-arg",
            f"names={json.dumps([ENTITY['name']], ensure_ascii=False)}",
        )
    )
    assert found["structuredContent"]["entities"] == [ENTITY]
