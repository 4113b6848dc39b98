"""The memory operations (through the runner, as every surface calls them) with the real built-in
model and the real indexes: ranking, filters, expiry, and tenancy. The HTTP surface is tested in
test_memory_api.py, MCP in tests/mcp_endpoint."""

from __future__ import annotations

import random
import time

import pytest
from django.test import override_settings

from access.exceptions import NamespaceForbidden
from access.operations import perform
from graph import services as graph_services
from graph.exceptions import InvalidArgument
from graph.sql import db
from tests.memory import helpers as memories

pytestmark = pytest.mark.django_db

NOTES = [
    "The deployment configuration uses port 8080 for the API server",
    "The staging proxy listens on port 8443 behind nginx",
    "Alice prefers dark mode in every editor she uses",
    "数据库备份每天凌晨三点执行",
    "API rate limit is 100 requests per minute per key",
    "Error E1102 means the license server is unreachable; restart licd",
    "Error E1120 means the license file expired; renew it in the portal",
]


@pytest.fixture
def notes(alice_key):
    access = alice_key.key.to_access()
    return access, [memories.write_memory(access, namespace=None, text=text)["id"] for text in NOTES]


def texts(result) -> list[str]:
    return [hit["text"] for hit in result["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("which port does the API listen on", NOTES[0]),
        ("what colour scheme does the user like", NOTES[2]),
        ("how many calls per minute are allowed", NOTES[4]),
        ("数据库什么时候备份", NOTES[3]),  # Chinese paraphrase
        ("when is the database backed up", NOTES[3]),  # English question, Chinese memory
        ("许可证服务器连不上怎么办", NOTES[5]),  # Chinese question, English memory
    ],
)
def test_paraphrases_find_the_memory_first(notes, query, expected):
    access, _ = notes
    assert texts(memories.search_memories(access, query=query, top_k=3))[0] == expected


@pytest.mark.parametrize(("query", "expected"), [("E1120", NOTES[6]), ("port 8443", NOTES[1]), ("8080", NOTES[0])])
def test_exact_identifiers_beat_their_near_duplicates_in_hybrid(notes, query, expected):
    access, _ = notes
    assert texts(memories.search_memories(access, query=query, top_k=2))[0] == expected


def test_scores_are_in_0_1_and_descending_in_every_mode(notes):
    access, _ = notes
    for mode in ("hybrid", "vector", "keyword"):
        result = memories.search_memories(access, query="license server error", top_k=5, mode=mode)
        scores = [hit["score"] for hit in result["results"]]
        assert scores, mode
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)
        assert isinstance(result["queryTime"], int)
        assert result["totalResults"] >= len(scores)


def test_keyword_mode_ignores_stopwords(notes):
    access, _ = notes
    assert memories.search_memories(access, query="what is the of and", mode="keyword")["results"] == []


def test_a_deleted_memory_disappears_from_the_next_search(notes):
    access, ids = notes
    assert texts(memories.search_memories(access, query="dark mode editor", top_k=1)) == [NOTES[2]]
    assert memories.delete_memory(access, id=ids[2]) == {"deleted": True, "id": ids[2]}
    assert NOTES[2] not in texts(memories.search_memories(access, query="dark mode editor", top_k=10))
    assert memories.delete_memory(access, id=ids[2])["deleted"] is False


def test_expired_memories_are_never_returned_and_are_purged(alice_key):
    access = alice_key.key.to_access()
    short = memories.write_memory(access, namespace=None, text="the wifi password is hunter2", ttl_ms=1)
    kept = memories.write_memory(access, namespace=None, text="the guest wifi password is swordfish", ttl_ms=3_600_000)
    assert short["expiresAt"] is not None
    time.sleep(0.01)
    for mode in ("hybrid", "vector", "keyword"):
        found = texts(memories.search_memories(access, query="wifi password", mode=mode))
        assert found == ["the guest wifi password is swordfish"], mode
    assert graph_services.purge_expired() == 1
    remaining = db().execute("SELECT count(*) FROM graph_observation").fetchone()[0]
    assert remaining == 1
    assert db().execute("SELECT count(*) FROM vectors_embedding").fetchone()[0] == 1
    assert kept["id"] in [hit["id"] for hit in memories.search_memories(access, query="wifi")["results"]]


def test_actor_filter_and_memories_only(alice_key):
    access = alice_key.key.to_access()
    memories.write_memory(access, namespace=None, text="likes espresso", actor_id="u1")
    memories.write_memory(access, namespace=None, text="likes green tea", actor_id="u2")
    perform(
        access,
        "create_entities",
        namespace=alice_key.namespace,
        entities=[{"name": "Bob", "entityType": "person", "observations": ["likes black coffee"]}],
    )
    everything = memories.search_memories(access, query="coffee drinks", top_k=10)
    assert {hit["entityName"] for hit in everything["results"]} == {None, "Bob"}  # graph facts are memories too
    only_u1 = memories.search_memories(access, query="coffee drinks", actor_id="u1", top_k=10)
    assert texts(only_u1) == ["likes espresso"]
    free = memories.search_memories(access, query="coffee drinks", memories_only=True, top_k=10)
    assert "likes black coffee" not in texts(free)
    cleared = memories.clear_memories(access, namespace=None, actor_id="u2")
    assert cleared == {"cleared": 1, "namespace": alice_key.namespace}
    assert memories.clear_memories(access, namespace=None) == {"cleared": 1, "namespace": alice_key.namespace}
    assert texts(memories.search_memories(access, query="coffee", top_k=10)) == ["likes black coffee"]


def test_tenants_never_see_each_other(alice_key, bob_key, root_key):
    alice, bob = alice_key.key.to_access(), bob_key.key.to_access()
    memories.write_memory(alice, namespace=None, text="alice's launch code is 1234")
    memories.write_memory(bob, namespace=None, text="bob's launch code is 9876")
    for access, own in ((alice, "1234"), (bob, "9876")):
        found = texts(memories.search_memories(access, query="launch code", top_k=10))
        assert len(found) == 1
        assert own in found[0]
    both = texts(memories.search_memories(root_key.key.to_access(), query="launch code", top_k=10))
    assert len(both) == 2
    with pytest.raises(NamespaceForbidden):
        memories.search_memories(alice, query="launch code", namespace=bob_key.namespace)
    with pytest.raises(NamespaceForbidden):
        memories.write_memory(alice, namespace=bob_key.namespace, text="hi")
    bob_id = memories.search_memories(bob, query="launch code")["results"][0]["id"]
    assert memories.delete_memory(alice, id=bob_id)["deleted"] is False


def test_a_list_of_namespaces_is_searched_together(alice_key):
    access = alice_key.key.to_access()
    memories.write_memory(access, namespace="org:alice:a", text="project alpha ships in May")
    memories.write_memory(access, namespace="org:alice:b", text="project beta ships in June")
    memories.write_memory(access, namespace="org:alice:c", text="project gamma ships in July")
    found = memories.search_memories(access, query="when does it ship", namespace=["org:alice:a", "org:alice:b"])
    assert sorted(hit["namespace"] for hit in found["results"]) == ["org:alice:a", "org:alice:b"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"text": ""}, "text must be a non-empty string"),
        ({"text": "x", "ttl_ms": 0}, "ttlMs must be"),
        ({"text": "x", "ttl_ms": True}, "ttlMs must be"),
        ({"text": "x", "tags": "a"}, "tags must be a list"),
        ({"text": "x", "tags": [""]}, "each tag must be"),
        ({"text": "x", "actor_id": 5}, "actorId must be"),
    ],
)
def test_bad_writes_are_rejected_with_clear_errors(alice_key, arguments, message):
    with pytest.raises(InvalidArgument, match=message):
        memories.write_memory(alice_key.key.to_access(), namespace=None, **arguments)
    assert db().execute("SELECT count(*) FROM graph_observation").fetchone()[0] == 0


@pytest.mark.parametrize("bad", ["", "mem_", "mem_0", "mem_x", "123", None, 5])
def test_malformed_memory_ids_are_rejected(alice_key, bad):
    with pytest.raises(InvalidArgument, match="memory id"):
        memories.delete_memory(alice_key.key.to_access(), id=bad)


@pytest.mark.parametrize("index", ["hnsw", "ivf", "exact"])
def test_search_works_the_same_on_every_index_kind(alice_key, index):

    access = alice_key.key.to_access()
    with override_settings(MEMORYHUB_VECTOR_INDEX=index, MEMORYHUB_IVF_NLIST=2, MEMORYHUB_IVF_NPROBE=2):
        ids = [memories.write_memory(access, namespace=None, text=text)["id"] for text in NOTES]
        assert texts(memories.search_memories(access, query="which port does the API listen on"))[0] == NOTES[0]
        memories.delete_memory(access, id=ids[0])
        assert NOTES[0] not in texts(memories.search_memories(access, query="which port does the API listen on"))


def test_an_english_only_model_lets_keywords_lead_chinese_queries(alice_key):
    """MiniLM embeds Chinese as noise; hybrid must then be as good as keyword search, not worse."""
    from vectors.embedders import default_embedder

    access = alice_key.key.to_access()
    with override_settings(MEMORYHUB_EMBEDDER="minilm"):
        assert default_embedder().multilingual is False
        for text in ["数据库备份每天凌晨三点执行", "前端代码部署在上海机房", "周五下午团队开周会", "报销需要经理审批"]:
            memories.write_memory(access, namespace=None, text=text)
        assert texts(memories.search_memories(access, query="数据库备份的时间"))[0] == "数据库备份每天凌晨三点执行"
        assert texts(memories.search_memories(access, query="报销审批流程"))[0] == "报销需要经理审批"


def test_a_bare_identifier_finds_the_memory_holding_it_among_many_look_alikes(alice_key):
    """A query that is only an id (a token, a ticket) asks for exactly that text, however its
    random characters happen to embed: shorter texts of another shape, closer to a bare random
    string in meaning, must not outrank it (found by bench/crash.py's writes)."""
    access = alice_key.key.to_access()
    rng = random.Random(7)
    tokens = [f"k{rng.getrandbits(80):020x}" for _ in range(80)]
    memories.write_memories(
        access,
        namespace=None,
        memories=[memories.NewMemory(text=f"later fact {token}") for token in tokens[:60]]
        + [memories.NewMemory(text=f"a free memory {token} written during a crash test") for token in tokens[60:]],
    )
    for token in tokens[60:]:
        found = texts(memories.search_memories(access, query=token, top_k=10))
        assert found[0] == f"a free memory {token} written during a crash test"
