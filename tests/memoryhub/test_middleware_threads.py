"""Under ASGI, Django's middleware stack runs in one thread per request (kernel/middleware.py):
a request crosses between the event loop and a thread a handful of times, not twice per
middleware. In process, through Django's ASGI handler."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref import sync
from channels.testing import HttpCommunicator
from django.conf import settings
from django.core.asgi import get_asgi_application

from tests.conftest import Persona

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]


@pytest.fixture
def hops() -> Iterator[list[str]]:
    """The thread each sync function the request runs through `sync_to_async` ran on."""
    seen: list[str] = []
    original = sync.SyncToAsync.__call__

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        def where() -> None:
            seen.append(threading.current_thread().name)

        func = self.func

        def run(*inner_args: Any, **inner_kwargs: Any) -> Any:
            where()
            return func(*inner_args, **inner_kwargs)

        self.func = run
        try:
            return await original(self, *args, **kwargs)
        finally:
            self.func = func

    sync.SyncToAsync.__call__ = counted
    try:
        yield seen
    finally:
        sync.SyncToAsync.__call__ = original


def test_the_sync_only_middleware_is_innermost() -> None:
    assert settings.MIDDLEWARE[-1] == "kernel.middleware.OneThreadMiddleware"


async def test_a_rest_call_enters_a_thread_a_handful_of_times(alice_key: Persona, hops: list[str]) -> None:
    body = json.dumps({"namespace": alice_key.namespace, "query": "anything"}).encode()
    headers = [
        (b"host", b"127.0.0.1"),
        (b"x-api-key", alice_key.secret.encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    # Django's own ASGI handler, to which memoryhub/asgi.py routes REST (importing that module
    # would start the server's background threads in the test process).
    application = get_asgi_application()
    response = await HttpCommunicator(
        application, "POST", "/v1/graph/search_nodes", body=body, headers=headers
    ).get_response()
    assert response["status"] == 200, response["body"]
    # The middleware stack, the view, and the request_started / request_finished receivers: each
    # entered once. With every middleware in async mode it was fifteen.
    assert 0 < len(hops) <= 6, hops
    assert len(set(hops)) == 1  # all on the request's own thread
