"""Every console route refuses a signed-in user without the grant its operation needs, through the
whole Django stack, and shows nothing of a namespace the user cannot read.

The routes are walked from the URL configuration (`console.urls`), so a console route added later
must get an example here or this fails. Bob (his own space; no allowance on org:alice:*) aims each
request at Alice's namespace and ids; Carol (allowed to read org:alice:*) aims each writing request
there. Alice's data is the same afterwards. Anonymous visitors are sent to sign in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from django.urls import URLPattern, get_resolver

from access.models import NamespaceAllowance
from access.operations import perform
from graph.models import ImportJob
from memory.services import NewMemory
from tests.conftest import ALICE, PASSWORD, Persona
from tests.grants import SECRET

pytestmark = pytest.mark.django_db

NS = quote(ALICE, safe="")


@dataclass(frozen=True)
class Seeded:
    memory: str  # mem_<n> of Alice's free memory holding SECRET
    job: int  # Alice's import job


@dataclass(frozen=True)
class Request:
    method: str  # GET or POST
    path: str
    data: dict[str, Any] | None = None
    # What a user without the grant may get: a refusal (403/404), or a page that shows none of it.
    refused: tuple[int, ...] = (403, 404)


Example = Callable[[Seeded], Request]

# route (as in the URL configuration, without the /console/ prefix) -> the request Bob makes.
EXAMPLES: dict[str, Example] = {
    "": lambda s: Request("GET", "/console/", refused=(200,)),
    "recent.json": lambda s: Request("GET", "/console/recent.json", refused=(200,)),
    "search": lambda s: Request("GET", f"/console/search?q=vault+code&namespace={NS}", refused=(200, 403)),
    "namespaces/<str:namespace>/memories": lambda s: Request("GET", f"/console/namespaces/{NS}/memories"),
    "memories/<str:id>": lambda s: Request("GET", f"/console/memories/{s.memory}"),
    "memories/<str:id>/edit": lambda s: Request("POST", f"/console/memories/{s.memory}/edit", {"text": "bob"}),
    "memories/<str:id>/supersede": lambda s: Request(
        "POST", f"/console/memories/{s.memory}/supersede", {"text": "bob"}
    ),
    "memories/<str:id>/restore": lambda s: Request("POST", f"/console/memories/{s.memory}/restore", {"version": "1"}),
    "memories/<str:id>/delete": lambda s: Request("POST", f"/console/memories/{s.memory}/delete", {"confirm": "yes"}),
    "namespaces/<str:namespace>/graph": lambda s: Request("GET", f"/console/namespaces/{NS}/graph"),
    "namespaces/<str:namespace>/graph.json": lambda s: Request(
        "GET", f"/console/namespaces/{NS}/graph.json?mode=sample"
    ),
    "namespaces/<str:namespace>/entities/<anytext:name>": lambda s: Request(
        "GET", f"/console/namespaces/{NS}/entities/Ada"
    ),
    "transfer/": lambda s: Request("GET", "/console/transfer/", refused=(200,)),
    "transfer/import": lambda s: Request("POST", "/console/transfer/import", {"namespace": ALICE}),
    "transfer/imports/<int:job>": lambda s: Request("GET", f"/console/transfer/imports/{s.job}"),
    "transfer/imports/<int:job>.json": lambda s: Request("GET", f"/console/transfer/imports/{s.job}.json"),
    "namespaces/<str:namespace>/export": lambda s: Request("GET", f"/console/namespaces/{NS}/export?format=jsonl"),
}
# Routes that change something: Carol, who may read Alice's namespace but not write it, is refused.
WRITES = {route for route in EXAMPLES if EXAMPLES[route](Seeded("mem_1", 1)).method == "POST"}


def console_routes() -> list[str]:
    (resolver,) = [p for p in get_resolver().url_patterns if str(p.pattern) == "console/"]
    return sorted(str(p.pattern) for p in resolver.url_patterns if isinstance(p, URLPattern))


@pytest.fixture
def seeded(alice_key: Persona) -> Seeded:
    access = alice_key.key.to_access()
    perform(access, "create_entities", namespace=ALICE, entities=[{"name": "Ada", "entityType": "person"}])
    perform(access, "add_observations", namespace=ALICE, observations=[{"entityName": "Ada", "contents": [SECRET]}])
    (written,) = perform(access, "memory_write", namespace=ALICE, memories=[NewMemory(text=SECRET)])
    job = ImportJob.objects.create(user=alice_key.user, namespace=ALICE, state="done", filename="memory.jsonl")
    return Seeded(memory=str(written["id"]), job=job.pk)


def _state(alice_key: Persona) -> tuple[Any, ...]:
    access = alice_key.key.to_access()
    return (
        perform(access, "export_graph", namespace=ALICE),
        perform(access, "memory_list", namespace=ALICE, limit=100),
        perform(access, "memory_history", id=_first_memory(access)),
    )


def _first_memory(access: Any) -> str:
    return str(perform(access, "memory_list", namespace=ALICE, limit=1)["memories"][0]["id"])


def _signed_in(user: AbstractUser) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def _send(client: Client, request: Request) -> Any:
    if request.method == "POST":
        return client.post(request.path, request.data or {})
    return client.get(request.path)


def test_every_console_route_has_an_example() -> None:
    assert console_routes() == sorted(EXAMPLES), "give each console route an example request here"


@pytest.mark.parametrize("route", sorted(EXAMPLES))
def test_a_user_without_the_grant_sees_and_changes_nothing(
    route: str, seeded: Seeded, alice_key: Persona, bob_key: Persona
) -> None:
    before = _state(alice_key)
    request = EXAMPLES[route](seeded)
    response = _send(_signed_in(bob_key.user), request)
    assert response.status_code in request.refused, (route, response.status_code)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert SECRET.encode() not in body, route
    if response.status_code == 200:
        assert ALICE.encode() not in body, route
    assert _state(alice_key) == before


@pytest.mark.parametrize("route", sorted(WRITES))
def test_a_read_only_user_cannot_write(route: str, seeded: Seeded, alice_key: Persona, carol_key: Persona) -> None:
    NamespaceAllowance.objects.create(user=carol_key.user, pattern="org:alice:*", permission="read")
    before = _state(alice_key)
    response = _send(_signed_in(carol_key.user), EXAMPLES[route](seeded))
    assert response.status_code in (403, 404), (route, response.status_code)
    assert _state(alice_key) == before


@pytest.mark.parametrize("route", sorted(EXAMPLES))
def test_an_anonymous_visitor_is_sent_to_sign_in(route: str, seeded: Seeded, alice_key: Persona) -> None:
    before = _state(alice_key)
    response = _send(Client(), EXAMPLES[route](seeded))
    assert response.status_code in (302, 401, 403), (route, response.status_code)
    if response.status_code == 302:
        assert response["Location"].startswith("/accounts/login/"), route
    assert _state(alice_key) == before
