"""An open stream does not outlive its key (issue 16, item 7): revoking a key, or its expiry,
ends every stream it holds open — the Streamable HTTP GET stream, a 2026-07-28
`subscriptions/listen` stream, the legacy `/sse` stream and the marketplace `/api/mcp/sse`
stream — and its MCP sessions, on every server process.

Keys are revoked the way operators do it, with `manage.py revoke_api_key` in a process of its
own. Alone (no Redis), nothing can message the server, so each stream re-checks its key with its
keep-alive (one second here). With Redis (tests/cluster/test_revocation_across_processes.py)
the revocation reaches every process at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from tests.mcp_endpoint.conftest import McpServer, running_servers
from tests.mcp_endpoint.test_streamable_http import Raw, modern_headers, modern_message

# A failure detector, not a performance bound.
ENDS_WITHIN = 10.0


def new_key(server: McpServer, user: str, *extra: str) -> str:
    return server.manage(
        "create_api_key",
        "--user",
        user,
        "--grant",
        f"org:{user}:*=write",
        "--default-namespace",
        f"org:{user}:n",
        *extra,
    ).stdout.strip()


@dataclass
class Stream:
    name: str
    response: httpx2.Response
    lines: Iterator[str]


@contextmanager
def streams_of(holders: list[McpServer], persona: str, secret: str, http: httpx2.Client) -> Iterator[list[Stream]]:
    """Every kind of long-lived stream the key can open, on each server in `holders`, each read
    past its first event (so it is known to be open and registered)."""
    with ExitStack() as stack:
        opened: list[Stream] = []
        for index, server in enumerate(holders):
            server.keys[persona] = secret
            raw = Raw(server, http)
            session = raw.open_session(persona)
            get = stack.enter_context(http.stream("GET", server.url, headers=raw.stream_headers(session, persona)))
            listen = stack.enter_context(
                http.stream(
                    "POST",
                    server.url,
                    content=json.dumps(modern_message("subscriptions/listen", {"notifications": {}})).encode(),
                    headers={
                        "Content-Type": "application/json",
                        **modern_headers(server, "subscriptions/listen", persona=persona),
                    },
                )
            )
            sse = {"Accept": "text/event-stream"}
            legacy = stack.enter_context(http.stream("GET", f"{server.base_url}/sse?key={secret}", headers=sse))
            market = stack.enter_context(http.stream("GET", f"{server.base_url}/api/mcp/sse?key={secret}", headers=sse))
            for name, response in (("GET /mcp", get), ("listen", listen), ("/sse", legacy), ("/api/mcp/sse", market)):
                assert response.status_code == 200, (name, response.read())
                stream = Stream(f"{name} on server {index}", response, response.iter_lines())
                seen_event = False
                for line in stream.lines:
                    if line == "" and seen_event:
                        break
                    seen_event = seen_event or (line != "" and not line.startswith(":"))
                opened.append(stream)
        yield opened


def assert_all_end(streams: list[Stream], since: float) -> None:
    """Each stream ends (the server closes it) within ENDS_WITHIN seconds of `since`; keep-alive
    comments may come first, nothing else may."""
    for stream in streams:
        try:
            for line in stream.lines:
                assert time.monotonic() - since < ENDS_WITHIN, f"{stream.name} still open"
                assert line == "" or line.startswith(":"), (stream.name, line)
        except httpx2.ReadTimeout:
            pytest.fail(f"{stream.name} still open after its key ended")


def assert_all_open(streams: list[Stream]) -> None:
    """Each stream still sends its keep-alives (one a second here)."""
    for stream in streams:
        assert next(stream.lines, None) is not None, f"{stream.name} ended"


def test_revoking_a_key_ends_its_open_streams_and_sessions(tmp_path: Path) -> None:
    with (
        running_servers(tmp_path, MEMORYHUB_MARKETPLACE_HEARTBEAT_SECONDS="1") as (server,),
        httpx2.Client(timeout=ENDS_WITHIN + 5) as http,
    ):
        secret = new_key(server, "dave")
        other = new_key(server, "erin")
        with streams_of([server], "dave", secret, http) as streams, streams_of([server], "erin", other, http) as others:
            server.manage("revoke_api_key", secret)
            assert_all_end(streams, time.monotonic())
            assert_all_open(others)
        # The revoked key's sessions are over, not just refused.
        sessions = server.manage(
            "shell",
            "-c",
            "from mcp_endpoint.models import McpSession as S; print(S.objects.filter(key__owner__username='dave', ended_at=None).count())",
        )
        assert sessions.stdout.strip().splitlines()[-1] == "0"


def test_an_expiring_key_ends_its_streams_when_it_expires(tmp_path: Path) -> None:
    # Keep-alives far apart: only the expiry itself can end the streams in time.
    with (
        running_servers(
            tmp_path, MEMORYHUB_MCP_KEEPALIVE_SECONDS="300", MEMORYHUB_MARKETPLACE_HEARTBEAT_SECONDS="300"
        ) as (server,),
        httpx2.Client(timeout=ENDS_WITHIN + 5) as http,
    ):
        secret = new_key(server, "frank")
        expiry = 6
        server.manage(
            "shell",
            "-c",
            "import datetime as dt; from django.utils import timezone; from access.models import ApiKey; "
            f"ApiKey.objects.filter(owner__username='frank').update(expires_at=timezone.now() + dt.timedelta(seconds={expiry}))",
        )
        opened = time.monotonic()
        with streams_of([server], "frank", secret, http) as streams:
            assert time.monotonic() - opened < expiry, "the streams took too long to open for this test"
            assert_all_end(streams, opened + expiry)
