"""The console's search page (/console/search): hybrid search across the readable namespaces, the
filters (each narrows), who wrote each hit, asOf, errors by their fields, isolation, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.test import Client
from django.urls import reverse

from access import operations
from access.selectors import user_access
from memory.services import NewMemory
from tests.console.memory_users import ALICE_NS, BOB_NS, User

URL = reverse("console:search")


def ids_on(page: str) -> list[str]:
    return re.findall(r'href="/console/memories/(mem_\d+)"', page)


def hit_ids(page: str) -> list[str]:
    """The memory ids of the hits, in order (each hit links its text first)."""
    return list(dict.fromkeys(re.findall(r'<p class="memory-text"><a href="/console/memories/(mem_\d+)"', page)))


def test_an_empty_query_shows_a_hint_and_the_readable_namespaces(as_alice: User, as_bob: User) -> None:
    as_alice.write("tea", ALICE_NS)
    as_bob.write("coffee", BOB_NS)
    answer = as_alice.client.get(URL)
    page = answer.content.decode()
    assert answer.status_code == 200
    assert "Type what you are looking for" in page
    assert f'<option value="{ALICE_NS}"' in page
    assert BOB_NS not in page
    # The user's own key is offered for the key filter.
    assert f'<option value="{as_alice.key.prefix}">' in page


def test_search_finds_by_keyword_and_shows_who_wrote_each_hit(as_alice: User) -> None:
    found = as_alice.write("The deploy runbook lives in the ops wiki", ALICE_NS, actor_id="agent-7", tags=["ops"])
    as_alice.write("Lunch is at noon", ALICE_NS)
    page = as_alice.client.get(URL, {"q": "runbook"}).content.decode()
    assert hit_ids(page)[0] == found
    assert "agent-7" in page
    assert f"key:{as_alice.key.prefix}" in page  # the key that wrote it, from its first version
    assert "alice · " in page  # and whose key it was, by name
    assert "Score" in page
    assert "current" in page
    assert ALICE_NS in page


def test_search_finds_by_meaning_what_keywords_miss(as_alice: User) -> None:
    wanted = as_alice.write("Ada Lovelace wrote the first computer program", ALICE_NS)
    as_alice.write("The office plants need watering on Fridays", ALICE_NS)
    as_alice.write("Quarterly invoices go to the finance mailbox", ALICE_NS)
    keyword_only = operations.perform(as_alice.access, "memory_search", query="early computing pioneer", mode="keyword")
    assert keyword_only["results"] == []
    page = as_alice.client.get(URL, {"q": "early computing pioneer"}).content.decode()
    assert hit_ids(page)[0] == wanted


def test_each_filter_narrows_the_results(as_alice: User, as_carol: User) -> None:
    other_ns = "org:alice:work"
    tagged = as_alice.write("Project falcon ships in May", ALICE_NS, tags=["falcon", "plan"], actor_id="planner")
    untagged = as_alice.write("Project falcon budget is tight", other_ns, actor_id="finance")
    everything = hit_ids(as_alice.client.get(URL, {"q": "project falcon"}).content.decode())
    assert set(everything) == {tagged, untagged}

    assert hit_ids(as_alice.client.get(URL, {"q": "project falcon", "namespace": other_ns}).content.decode()) == [
        untagged
    ]
    assert hit_ids(as_alice.client.get(URL, {"q": "project falcon", "tags": "falcon, plan"}).content.decode()) == [
        tagged
    ]
    assert hit_ids(as_alice.client.get(URL, {"q": "project falcon", "actor": "finance"}).content.decode()) == [untagged]
    # Key: a memory written in the console (no key) is left out when alice's key is asked for.
    by_console = operations.perform(
        user_access(as_alice.user),
        "memory_write",
        namespace=ALICE_NS,
        memories=[NewMemory("Project falcon has a mascot")],
    )[0]["id"]
    by_key = hit_ids(as_alice.client.get(URL, {"q": "project falcon", "key": as_alice.key.prefix[:6]}).content.decode())
    assert set(by_key) == {tagged, untagged}
    assert by_console not in by_key
    assert by_console in hit_ids(as_alice.client.get(URL, {"q": "project falcon"}).content.decode())
    # Time written: everything was written just now.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert hit_ids(as_alice.client.get(URL, {"q": "project falcon", "from": tomorrow}).content.decode()) == []
    assert hit_ids(as_alice.client.get(URL, {"q": "project falcon", "to": yesterday}).content.decode()) == []
    assert len(hit_ids(as_alice.client.get(URL, {"q": "project falcon", "from": yesterday}).content.decode())) == 3


def test_as_of_shows_the_past_fact_and_include_expired_both(as_alice: User) -> None:
    old = as_alice.write("The office is in Leeds", ALICE_NS)
    before = datetime.now(UTC).isoformat()
    new = operations.perform(
        as_alice.access, "memory_supersede", namespace=ALICE_NS, id=old, text="The office is in York"
    )["id"]
    now_page = as_alice.client.get(URL, {"q": "office"}).content.decode()
    assert hit_ids(now_page) == [new]
    then_page = as_alice.client.get(URL, {"q": "office", "asOf": before}).content.decode()
    assert hit_ids(then_page) == [old]
    every = as_alice.client.get(URL, {"q": "office", "expired": "1"}).content.decode()
    assert set(hit_ids(every)) == {old, new}
    assert "pill-past" in every
    assert f'superseded by <a href="/console/memories/{new}">' in every


def test_bad_filters_answer_400_with_the_message_by_the_field(as_alice: User) -> None:
    answer = as_alice.client.get(URL, {"q": "office", "asOf": "last tuesday"})
    page = answer.content.decode()
    assert answer.status_code == 400
    assert 'id="search-asof-error"' in page
    assert "asOf must be an ISO 8601 time" in page
    assert 'aria-describedby="search-asof-error"' in page
    long = as_alice.client.get(URL, {"q": "x" * 2000})
    assert long.status_code == 400
    assert 'id="search-q-error"' in long.content.decode()
    backwards = as_alice.client.get(URL, {"q": "office", "from": "2025-02-01", "to": "2025-01-01"})
    assert backwards.status_code == 400
    assert 'id="search-to-error"' in backwards.content.decode()


def test_users_never_see_each_others_memories(as_alice: User, as_bob: User, as_carol: User) -> None:
    alices = as_alice.write("Secret plan: falcon launch", ALICE_NS)
    bobs = as_bob.write("Secret plan: heron launch", BOB_NS)
    assert hit_ids(as_bob.client.get(URL, {"q": "secret plan launch"}).content.decode()) == [bobs]
    assert hit_ids(as_alice.client.get(URL, {"q": "secret plan launch"}).content.decode()) == [alices]
    assert hit_ids(as_carol.client.get(URL, {"q": "secret plan launch"}).content.decode()) == [alices]
    # Naming the other's namespace is refused, the same whether it exists or not.
    assert as_bob.client.get(URL, {"q": "secret", "namespace": ALICE_NS}).status_code == 403
    assert as_bob.client.get(URL, {"q": "secret", "namespace": "org:alice:nothing"}).status_code == 403


def test_hostile_text_is_shown_escaped(as_alice: User) -> None:
    hostile = '<script>alert(1)</script> "><img src=x onerror=alert(1)> javascript:alert(1) hostile'
    as_alice.write(hostile, ALICE_NS, tags=['"><b>tag'], actor_id="<i>actor</i>")
    page = as_alice.client.get(URL, {"q": "hostile", "tags": '"><b>tag'}).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;i&gt;actor&lt;/i&gt;" in page
    assert "<b>tag" not in page
    assert 'href="javascript' not in page


def test_anonymous_users_are_sent_to_sign_in(client: Client) -> None:
    answer = client.get(URL, {"q": "x"})
    assert answer.status_code == 302
    assert "login" in answer["Location"]
