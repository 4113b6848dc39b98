"""OAuth access tokens at the MCP transports, against a real daphne server: the official SDK client
with `Authorization: Bearer <token>` lists the tools, writes and reads a memory in the namespace the
user consented to, and is refused in another; a session follows the (user, app) across refreshed
tokens but no other app; refused tokens and requests without credentials get 401 with the RFC 9728
challenge, which the SDK's own parser reads.

Tokens are made in the server's database (`manage.py shell`) as the authorization server stores
them: a DOT Application, an OAuthConsent and an AccessToken bound to `<origin>/mcp`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest
from mcp import Client, types
from mcp.client.auth.utils import (
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
    extract_scope_from_www_auth,
)
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.mcp_endpoint.conftest import ALL_TOOLS, McpServer
from tests.mcp_endpoint.test_streamable_http import ACCEPT, all_tool_names, initialize_message, rpc

pytestmark = pytest.mark.anyio

MINT = """
import datetime as dt, secrets
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value
from access.models import NamespaceAllowance, OAuthConsent
user, _ = get_user_model().objects.get_or_create(username={username!r})
NamespaceAllowance.objects.get_or_create(user=user, pattern="org:alice:*", defaults={{"permission": "write"}})
app, _ = Application.objects.get_or_create(
    name={app!r}, client_type="public", authorization_grant_type="authorization-code",
    redirect_uris="https://claude.ai/api/mcp/auth_callback", defaults={{"client_secret": "", "hash_client_secret": False}},
)
OAuthConsent.objects.update_or_create(user=user, application=app, defaults={{"grants": {grants!r}}})
raw = secrets.token_urlsafe(30)
token = AccessToken(user=user, application=app, scope="mcp", resource={resource!r},
                    expires=timezone.now() + dt.timedelta(seconds={seconds}))
set_token_value(token, raw)
token.save()
print("MINTED", raw, app.client_id)
"""


def mint(
    server: McpServer,
    *,
    app: str = "Claude",
    grants: list[list[str]] | None = None,
    resource: list[str] | None = None,
    seconds: int = 3600,
) -> tuple[str, str]:
    """(raw access token, client_id) for alice and the app `app`, in the server's database."""
    code = MINT.format(
        username="alice",
        app=app,
        grants=grants if grants is not None else [["org:alice:*", "write"]],
        resource=resource if resource is not None else [f"{server.base_url}/mcp"],
        seconds=seconds,
    )
    output = server.manage("shell", "-c", code).stdout
    (line,) = [line for line in output.splitlines() if line.startswith("MINTED ")]
    _, raw, client_id = line.split()
    return raw, client_id


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def bearer_client(server: McpServer, token: str, *, namespace: str, mode: str = "auto") -> Any:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    transport = streamable_http_client(server.endpoint(namespace=namespace), http_client=http)
    return http, Client(transport, mode=mode)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sdk_with_a_token_lists_writes_reads_and_is_refused_elsewhere(
    mcp_server: McpServer, mode: str
) -> None:
    token, _ = mint(mcp_server)
    namespace = mcp_server.namespace("alice")
    http, client = await bearer_client(mcp_server, token, namespace=namespace, mode=mode)
    async with http, client:
        assert set(await all_tool_names(client)) == ALL_TOOLS
        added = await client.call_tool("add_memory", {"memory_content": "the vault code is 1234", "cube_id": namespace})
        assert not added.is_error, text_of(added)
        found = await client.call_tool("search_memories", {"query": "vault code", "cube_ids": [namespace]})
        assert not found.is_error, text_of(found)
        assert [hit["id"] for hit in (found.structured_content or {})["results"]] == [
            (added.structured_content or {})["id"]
        ]
        elsewhere = mcp_server.namespace("bob")
        refused = await client.call_tool("add_memory", {"memory_content": "bob was here", "cube_id": elsewhere})
        assert refused.is_error
        assert "no write grant" in text_of(refused)
        assert elsewhere in text_of(refused)
        read_refused = await client.call_tool("search_memories", {"query": "x", "cube_ids": [elsewhere]})
        assert read_refused.is_error


async def test_the_history_names_the_connected_app(mcp_server: McpServer) -> None:
    token, client_id = mint(mcp_server, app="History app")
    namespace = mcp_server.namespace("alice")
    http, client = await bearer_client(mcp_server, token, namespace=namespace)
    async with http, client:
        added = await client.call_tool("add_memory", {"memory_content": "tea at noon", "cube_id": namespace})
        assert not added.is_error, text_of(added)
        history = await client.call_tool("memory_history", {"id": (added.structured_content or {})["id"]})
        assert not history.is_error, text_of(history)
        (version,) = (history.structured_content or {})["versions"]
        assert version["key"] == f"key:oauth:{client_id[:10]}"
        assert version["surface"] == "mcp"


def post(server: McpServer, body: Any, token: str | None, **headers: str) -> httpx2.Response:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.post(
        server.url,
        content=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": ACCEPT, **auth, **headers},
        timeout=30,
    )


def test_a_session_follows_the_user_and_app_across_refreshed_tokens_only(mcp_server: McpServer) -> None:
    first, _ = mint(mcp_server, app="Session app")
    refreshed, _ = mint(mcp_server, app="Session app")
    other_app, _ = mint(mcp_server, app="Another app")
    opened = post(mcp_server, initialize_message(), first)
    assert opened.status_code == 200, opened.text
    session = opened.headers["MCP-Session-Id"]
    headers = {"MCP-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    assert post(mcp_server, rpc("notifications/initialized", request_id=None), first, **headers).status_code == 202
    listed = post(mcp_server, rpc("tools/list", request_id=2), refreshed, **headers)
    assert listed.status_code == 200, listed.text
    assert post(mcp_server, rpc("tools/list", request_id=3), other_app, **headers).status_code == 404
    assert post(mcp_server, rpc("tools/list", request_id=4), mcp_server.keys["alice"], **headers).status_code == 404


def assert_challenge(response: httpx2.Response, server: McpServer, *, invalid: bool) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert challenge.endswith(', ApiKey realm="mcp"')
    assert ('error="invalid_token"' in challenge) is invalid
    # What the official SDK reads from it, and where it then looks first.
    metadata = f"{server.base_url}/.well-known/oauth-protected-resource/mcp"
    assert extract_resource_metadata_from_www_auth(response) == metadata
    assert extract_scope_from_www_auth(response) == "mcp"
    assert build_protected_resource_metadata_discovery_urls(metadata, server.url)[0] == metadata


def test_without_credentials_every_transport_answers_401_with_the_challenge(mcp_server: McpServer) -> None:
    assert_challenge(post(mcp_server, initialize_message(), None), mcp_server, invalid=False)
    sse = httpx2.get(f"{mcp_server.base_url}/sse", headers={"Accept": "text/event-stream"}, timeout=30)
    assert_challenge(sse, mcp_server, invalid=False)
    messages = httpx2.post(f"{mcp_server.base_url}/messages?session_id=x", content=b"{}", timeout=30)
    assert_challenge(messages, mcp_server, invalid=False)
    # The metadata the challenge names says where to get a token for /mcp.
    metadata = httpx2.get(f"{mcp_server.base_url}/.well-known/oauth-protected-resource/mcp", timeout=30).json()
    assert metadata["resource"] == mcp_server.url
    assert metadata["authorization_servers"] == [mcp_server.base_url]


def test_refused_tokens_are_invalid_token_and_do_nothing(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    expired, _ = mint(mcp_server, seconds=-5)
    elsewhere, _ = mint(mcp_server, resource=["https://elsewhere.example/mcp"])
    call = rpc(
        "tools/call", {"name": "add_memory", "arguments": {"memory_content": "must not land", "cube_id": namespace}}
    )
    for token in ("garbage", expired, elsewhere):
        assert_challenge(post(mcp_server, initialize_message(), token), mcp_server, invalid=True)
        assert_challenge(post(mcp_server, call, token), mcp_server, invalid=True)
    wrong = post(mcp_server, initialize_message(), elsewhere)
    assert wrong.json()["error"]["message"] == "The access token is not valid for this resource."


async def test_a_token_revoked_at_the_revocation_endpoint_stops_the_client_at_once(mcp_server: McpServer) -> None:
    token, client_id = mint(mcp_server, app="Revoked app")
    namespace = mcp_server.namespace("alice")
    http, client = await bearer_client(mcp_server, token, namespace=namespace, mode="legacy")
    async with http, client:
        before = await client.call_tool("search_memories", {"query": "x", "cube_ids": [namespace]})
        assert not before.is_error, text_of(before)
        revoked = httpx2.post(
            f"{mcp_server.base_url}/oauth/revoke_token/", data={"token": token, "client_id": client_id}, timeout=30
        )
        assert revoked.status_code == 200, revoked.text
        # The SDK surfaces the 401's JSON-RPC error (no OAuth provider configured to refresh).
        with pytest.raises(MCPError, match=r"The access token is invalid, expired or revoked\."):
            await client.call_tool("search_memories", {"query": "x", "cube_ids": [namespace]})


def test_a_stream_opened_with_a_token_ends_when_the_token_is_revoked(mcp_server: McpServer) -> None:
    token, client_id = mint(mcp_server, app="Stream app")
    opened = post(mcp_server, initialize_message(), token)
    assert opened.status_code == 200, opened.text
    session = {"MCP-Session-Id": opened.headers["MCP-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
    assert post(mcp_server, rpc("notifications/initialized", request_id=None), token, **session).status_code == 202
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", **session}
    with httpx2.Client(timeout=20) as http, http.stream("GET", mcp_server.url, headers=headers) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        seen_event = False
        for line in lines:  # past the first event: the stream is open and watching its token
            if line == "" and seen_event:
                break
            seen_event = seen_event or (line != "" and not line.startswith(":"))
        # What revoking the app does (the consent page's "revoke", the admin): its tokens go.
        mcp_server.manage(
            "shell",
            "-c",
            "from oauth2_provider.models import AccessToken; "
            f"AccessToken.objects.filter(application__client_id={client_id!r}).delete()",
        )
        since = time.monotonic()
        # Nothing announces it: the stream's next keep-alive (one second here) re-checks the token.
        for line in lines:
            assert time.monotonic() - since < 10, "the stream outlived its token"
            assert line == "" or line.startswith(":"), line
