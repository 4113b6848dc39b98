"""Memory-grounded chat (`agents.chat`) through `POST /product/chat/complete`: with the offline
extractive provider (the default), and with a real local OpenAI-compatible server standing in for
the LLM (`fake_llm`, tests/fake_llm.py): what the model is sent, what comes back, what is recorded,
and what a failing or slow provider turns into."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

from agents.chat import NO_MODEL, split_reasoning
from agents.providers.base import MEMORY_PREAMBLE
from tests.compat.test_product_api import GUITAR, RUNNING, SOFIA, add, fails, ok, post
from tests.conftest import ALICE, Persona
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.django_db

QUESTION = "What is my daughter allergic to?"


def chat(client: Client, persona: Persona, query: str = QUESTION, **fields: Any) -> Any:
    return post(client, "chat/complete", {"user_id": "u1", "query": query, **fields}, persona)


def stored(client: Client, persona: Persona, namespace: str = ALICE, **filter_: Any) -> list[dict[str, Any]]:
    """The memories of a namespace, newest first."""
    body: dict[str, Any] = {"mem_cube_id": namespace, **({"filter": filter_} if filter_ else {})}
    return ok(post(client, "get_memory", body, persona))["text_mem"][0]["memories"]


# --- reasoning ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "response", "reasoning"),
    [
        ("Plain answer.", "Plain answer.", ""),
        ("<think>\nStep one.\n</think>\n\nThe answer.", "The answer.", "Step one."),
        ("Before <think>a</think> middle <think>b</think> after", "Before  middle  after", "a\n\nb"),
        ("<think>ran out of tokens while thinking", "", "ran out of tokens while thinking"),
        ("the template opened it</think>The answer.", "The answer.", "the template opened it"),
        ("<think></think>Answer", "Answer", ""),
    ],
)
def test_reasoning_is_split_out(text: str, response: str, reasoning: str) -> None:
    assert split_reasoning(text) == (response, reasoning)


# --- without a model (the extractive default) ------------------------------------------------------


def test_without_a_model_the_answer_lists_what_is_remembered(client: Client, alice_key: Persona) -> None:
    add(client, alice_key, [SOFIA, RUNNING])
    data = ok(chat(client, alice_key), f"Chat completed successfully; the exchange was not recorded: {NO_MODEL}")
    assert set(data) == {"response", "reasoning"}
    assert data["response"].startswith("No language model is configured on this server")
    assert data["response"].splitlines()[1] == f"- {SOFIA}"  # the best memory first
    assert data["reasoning"] == ""
    # Nothing is recorded: the recitation would copy memories into a new one, and the question
    # alone is not a fact (it would come back as a "remembered fact" to later questions).
    assert [memory["memory"] for memory in stored(client, alice_key)] == [RUNNING, SOFIA]
    quiet = chat(client, alice_key, "Anything about music?", add_message_on_answer=False)
    assert ok(quiet, "Chat completed successfully")["response"]
    assert len(stored(client, alice_key)) == 2


def test_chat_inputs_are_validated_before_anything_happens(client: Client, alice_key: Persona) -> None:
    assert "top_k" in fails(chat(client, alice_key, top_k=0), 400)
    assert "top_k" in fails(chat(client, alice_key, top_k=51), 400)
    assert "threshold" in fails(chat(client, alice_key, threshold=1.5), 400)
    assert "temperature" in fails(chat(client, alice_key, temperature=3), 400)
    assert "history[0]" in fails(chat(client, alice_key, history=[{"role": "tool", "content": "x"}]), 400)
    assert "history.0.content" in fails(chat(client, alice_key, history=[{"role": "user"}]), 400)
    assert "query: Field required" in fails(post(client, "chat/complete", {"user_id": "u1"}, alice_key), 400)
    assert stored(client, alice_key) == []


# --- with a model -----------------------------------------------------------------------------------


def test_the_model_is_given_the_memories_and_its_reasoning_is_split(
    client: Client, alice_key: Persona, llm: FakeLLM
) -> None:
    travel = "org:alice:travel"
    add(client, alice_key, SOFIA)
    add(client, alice_key, GUITAR, writable_cube_ids=[travel])
    llm.answer = "<think>The memory says peanuts.</think>\nSofia is allergic to peanuts."
    history = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    data = ok(
        chat(
            client,
            alice_key,
            system_prompt="You are a terse family assistant.",
            history=history,
            model_name_or_path="other-model",
            max_tokens=64,
            temperature=0.2,
            top_p=0.9,
            readable_cube_ids=[ALICE],
            session_id="s9",
        )
    )
    assert data == {"response": "Sofia is allergic to peanuts.", "reasoning": "The memory says peanuts."}

    (sent,) = llm.requests
    assert (sent["model"], sent["max_tokens"], sent["temperature"], sent["top_p"]) == ("other-model", 64, 0.2, 0.9)
    system, *rest = sent["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("You are a terse family assistant.")
    assert MEMORY_PREAMBLE in system["content"]
    assert f"- {SOFIA}" in system["content"]
    assert GUITAR not in system["content"]  # not in the readable cubes
    assert rest == [*history, {"role": "user", "content": QUESTION}]

    # Both turns recorded in the default namespace, tagged with role and session, actor u1.
    answer, question = stored(client, alice_key, session_id="s9")
    assert (question["memory"], question["metadata"]["tags"], question["metadata"]["user_id"]) == (
        QUESTION,
        ["role:user", "session:s9"],
        "u1",
    )
    assert (answer["memory"], answer["metadata"]["tags"]) == (
        "Sofia is allergic to peanuts.",
        ["role:assistant", "session:s9"],
    )


def test_provider_reasoning_fields_become_reasoning(client: Client, alice_key: Persona, llm: FakeLLM) -> None:
    llm.answer = "Peanuts."
    llm.reasoning = "DeepSeek-style reasoning_content."
    assert ok(chat(client, alice_key)) == {"response": "Peanuts.", "reasoning": "DeepSeek-style reasoning_content."}


def test_what_is_recorded_and_where(client: Client, alice_key: Persona, llm: FakeLLM) -> None:
    travel = "org:alice:travel"
    ok(chat(client, alice_key, add_message_on_answer=False))
    assert stored(client, alice_key) == []
    ok(chat(client, alice_key, "Where do I travel?", writable_cube_ids=[travel, ALICE]))
    assert [memory["memory"] for memory in stored(client, alice_key, travel)] == [
        "ANSWER: Where do I travel?",
        "Where do I travel?",
    ]
    assert stored(client, alice_key) == []
    # mem_cube_id (deprecated) is both the readable and the writable cube.
    ok(chat(client, alice_key, "Old style?", mem_cube_id=travel))
    assert len(stored(client, alice_key, travel)) == 4


def test_threshold_drops_weak_memories(client: Client, alice_key: Persona, llm: FakeLLM) -> None:
    add(client, alice_key, SOFIA)
    ok(chat(client, alice_key, threshold=0.99, add_message_on_answer=False))
    ok(chat(client, alice_key, add_message_on_answer=False))
    strict, default = (request["messages"] for request in llm.requests)
    assert all(SOFIA not in message["content"] for message in strict)
    assert SOFIA in default[0]["content"]


def test_a_failing_provider_is_a_502_and_records_nothing(client: Client, alice_key: Persona, llm: FakeLLM) -> None:
    llm.fail_status, llm.fail_times = 500, 1
    message = fails(chat(client, alice_key), 502)
    assert "LLM provider" in message
    assert stored(client, alice_key) == []
    # The next call succeeds: the failure was the provider's, not lasting.
    assert ok(chat(client, alice_key))["response"] == f"ANSWER: {QUESTION}"


def test_a_slow_provider_is_a_504_not_a_hang(client: Client, alice_key: Persona, llm: FakeLLM) -> None:
    llm.latency = 2.0
    with override_settings(MEMORYHUB_LLM_TIMEOUT_SECONDS=0.5):
        assert fails(chat(client, alice_key), 504)
    assert stored(client, alice_key) == []


def test_a_key_that_cannot_record_where_asked_fails_before_the_model_is_called(
    client: Client, alice_key: Persona, carol_key: Persona, llm: FakeLLM
) -> None:
    add(client, alice_key, SOFIA)
    refused = chat(client, carol_key, writable_cube_ids=[ALICE])
    assert fails(refused, 403) == f"This API key has no write grant for namespace {ALICE!r}."
    assert llm.requests == []
    # Reading alone is enough when the exchange is not recorded.
    ok(chat(client, carol_key, add_message_on_answer=False))
    assert SOFIA in llm.requests[0]["messages"][0]["content"]


def test_chat_filter_limits_the_memories_used(client: Client, alice_key: Persona, llm: FakeLLM) -> None:
    add(client, alice_key, SOFIA, user_id="parent")
    add(client, alice_key, RUNNING, user_id="runner")
    # The cube named is shared by the users of the key: the filter alone picks the runner's.
    ok(
        chat(
            client,
            alice_key,
            "my daily life",
            readable_cube_ids=[ALICE],
            filter={"user_id": "runner"},
            add_message_on_answer=False,
        )
    )
    system = llm.requests[0]["messages"][0]["content"]
    assert RUNNING in system
    assert SOFIA not in system


def test_an_answer_too_long_to_store_is_returned_whole_and_stored_cut(
    client: Client, alice_key: Persona, llm: FakeLLM
) -> None:
    llm.answer = "é" * 80 + "\x00 and more"  # 160+ bytes, and a NUL no memory can hold
    with override_settings(MEMORYHUB_LIMITS={**settings.MEMORYHUB_LIMITS, "MAX_OBSERVATION_BYTES": 101}):
        assert ok(chat(client, alice_key, "Say it long"))["response"] == llm.answer
    answer, question = stored(client, alice_key)
    assert question["memory"] == "Say it long"
    assert answer["memory"] == "é" * 50  # 100 bytes: the 101st would split a character
