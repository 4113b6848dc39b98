"""The SQLite upkeep and MCP session services, in this process (PostgreSQL's upkeep:
tests/kernel/test_db_maintenance.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from graph import services as graph_services
from graph.sql import db
from kernel import db_maintenance
from mcp_endpoint import sessions
from mcp_endpoint.models import McpSession
from tests.maintenance.helpers import memories, new_namespace

SQLITE_UPKEEP = pytest.mark.sqlite_only(
    reason="WAL checkpoints and FTS5 merging are SQLite's; PostgreSQL's upkeep: tests/kernel/test_db_maintenance.py"
)


@SQLITE_UPKEEP
@pytest.mark.django_db
def test_a_checkpoint_refuses_to_run_inside_a_transaction():
    # The test runs inside one; a checkpoint there could only ever report "busy".
    with pytest.raises(RuntimeError, match="inside a transaction"):
        db_maintenance.wal_checkpoint(mode="TRUNCATE")


@SQLITE_UPKEEP
def test_a_checkpoint_mode_is_one_sqlite_knows():
    with pytest.raises(ValueError, match="unknown checkpoint mode"):
        db_maintenance.wal_checkpoint(mode="EVERYTHING")


@pytest.mark.django_db
def test_session_purge_keeps_live_sessions(settings):
    settings.MEMORYHUB_MCP_SESSION_IDLE_SECONDS = 3600
    fresh = McpSession.objects.create(session_id=uuid.uuid4().hex, transport="tcp")
    recent = McpSession.objects.create(session_id=uuid.uuid4().hex, transport="tcp")
    McpSession.objects.filter(pk=recent.pk).update(last_seen_at=timezone.now() - timedelta(minutes=59))
    idle = McpSession.objects.create(session_id=uuid.uuid4().hex, transport="tcp")
    McpSession.objects.filter(pk=idle.pk).update(last_seen_at=timezone.now() - timedelta(minutes=61))
    ended = McpSession.objects.create(session_id=uuid.uuid4().hex, transport="sse")
    sessions.end(ended)

    assert sessions.purge() == 2
    assert sorted(McpSession.objects.values_list("pk", flat=True)) == sorted([fresh.pk, recent.pk])
    assert sessions.purge() == 0


@SQLITE_UPKEEP
@pytest.mark.django_db(transaction=True)
def test_fts_optimize_returns_the_pages_deletes_freed_to_the_file_system():
    ns = new_namespace()
    memories(ns, [f"a long enough memory to fill some pages, number {i} " * 8 for i in range(300)])
    graph_services.clear_memories(namespace=ns)
    assert db().execute("PRAGMA freelist_count").fetchone()[0] > 10

    result = db_maintenance.fts_optimize()
    assert result["freedPages"] > 10
    assert db().execute("PRAGMA freelist_count").fetchone()[0] == 0
