"""Calls per key and day: counted in memory where a key is authenticated, added to
access_keyusageday by `flush_usage` (one upsert), shown on /console/ to the key's owner only."""

from __future__ import annotations

import asyncio

from channels.testing import HttpCommunicator
from django.test import Client
from django.utils import timezone

from access import authentication, selectors
from access.models import KeyUsageDay
from console.live import application as live_application
from tests.conftest import Persona


def _calls(client: Client, persona: Persona, count: int) -> None:
    for _ in range(count):
        response = client.post("/v1/memory/search", {"query": "x"}, content_type="application/json", **persona.headers)
        assert response.status_code == 200, response.content


def test_calls_are_counted_per_key_and_day_and_flushed_in_one_go(
    client: Client, alice_key: Persona, bob_key: Persona
) -> None:
    authentication.flush_usage()
    KeyUsageDay.objects.all().delete()
    _calls(client, alice_key, 3)
    _calls(client, bob_key, 1)
    assert authentication.flush_usage() == 2
    assert authentication.flush_usage() == 0  # nothing counted since
    today = timezone.now().date()
    counts = dict(KeyUsageDay.objects.filter(day=today).values_list("key_id", "calls"))
    assert counts == {alice_key.key.pk: 3, bob_key.key.pk: 1}
    _calls(client, alice_key, 2)
    authentication.flush_usage()  # added to the day's row (ON CONFLICT ... calls + excluded.calls)
    assert KeyUsageDay.objects.get(key=alice_key.key, day=today).calls == 5


def test_calls_of_a_deleted_key_are_dropped(client: Client, alice_key: Persona) -> None:
    authentication.flush_usage()
    _calls(client, alice_key, 1)
    alice_key.key.delete()
    assert authentication.flush_usage() == 1
    assert not KeyUsageDay.objects.exists()


def test_usage_lists_the_users_own_keys_and_everything_for_an_operator(
    client: Client, alice_key: Persona, bob_key: Persona, root_key: Persona
) -> None:
    authentication.flush_usage()
    KeyUsageDay.objects.all().delete()
    _calls(client, alice_key, 2)
    _calls(client, bob_key, 4)
    authentication.flush_usage()

    alice_usage = selectors.key_usage(alice_key.user)
    assert [row["prefix"] for row in alice_usage] == [alice_key.key.prefix]
    assert alice_usage[0]["total"] == 2
    assert len(alice_usage[0]["days"]) == 30
    assert alice_usage[0]["days"][-1] == {"day": timezone.now().date(), "calls": 2}
    assert [row["prefix"] for row in selectors.key_usage(root_key.user)] == [bob_key.key.prefix, alice_key.key.prefix]

    client.force_login(alice_key.user)
    page = client.get("/console/").content.decode()
    assert alice_key.key.prefix in page
    assert bob_key.key.prefix not in page
    assert f"Calls per day with key alice&#x27;s key ({alice_key.key.prefix}), last 30 days: 2 in all" in page
    client.force_login(root_key.user)
    page = client.get("/console/").content.decode()
    assert alice_key.key.prefix in page
    assert bob_key.key.prefix in page
    assert "Owner bob" in page


def _live(headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    async def call() -> dict[str, object]:
        communicator = HttpCommunicator(live_application(), "GET", "/console/live", headers=headers)
        return await communicator.get_response(timeout=5)

    return asyncio.run(call())


def test_the_live_stream_refuses_anonymous_and_foreign_hosts_and_origins(db) -> None:
    assert _live([(b"host", b"localhost")])["status"] == 403
    assert _live([(b"host", b"localhost"), (b"cookie", b"sessionid=not-a-session")])["status"] == 403
    assert _live([(b"host", b"evil.example")])["status"] == 403
    foreign = _live([(b"host", b"localhost"), (b"origin", b"https://evil.example")])
    assert foreign["status"] == 403
