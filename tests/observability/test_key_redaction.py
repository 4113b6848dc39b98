"""API keys never reach a log: a real daphne process is sent keys in query strings (where SSE
clients must put them, and where REST clients put them by mistake), on routes that answer 200,
401, 403 and 404, and its access log and its application log (plain and JSON) are read back.

Issue 16, item 5: daphne's access log wrote the whole `?key=` of every `/sse` and `/api/mcp/sse`
request, and Django's JSON log lines of 4xx answers carried the request with its query string.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx2
import pytest

from tests.mcp_endpoint.conftest import ROOT, new_server, prepare_database

# Not a MemoryHub key: redacted by the parameter's name, not by its shape.
FOREIGN_SECRET = "sk-live-0123456789abcdefNOTAHUBKEY"


def start(data_dir: Path, log_format: str) -> tuple[str, str, subprocess.Popen[bytes]]:
    server = new_server(data_dir, MEMORYHUB_LOG_FORMAT=log_format)
    prepare_database(server)  # migrated, with a key for alice (org:alice:*=write)
    secret = server.keys["alice"]
    port = server.base_url.rsplit(":", 1)[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-v", "1", "-b", "127.0.0.1", "-p", port, "memoryhub.asgi:application"],
        cwd=ROOT,
        env=server.env,
        stdout=open(data_dir / "access.log", "wb"),  # noqa: SIM115 - closed with the process
        stderr=open(data_dir / "app.log", "wb"),  # noqa: SIM115
    )
    base = server.base_url
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return base, secret, process
        except OSError:
            assert process.poll() is None, (data_dir / "app.log").read_text()
            assert time.monotonic() < deadline, (data_dir / "app.log").read_text()
            time.sleep(0.05)


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_no_key_reaches_the_access_log_or_the_application_log(tmp_path: Path, log_format: str) -> None:
    base, secret, process = start(tmp_path, log_format)
    stream = {"Accept": "text/event-stream"}
    try:
        with httpx2.Client(timeout=10) as http:
            # SSE streams opened with ?key= (the documented way), closed by the client.
            for path in ("/sse", "/api/mcp/sse"):
                with http.stream("GET", f"{base}{path}?key={secret}", headers=stream) as response:
                    assert response.status_code == 200
                    next(response.iter_lines())
            # The same URLs refused: 401 without the SSE Accept (?key= is for SSE only), 401 with a
            # wrong key; then keys put in REST and page query strings by mistake (401, 404).
            assert http.get(f"{base}/sse?key={secret}").status_code == 401
            assert http.get(f"{base}/api/mcp/sse?key={secret}x", headers=stream).status_code == 401
            assert http.get(f"{base}/v1/memory/banks/list?key={secret}&api_key={FOREIGN_SECRET}").status_code == 401
            assert http.get(f"{base}/no/such/page?key={secret}&token={FOREIGN_SECRET}").status_code == 404
            assert http.get(f"{base}/v1/graph/read_graph?access_token={secret}").status_code in (401, 405)
            # A key in the path, where nothing expects one.
            assert http.get(f"{base}/{secret}").status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=10)
    access = (tmp_path / "access.log").read_text()
    application = (tmp_path / "app.log").read_text()
    for log in (access, application):
        assert secret not in log
        assert secret.split("_", 2)[2][:12] not in log  # not even part of its secret half (which may hold "_")
        assert FOREIGN_SECRET not in log
    # The lines are there, with what they are for: path, which parameters, status.
    prefix = "_".join(secret.split("_", 2)[:2])  # mh_<prefix>: public, shown on the key pages
    assert '"GET /no/such/page?key=[redacted]&token=[redacted]' in access
    assert '"GET /sse?key=[redacted]' in access
    assert '"GET /api/mcp/sse?key=[redacted]' in access
    assert "/v1/memory/banks/list?key=[redacted]&api_key=[redacted]" in access
    assert f"GET /{prefix}_[redacted]" in access
    assert "Not Found: /no/such/page" in application
