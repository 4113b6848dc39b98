"""`deploy/run-cluster.sh` (what `make run-cluster` runs): two daphne processes behind a real nginx,
sharing sessions through Redis. A client talks to nginx only; its requests land on either
process (nginx's access log says which), and the session works. Ctrl-C stops everything.

Also: the example config for a system nginx (`deploy/nginx-cluster.conf`) is valid nginx.

nginx is required, not optional: without it these tests fail, saying that `make test` installs it.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
import redis
from mcp import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPDeprecationWarning

from kernel.tls import self_signed
from tests.cluster.conftest import REDIS_URL, require_redis
from tests.mcp_endpoint.conftest import ROOT, McpServer, prepare_database, server_env
from tests.mcp_endpoint.test_streamable_http import GRAPH_URI, ok

SCRIPT = ROOT / "deploy" / "run-cluster.sh"
EXAMPLE = ROOT / "deploy" / "nginx-cluster.conf"
WAIT = 15.0


def nginx() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        pytest.fail(
            "nginx is not installed: `make test` installs it (apt-get install nginx). "
            "deploy/run-cluster.sh runs it in front of the server processes.",
            pytrace=False,
        )
    return found


def port_is_free(port: int) -> bool:
    """Nothing listens on it (connections in TIME_WAIT do not count, as for the servers, which
    set SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# Below Linux's ephemeral range (32768-60999): a port the kernel hands out for outgoing
# connections (the suite's many to PostgreSQL and Redis) can be taken between this check and
# daphne's bind, which once failed a run with "Address already in use".
PORT_RANGE = (20000, 32000)


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    for _ in range(200):
        first = random.randrange(*PORT_RANGE)
        if all(port_is_free(first + offset) for offset in range(count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


@dataclass
class RunningCluster:
    proxy: McpServer  # base_url is nginx
    process: subprocess.Popen[bytes]
    run_dir: Path
    log: Path
    ports: list[int]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def upstreams(self, request_pattern: str) -> list[str]:
        """The process (upstream address) that served each request of nginx's access log whose
        request line matches `request_pattern`."""
        served = []
        for line in (self.run_dir / "access.log").read_text().splitlines():
            match = re.search(r'"(?P<request>[^"]*)" \d+ \d+ upstream=(?P<upstream>\S+)$', line)
            if match and re.search(request_pattern, match["request"]):
                served.append(match["upstream"])
        return served

    def logged(self, request_pattern: str, *, timeout: float = 10.0) -> list[str]:
        """`upstreams(request_pattern)` once nginx has logged at least one such request: it writes
        a request's line when the request ends, and a stream just closed by the client may end on
        nginx's side a moment later."""
        deadline = time.monotonic() + timeout
        while not (served := self.upstreams(request_pattern)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return served


def _default_sigint() -> None:
    # The script must see Ctrl-C even when this test process was started with SIGINT ignored (as
    # background jobs are): a non-interactive bash cannot trap a signal ignored on entry.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def run_cluster(data_dir: Path, count: int = 2, **extra_env: str) -> Iterator[RunningCluster]:
    require_redis()
    nginx()
    first, proxy_port = free_ports(count), free_ports(1)
    env = server_env(
        data_dir,
        MEMORYHUB_REDIS_URL=REDIS_URL,
        N=str(count),
        PORT=str(first),
        HOST="127.0.0.1",
        PROXY_PORT=str(proxy_port),
        PYTHON=sys.executable,
        **extra_env,
    )
    proxy = McpServer(base_url=f"http://127.0.0.1:{proxy_port}", data_dir=data_dir, env=env)
    # A migrated database with the personas' keys (alice writes org:alice:*), as the suite's
    # other servers start on; the script's own migrate then has nothing to do.
    prepare_database(proxy)
    log = data_dir / "run-cluster.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            ["bash", str(SCRIPT)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
    cluster = RunningCluster(proxy, process, data_dir / "cluster", log, [first + offset for offset in range(count)])
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{proxy.base_url}/healthz", timeout=2):
                    break
            except OSError:
                assert process.poll() is None, f"run-cluster.sh exited:\n{cluster.output()}"
                assert time.monotonic() < deadline, f"nginx never answered:\n{cluster.output()}"
                time.sleep(0.2)
        yield cluster
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.anyio
async def test_run_cluster_serves_a_legacy_sse_session_across_processes_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    with run_cluster(tmp_path) as cluster:
        proxy = cluster.proxy
        # The generated config and the processes it names.
        config = (cluster.run_dir / "nginx.conf").read_text()
        assert all(f"server 127.0.0.1:{port};" in config for port in cluster.ports)
        assert "proxy_buffering off;" in config

        namespace = proxy.namespace("alice")
        received: list[types.ResourceUpdatedNotification] = []

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ResourceUpdatedNotification):
                received.append(message)

        transport = sse_client(proxy.endpoint(namespace=namespace, path="/sse"), headers=proxy.headers("alice"))
        # Fails rather than hangs when an answer never comes (a first write loads the embedding model).
        async with Client(transport, mode="legacy", message_handler=on_message, read_timeout_seconds=60) as client:
            with pytest.warns(MCPDeprecationWarning):
                await client.subscribe_resource(GRAPH_URI)
            created = ok(
                await client.call_tool(
                    "create_entities",
                    {"entities": [{"name": "Behind nginx", "entityType": "thing", "observations": ["round robin"]}]},
                )
            )
            assert created["entities"][0]["name"] == "Behind nginx"
            with anyio.fail_after(WAIT):
                while not received:
                    await anyio.sleep(0.02)
            for _ in range(4):
                found = ok(await client.call_tool("search_nodes", {"query": "robin"}))
                assert [entity["name"] for entity in found["entities"]] == ["Behind nginx"]

        # The stream was held by one process; the session's POSTs were served by both.
        (stream_upstream,) = cluster.logged(r"^GET /sse\?")
        served = set(cluster.upstreams(r"^POST /messages\?sessionId="))
        assert served == {f"127.0.0.1:{port}" for port in cluster.ports}, served
        assert stream_upstream in served

        # A key in a URL (as SSE clients send it) is written to no log: nginx's, or any process's.
        secret = proxy.keys["alice"]
        async with httpx2.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{proxy.base_url}/sse?key={secret}")).status_code == 401
        assert cluster.logged(r"^GET /sse\?\[query redacted\] ")
        for log in cluster.run_dir.glob("*.log"):
            assert secret not in log.read_text(errors="replace"), log.name

        # Ctrl-C (SIGINT to the terminal's process group) stops nginx and every daphne.
        os.killpg(cluster.process.pid, signal.SIGINT)
        cluster.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while not group_is_gone(cluster.process.pid):
            assert time.monotonic() < deadline, "processes of run-cluster.sh outlived it"
            time.sleep(0.1)
        assert all(port_is_free(port) for port in [*cluster.ports, int(proxy.base_url.rsplit(":", 1)[1])])


def test_run_cluster_requires_redis(tmp_path: Path) -> None:
    env = server_env(tmp_path, PYTHON=sys.executable)
    env.pop("MEMORYHUB_REDIS_URL", None)
    env.pop("REDIS_URL", None)
    run = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "set MEMORYHUB_REDIS_URL" in run.stderr


def test_the_example_cluster_config_is_valid_nginx(tmp_path: Path) -> None:
    """deploy/nginx-cluster.conf as a site of a system nginx (its certificates swapped for a
    self-signed pair), checked with `nginx -t`."""
    binary = nginx()
    cert, key = self_signed(tmp_path, ["memory.example.org"])
    site = EXAMPLE.read_text()
    site = site.replace("/etc/ssl/certs/memory.example.org.pem", str(cert))
    site = site.replace("/etc/ssl/private/memory.example.org.key", str(key))
    (tmp_path / "site.conf").write_text(site)
    temp = "\n".join(
        f"    {name}_temp_path {tmp_path}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n{temp}\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    checked = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_behind_nginx_a_forged_forwarded_for_does_not_escape_sign_in_throttling(tmp_path: Path) -> None:
    """nginx names the client itself: a client that writes its own X-Forwarded-For on every try is
    still one address to the per-address sign-in limit (daphne --proxy-headers reads the first entry)."""
    # Counts outlive a run for their window in the shared Redis: start from none.
    shared = redis.Redis.from_url(REDIS_URL)
    for key in shared.scan_iter("memoryhub:*signin-failures:*"):
        shared.delete(key)
    with run_cluster(tmp_path, MEMORYHUB_SIGNIN_FAILURES_PER_ADDRESS="3") as cluster:
        statuses = []
        with httpx2.Client(base_url=cluster.proxy.base_url, timeout=30) as http:
            for attempt in range(5):
                page = http.get("/accounts/login/")
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
                assert token is not None, page.text[:500]
                answer = http.post(
                    "/accounts/login/",
                    data={"username": f"nobody{attempt}", "password": "wrong", "csrfmiddlewaretoken": token[1]},
                    headers={"X-Forwarded-For": f"203.0.113.{attempt + 1}"},
                )
                statuses.append(answer.status_code)
        # Three failures from one address (whatever it claimed to be), then refused.
        assert statuses == [200, 200, 200, 429, 429], statuses
