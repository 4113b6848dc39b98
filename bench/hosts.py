"""Server nodes as separate hosts on one machine: a network namespace per node, joined to this
one by a veth pair, each with its own address, data directory and processes.

A node reaches PostgreSQL and Redis the way a second machine would, over the network: each
node's link has a relay (socat) on this side, at the link's address, to the local PostgreSQL
and Redis (which listen on 127.0.0.1 only; nothing of their configuration changes). nginx runs
here, in front of the nodes' addresses. Used by tests/multinode and `bench/load.py --nodes`.

Needs root (ip netns), iproute2, socat and nginx (the Makefile installs socat and nginx).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOCAT = shutil.which("socat") or "/usr/bin/socat"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NODE_PORT = 8000
# 10.<n>.<node>.0/24: this side .1, the node .2 (RFC 1918 space the machine does not route), with
# <n> 230 for a benchmark and 231 + N for pytest-xdist worker gwN: two workers' hosts must not
# share addresses, or one worker's requests reach the other's nodes (and their database).


def subnet() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"10.{231 + int(worker[2:])}" if worker.startswith("gw") and worker[2:].isdigit() else "10.230"


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


@dataclass
class Host:
    """One node's namespace and link: it is `address`, and sees this machine at `gateway`."""

    index: int
    name: str
    gateway: str
    address: str
    relays: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def exec(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]


def require_tools() -> None:
    missing = [tool for tool in ("ip", SOCAT, NGINX) if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: `make test` installs socat and nginx (apt)")
    if os.geteuid() != 0:
        raise RuntimeError("network namespaces need root (ip netns add)")


def _remove(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "link", "del", f"{name}h"], capture_output=True)


@contextmanager
def hosts(count: int, *, relay_ports: tuple[int, ...] = (5432, 6379)) -> Iterator[list[Host]]:
    """`count` hosts, each with relays from its gateway to this machine's `relay_ports`."""
    require_tools()
    tag = f"mh{os.getpid() % 100000}"
    made: list[Host] = []
    try:
        for index in range(count):
            name = f"{tag}n{index}"
            _remove(name)
            prefix = subnet()
            host = Host(index, name, gateway=f"{prefix}.{index}.1", address=f"{prefix}.{index}.2")
            made.append(host)
            run("ip", "netns", "add", name)
            run("ip", "link", "add", f"{name}h", "type", "veth", "peer", "name", f"{name}n")
            run("ip", "link", "set", f"{name}n", "netns", name)
            run("ip", "addr", "add", f"{host.gateway}/24", "dev", f"{name}h")
            run("ip", "link", "set", f"{name}h", "up")
            run(*host.exec("ip", "addr", "add", f"{host.address}/24", "dev", f"{name}n"))
            run(*host.exec("ip", "link", "set", f"{name}n", "up"))
            run(*host.exec("ip", "link", "set", "lo", "up"))
            for port in relay_ports:
                host.relays.append(
                    subprocess.Popen(
                        [SOCAT, f"TCP-LISTEN:{port},bind={host.gateway},fork,reuseaddr", f"TCP:127.0.0.1:{port}"],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        for host in made:
            for port in relay_ports:
                _wait_for_port(host.gateway, port)
        yield made
    finally:
        for host in made:
            for relay in host.relays:
                relay.terminate()
            for relay in host.relays:
                relay.wait(timeout=10)
            _remove(host.name)


def _wait_for_port(address: str, port: int, timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class Node:
    """A MemoryHub server process on a host (daphne, as `make run-cluster` runs them)."""

    host: Host
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host.address}:{NODE_PORT}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "daphne.log", "a") as log:
            self.process = subprocess.Popen(
                self.host.exec(
                    sys.executable,
                    "-m",
                    "daphne",
                    "--proxy-headers",
                    "-b",
                    self.host.address,
                    "-p",
                    str(NODE_PORT),
                    "memoryhub.asgi:application",
                ),
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        self.wait_until_serving()

    def wait_until_serving(self, timeout: float = 90) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"node {self.host.name} did not start; see {self.data_dir / 'daphne.log'}")

    def kill(self) -> None:
        """SIGKILL, as a machine that loses power or an OOM kill: no shutdown code runs."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def node_env(host: Host, data_dir: Path, *, database: str, redis_db: int, **extra: str) -> dict[str, str]:
    """A node's settings: PostgreSQL and Redis through its gateway, its own data directory."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "memoryhub.settings",
        "MEMORYHUB_DATA_DIR": str(data_dir),
        "MEMORYHUB_DATABASE_URL": f"postgres://postgres@{host.gateway}:5432/{database}",
        "MEMORYHUB_REDIS_URL": f"redis://{host.gateway}:6379/{redis_db}",
        "MEMORYHUB_ALLOWED_HOSTS": f"127.0.0.1,localhost,{host.address}",
        "MEMORYHUB_RATE_LIMIT_PER_MINUTE": "0",
    }
    for name in ("MEMORYHUB_TEST_DB_PATH", "MEMORYHUB_DB_PATH"):
        env.pop(name, None)
    env.update(extra)
    return env


@dataclass
class Proxy:
    """nginx on this machine in front of the nodes (the configuration of deploy/run-cluster.sh)."""

    run_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, upstreams: list[str]) -> None:
        (self.run_dir / "tmp").mkdir(parents=True, exist_ok=True)
        servers = "".join(f"        server {upstream} max_fails=1 fail_timeout=5s;\n" for upstream in upstreams)
        conf = self.run_dir / "nginx.conf"
        conf.write_text(
            f"""worker_processes 1;
pid {self.run_dir}/nginx.pid;
error_log {self.run_dir}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {self.run_dir}/tmp/client_body;
    proxy_temp_path {self.run_dir}/tmp/proxy;
    fastcgi_temp_path {self.run_dir}/tmp/fastcgi;
    uwsgi_temp_path {self.run_dir}/tmp/uwsgi;
    scgi_temp_path {self.run_dir}/tmp/scgi;
    access_log off;
    upstream memoryhub {{
{servers}        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 16m;
        location / {{
            proxy_pass http://memoryhub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 1h;
            proxy_request_buffering off;
            # A node that dies mid-request: an idempotent request goes to the next node.
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
        }}
    }}
}}
"""
        )
        self.process = subprocess.Popen([NGINX, "-c", str(conf), "-e", str(self.run_dir / "error.log")])
        _wait_for_port("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def nodes_behind_nginx(
    base_dir: Path, count: int, *, database: str, redis_db: int, proxy_port: int, **extra_env: str
) -> Iterator[tuple[list[Node], Proxy]]:
    """`count` nodes on hosts of their own sharing `database` and Redis, behind nginx."""
    # One secret for every node, as the deployment docs say: sessions, CSRF tokens and OAuth
    # state signed by one node are checked by another.
    extra_env.setdefault("MEMORYHUB_SECRET_KEY", secrets.token_urlsafe(50))
    with ExitStack() as stack:
        made = stack.enter_context(hosts(count))
        nodes = []
        for host in made:
            data_dir = base_dir / f"node{host.index}"
            nodes.append(
                Node(host, data_dir, node_env(host, data_dir, database=database, redis_db=redis_db, **extra_env))
            )
        for node in nodes:
            stack.callback(node.stop)
        for node in nodes:
            node.start()
        proxy = Proxy(base_dir / "nginx", proxy_port)
        stack.callback(proxy.stop)
        proxy.start([f"{node.host.address}:{NODE_PORT}" for node in nodes])
        yield nodes, proxy
