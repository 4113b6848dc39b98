"""MCP sessions in the database: bound to their key, saved field by field, live while used."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from mcp_endpoint import protocol, sessions
from mcp_endpoint.models import McpSession
from tests.conftest import Persona


def opened(persona: Persona) -> McpSession:
    connection = protocol.Connection(access=persona.key.to_access(), namespace=persona.namespace)
    return sessions.open_session(access=persona.key.to_access(), connection=connection, transport="http")


def test_session_ids_are_long_random_and_visible_ascii(alice_key: Persona) -> None:
    ids = {opened(alice_key).session_id for _ in range(20)}
    assert len(ids) == 20
    assert all(len(value) >= 43 and all(0x21 <= ord(c) <= 0x7E for c in value) for value in ids)


def test_a_session_is_found_only_with_the_key_that_opened_it(alice_key: Persona, bob_key: Persona) -> None:
    session = opened(alice_key)
    assert sessions.load(session.session_id, alice_key.key.to_access()) is not None
    assert sessions.load(session.session_id, bob_key.key.to_access()) is None
    sessions.end(session)
    assert sessions.load(session.session_id, alice_key.key.to_access()) is None


def test_an_idle_session_ends(alice_key: Persona, settings) -> None:
    session = opened(alice_key)
    McpSession.objects.filter(pk=session.pk).update(last_seen_at=timezone.now() - timedelta(days=2))
    assert sessions.load(session.session_id, alice_key.key.to_access()) is None
    assert McpSession.objects.get(pk=session.pk).ended_at is not None


def test_concurrent_changes_of_one_session_keep_both(alice_key: Persona) -> None:
    """Two requests loaded the session at once: one sends `initialized`, the other subscribes."""
    session = opened(alice_key)
    first = sessions.load(session.session_id, alice_key.key.to_access())
    second = sessions.load(session.session_id, alice_key.key.to_access())
    assert first is not None
    assert second is not None
    initialized = sessions.connection_for(first, alice_key.key.to_access())
    initialized.initialized = initialized.changed = True
    subscribed = sessions.connection_for(second, alice_key.key.to_access())
    subscribed.subscribed = subscribed.changed = True
    sessions.save(first, initialized)
    sessions.save(second, subscribed)
    stored = McpSession.objects.get(pk=session.pk)
    assert stored.initialized
    assert stored.subscribed


def test_only_live_subscribed_sessions_of_the_namespace_are_notified(alice_key: Persona, bob_key: Persona) -> None:
    live, idle, ended, other = opened(alice_key), opened(alice_key), opened(alice_key), opened(bob_key)
    McpSession.objects.filter(pk__in=[live.pk, idle.pk, ended.pk, other.pk]).update(subscribed=True)
    McpSession.objects.filter(pk=idle.pk).update(last_seen_at=timezone.now() - timedelta(days=2))
    sessions.end(ended)
    assert sessions.subscribers(alice_key.namespace) == [live.session_id]
    assert sessions.subscribers(bob_key.namespace) == [other.session_id]
