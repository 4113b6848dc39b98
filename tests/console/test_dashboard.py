"""The console's overview (/console/, recent.json) and its reads (namespace_growth, recent_changes,
embedding_backlog): each user sees the namespaces they may read and nothing of anyone else's."""

from __future__ import annotations

import pytest
from django.test import Client

from access.models import NamespaceAllowance
from access.operations import perform
from access.permissions import Access, Grant, Permission
from graph import overview
from memory.services import NewMemory
from tests.conftest import ALICE, BOB, Persona
from vectors.models import PendingEmbedding

HOSTILE = '<script>window.__pwned = 1</script>"><img src=x onerror=alert(1)>'


def _allow(persona: Persona, pattern: str) -> None:
    NamespaceAllowance.objects.create(user=persona.user, pattern=pattern, permission="write")


def _write(persona: Persona, text: str, namespace: str | None = None) -> None:
    perform(
        persona.key.to_access(),
        "memory_write",
        namespace=namespace or persona.namespace,
        memories=[NewMemory(text=text)],
        dedupe=False,
    )


@pytest.fixture
def tenants(alice_key: Persona, bob_key: Persona) -> tuple[Persona, Persona]:
    _allow(alice_key, "org:alice:*")
    _allow(bob_key, "org:bob:*")
    _write(alice_key, f"alice remembers {HOSTILE}")
    _write(bob_key, "bob's secret plan")
    perform(
        alice_key.key.to_access(),
        "create_entities",
        namespace=ALICE,
        entities=[{"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]}],
    )
    return alice_key, bob_key


def test_the_overview_shows_only_the_users_namespaces(client: Client, tenants: tuple[Persona, Persona]) -> None:
    alice, _ = tenants
    client.force_login(alice.user)
    response = client.get("/console/")
    assert response.status_code == 200
    page = response.content.decode()
    assert ALICE in page
    assert BOB not in page
    assert "bob&#x27;s secret plan" not in page
    assert "secret plan" not in page
    # Counts, links to the namespace's pages, the growth chart with its accessible name and numbers.
    assert "/console/namespaces/org:alice:notes/graph" in page
    assert "/console/namespaces/org:alice:notes/memories" in page
    assert "/console/search?namespace=org%3Aalice%3Anotes" in page
    assert 'role="img" aria-label="Objects created per day in org:alice:notes, last 30 days: 3 in all' in page
    # Hostile text is escaped, never markup.
    assert "<script>window.__pwned" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert response["Cache-Control"].startswith("max-age=0")


def test_an_operator_sees_every_namespace(client: Client, tenants: tuple[Persona, Persona], root_key: Persona) -> None:
    client.force_login(root_key.user)
    page = client.get("/console/").content.decode()
    assert ALICE in page
    assert BOB in page
    assert "secret plan" in page


def test_anonymous_is_sent_to_sign_in(client: Client) -> None:
    for url in ("/console/", "/console/recent.json"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_the_namespace_filter_and_pages(client: Client, alice_key: Persona) -> None:
    _allow(alice_key, "org:alice:*")
    for n in range(27):
        _write(alice_key, f"note {n}", namespace=f"org:alice:p{n:02d}")
    client.force_login(alice_key.user)
    first = client.get("/console/").content.decode()
    assert "<h3>org:alice:p00</h3>" in first
    assert "<h3>org:alice:p24</h3>" in first
    assert "<h3>org:alice:p25</h3>" not in first
    assert "page 1 of 2" in first
    assert "?page=2" in first
    second = client.get("/console/?page=2").content.decode()
    assert "<h3>org:alice:p25</h3>" in second
    assert "<h3>org:alice:p26</h3>" in second
    assert "<h3>org:alice:p00</h3>" not in second
    filtered = client.get("/console/?filter=p1").content.decode()
    assert "<h3>org:alice:p10</h3>" in filtered
    assert "<h3>org:alice:p20</h3>" not in filtered


def test_recent_json_follows_its_cursor_within_the_users_reach(
    client: Client, tenants: tuple[Persona, Persona]
) -> None:
    alice, bob = tenants
    client.force_login(alice.user)
    body = client.get("/console/recent.json").json()
    changes = body["changes"]
    assert {change["namespace"] for change in changes} == {ALICE}
    assert [change["versionId"] for change in changes] == sorted((c["versionId"] for c in changes), reverse=True)
    memory = next(change for change in changes if change["label"] == "memory")
    assert memory["excerpt"].startswith("alice remembers <script>")  # data, escaped by whoever shows it
    assert memory["url"] == f"/console/memories/{memory['id']}"
    assert memory["action"] == "create"
    assert memory["key"] == f"key:{alice.key.prefix}"
    entity = next(change for change in changes if change["label"] == "entity")
    assert entity["excerpt"] == "Ada"
    assert entity["url"] == "/console/namespaces/org:alice:notes/entities/Ada"

    cursor = body["cursor"]
    assert client.get(f"/console/recent.json?after={cursor}").json() == {"changes": [], "cursor": cursor}
    _write(bob, "bob again")
    _write(alice, "alice again")
    later = client.get(f"/console/recent.json?after={cursor}").json()
    assert [change["excerpt"] for change in later["changes"]] == ["alice again"]
    assert later["cursor"] > cursor
    assert client.get("/console/recent.json?after=x").status_code == 400


def test_recent_changes_after_a_cursor_lists_the_oldest_first_page(alice_key: Persona) -> None:
    access = Access(grants=(Grant("org:alice:*", Permission.WRITE),))
    _write(alice_key, "first")
    start = perform(access, "recent_changes")[0]["versionId"]
    for n in range(5):
        _write(alice_key, f"later {n}")
    page = perform(access, "recent_changes", after=start, limit=2)
    assert [row["excerpt"] for row in page] == ["later 1", "later 0"]  # the two after the cursor, newest first


def test_the_recent_scan_is_bounded(alice_key: Persona, bob_key: Persona, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the newest RECENT_SCAN_ROWS versions are looked at: a namespace whose changes are all
    older than that shows none (graph_version has no index on namespace_id)."""
    _write(alice_key, "an old alice note")
    monkeypatch.setattr(overview, "RECENT_SCAN_ROWS", 3)
    for n in range(3):
        _write(bob_key, f"bob {n}")
    alice_access = alice_key.key.to_access()
    assert perform(alice_access, "recent_changes") == []
    monkeypatch.setattr(overview, "RECENT_SCAN_ROWS", 4)
    assert [row["excerpt"] for row in perform(alice_access, "recent_changes")] == ["an old alice note"]


def test_growth_counts_what_was_created_per_day(alice_key: Persona) -> None:
    _write(alice_key, "one")
    _write(alice_key, "two")
    growth = perform(alice_key.key.to_access(), "namespace_growth", namespace=[ALICE])
    days = growth[ALICE]
    assert len(days) == 30
    assert days[-1]["observations"] == 2
    assert days[-1]["total"] == 2
    assert sum(day["total"] for day in days[:-1]) == 0
    with pytest.raises(Exception, match="namespace"):
        perform(alice_key.key.to_access(), "namespace_growth", namespace=[BOB])


def test_the_backlog_per_namespace(client: Client, tenants: tuple[Persona, Persona]) -> None:
    alice, bob = tenants
    PendingEmbedding.objects.all().delete()
    ids = {ALICE: perform(alice.key.to_access(), "graph_stats", namespace=ALICE)}
    assert ids
    from access import namespaces

    PendingEmbedding.objects.create(owner_id=10**9, namespace_id=namespaces.lookup(ALICE), attempts=2, last_error="x")
    PendingEmbedding.objects.create(owner_id=10**9 + 1, namespace_id=namespaces.lookup(ALICE))
    PendingEmbedding.objects.create(owner_id=10**9 + 2, namespace_id=namespaces.lookup(BOB))
    backlog = perform(alice.key.to_access(), "embedding_backlog")
    assert set(backlog) == {ALICE}
    assert backlog[ALICE]["pending"] == 2
    assert backlog[ALICE]["failing"] == 1
    client.force_login(bob.user)
    page = client.get("/console/").content.decode()
    assert "1 text waiting to be embedded" in page
    assert ALICE not in page


def test_the_admin_links_to_the_console(client: Client, root_key: Persona) -> None:
    client.force_login(root_key.user)
    page = client.get("/admin/").content.decode()
    assert '<a href="/console/">Console</a>' in page
    assert "<title>Site administration | MemoryHub</title>" in page


def test_the_page_needs_no_inline_script(client: Client, tenants: tuple[Persona, Persona]) -> None:
    client.force_login(tenants[0].user)
    page = client.get("/console/").content.decode()
    assert "<script>" not in page.replace("&lt;script&gt;", "")
    assert "<img" not in page
    assert "/static/console/dashboard.js" in page
