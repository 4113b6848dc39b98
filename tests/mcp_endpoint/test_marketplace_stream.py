"""The marketplace SSE stream in process, where the channel layer can be inspected: it joins its
user's group to hear tool-list changes, and leaves it (nothing held) when the client goes."""

from __future__ import annotations

import json

import pytest
from channels.layers import get_channel_layer
from channels.testing import ApplicationCommunicator

from mcp_endpoint.notifications import marketplace_group
from mcp_endpoint.routing import urlpatterns
from tests.conftest import Persona


def sse_app():
    from channels.routing import URLRouter

    return URLRouter(urlpatterns)


def members(user_id: int) -> set[str]:
    layer = get_channel_layer()
    return set(layer.groups.get(marketplace_group(user_id), {}))


@pytest.mark.django_db(transaction=True)
@pytest.mark.anyio
async def test_the_stream_joins_its_users_group_and_leaves_it_on_disconnect(alice_key: Persona) -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/mcp/sse",
        "query_string": f"key={alice_key.secret}".encode(),
        # Every HTTP/1.1 request names its host; the MCP routes refuse one not in ALLOWED_HOSTS.
        "headers": [(b"host", b"127.0.0.1")],
    }
    stream = ApplicationCommunicator(sse_app(), scope)
    await stream.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await stream.receive_output(timeout=5)
    assert start["status"] == 200
    assert (dict(start["headers"])[b"Content-Type"]) == b"text/event-stream"
    await stream.receive_output(timeout=5)  # the empty first chunk that opens the stream
    event = await stream.receive_output(timeout=5)
    established = json.loads(event["body"].decode().removeprefix("data: ").strip())
    assert established["method"] == "connection/established"
    assert established["params"]["connectionId"].startswith(f"{alice_key.user.pk}_")
    assert len(members(alice_key.user.pk)) == 1

    # A tool-list change of this user reaches the stream.
    await get_channel_layer().group_send(
        marketplace_group(alice_key.user.pk),
        {"type": "mcp.message", "message": {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}},
    )
    note = await stream.receive_output(timeout=5)
    assert b"notifications/tools/list_changed" in note["body"]

    await stream.send_input({"type": "http.disconnect"})
    await stream.wait(timeout=5)
    assert members(alice_key.user.pk) == set()
