"""Chat providers: the OpenAI-compatible client against a real local server (tests/fake_llm.py,
over real HTTP, no patching), the offline extractive provider, and how settings and agents pick
one."""

# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from django.test import override_settings

from agents.exceptions import ProviderTimeout, ProviderUnavailable
from agents.models import Agent
from agents.providers import default_provider, provider_for
from agents.providers.base import (
    MEMORY_PREAMBLE,
    ChatMessage,
    ChatRequest,
    estimate_prompt_tokens,
    estimate_tokens,
    grounded_messages,
)
from agents.providers.extractive import ExtractiveProvider
from agents.providers.openai import OpenAICompatibleProvider
from tests.fake_llm import FakeLLM

KEY = "sk-test-very-secret-0123456789"


def ask(question: str, *, system: str | None = None, memories: tuple[str, ...] = (), **options) -> ChatRequest:
    messages = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", question),)
    return ChatRequest(messages=messages, memories=memories, **options)


def provider(fake: FakeLLM, **options) -> OpenAICompatibleProvider:
    options = {"model": "test-chat", "timeout": 5.0, "retries": 1, "backoff_seconds": 0.01, **options}
    return OpenAICompatibleProvider(base_url=fake.url, **options)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- OpenAI-compatible: what is sent ------------------------------------------------------------


def test_sends_the_openai_chat_request(fake_llm):
    llm = provider(fake_llm, api_key=KEY, max_tokens=300)
    completion = llm.complete(ask("Where is the office?", memories=("The office is in Berlin", "Alice drinks tea")))

    (body,) = fake_llm.requests
    assert body == {
        "model": "test-chat",
        "messages": [
            {
                "role": "system",
                "content": f"{MEMORY_PREAMBLE}\n- The office is in Berlin\n- Alice drinks tea",
            },
            {"role": "user", "content": "Where is the office?"},
        ],
        "max_tokens": 300,
        "stream": False,
    }
    headers = fake_llm.headers[0]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["content-type"] == "application/json"
    assert completion.text == "ANSWER: Where is the office?"
    assert completion.model == "test-chat"
    assert completion.finish_reason == "stop"
    assert llm.kind == "openai"
    assert llm.model == "test-chat"


def test_memories_join_an_existing_system_prompt(fake_llm):
    provider(fake_llm).complete(ask("hi", system="You are terse.", memories=("likes tea",)))
    messages = fake_llm.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == f"You are terse.\n\n{MEMORY_PREAMBLE}\n- likes tea"


def test_without_memories_the_messages_go_as_they_are(fake_llm):
    request = ChatRequest(
        messages=(
            ChatMessage("system", "Be kind."),
            ChatMessage("user", "one"),
            ChatMessage("assistant", "two"),
            ChatMessage("user", "three"),
        )
    )
    completion = provider(fake_llm).complete(request)
    assert fake_llm.requests[0]["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    assert completion.text == "ANSWER: three"


@pytest.mark.parametrize(("asked", "sent"), [(None, 200), (50, 50), (200, 200), (5000, 200)])
def test_max_tokens_is_capped_at_the_providers_limit(fake_llm, asked, sent):
    provider(fake_llm, max_tokens=200).complete(ask("hi", max_tokens=asked))
    assert fake_llm.requests[0]["max_tokens"] == sent


def test_sampling_options_are_sent_only_when_given(fake_llm):
    llm = provider(fake_llm)
    llm.complete(ask("default sampling"))
    # 0.0 is a real choice (greedy decoding), not "unset".
    llm.complete(ask("greedy", temperature=0.0, top_p=0.9))
    first, second = fake_llm.requests
    assert "temperature" not in first
    assert "top_p" not in first
    assert second["temperature"] == 0.0
    assert second["top_p"] == 0.9


def test_no_authorization_header_without_a_key(fake_llm):
    provider(fake_llm, api_key=None).complete(ask("hi"))
    provider(fake_llm, api_key="").complete(ask("hi"))
    assert "authorization" not in fake_llm.headers[0]
    assert "Authorization" not in fake_llm.headers[1]


def test_a_request_may_name_another_model(fake_llm):
    completion = provider(fake_llm).complete(ask("hi", model="deepseek-reasoner"))
    assert fake_llm.requests[0]["model"] == "deepseek-reasoner"
    assert completion.model == "deepseek-reasoner"  # the fake echoes the model it was asked for


def test_chinese_goes_both_ways_intact(fake_llm):
    fake_llm.answer = "办公室在柏林。"
    completion = provider(fake_llm).complete(ask("办公室在哪里？", memories=("我们的办公室在柏林",)))
    assert completion.text == "办公室在柏林。"
    assert fake_llm.requests[0]["messages"][1]["content"] == "办公室在哪里？"
    assert "我们的办公室在柏林" in fake_llm.requests[0]["messages"][0]["content"]


def test_is_safe_to_call_from_several_threads(fake_llm):
    fake_llm.answer = lambda body: body["messages"][-1]["content"].upper()
    llm = provider(fake_llm)
    results: dict[int, str] = {}
    start = threading.Barrier(8)

    def work(number: int) -> None:
        start.wait()
        results[number] = llm.complete(ask(f"question {number}")).text

    threads = [threading.Thread(target=work, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {number: f"QUESTION {number}" for number in range(8)}
    assert len(fake_llm.requests) == 8


# --- OpenAI-compatible: what comes back ---------------------------------------------------------


def test_usage_is_what_the_provider_reports(fake_llm):
    fake_llm.usage = {"prompt_tokens": 1234, "completion_tokens": 56, "total_tokens": 1290}
    completion = provider(fake_llm).complete(ask("hi"))
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (1234, 56)
    assert completion.usage.total_tokens == 1290


def test_the_fakes_default_usage_comes_through(fake_llm):
    completion = provider(fake_llm).complete(ask("What is the capital of France?"))
    question = "What is the capital of France?"
    assert completion.usage.prompt_tokens == len(question) // 4 + 1
    assert completion.usage.completion_tokens == len(f"ANSWER: {question}") // 4 + 1


@pytest.mark.parametrize(
    "usage",
    [
        {},  # no "usage" key at all (some local servers)
        {"prompt_tokens": None, "completion_tokens": "many"},
        {"prompt_tokens": True, "completion_tokens": -3},
    ],
)
def test_usage_is_estimated_when_the_provider_sends_none(fake_llm, usage):
    fake_llm.usage = usage
    fake_llm.answer = "Berlin, since 2019."
    request = ask("Where is the office?", system="Be brief.", memories=("The office is in Berlin",))
    completion = provider(fake_llm).complete(request)
    assert completion.usage.prompt_tokens == estimate_prompt_tokens(grounded_messages(request))
    assert completion.usage.completion_tokens == estimate_tokens("Berlin, since 2019.")
    assert completion.usage.prompt_tokens > 0


def test_partial_usage_keeps_what_was_reported(fake_llm):
    fake_llm.usage = {"prompt_tokens": 40}
    fake_llm.answer = "short"
    completion = provider(fake_llm).complete(ask("hi"))
    assert completion.usage.prompt_tokens == 40
    assert completion.usage.completion_tokens == estimate_tokens("short")


def test_reasoning_content_comes_back_inside_think_tags(fake_llm):
    fake_llm.reasoning = "The memory says Berlin."
    fake_llm.answer = "Berlin."
    completion = provider(fake_llm).complete(ask("Where is the office?"))
    assert completion.text == "<think>The memory says Berlin.</think>Berlin."


def test_empty_reasoning_adds_no_think_tags(fake_llm):
    fake_llm.reasoning = ""
    fake_llm.answer = "Berlin."
    assert provider(fake_llm).complete(ask("Where?")).text == "Berlin."


def test_the_answers_model_wins_and_the_configured_one_is_the_fallback(fake_llm):
    answer = {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "length"}]}
    fake_llm.raw_response = {**answer, "model": "deepseek-chat-v3"}
    first = provider(fake_llm).complete(ask("hi"))
    fake_llm.raw_response = answer
    second = provider(fake_llm).complete(ask("hi"))
    assert first.model == "deepseek-chat-v3"
    assert second.model == "test-chat"
    assert second.finish_reason == "length"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"<html>502 bad gateway</html>", "not JSON"),
        ([1, 2], "not an object"),
        ({"object": "chat.completion"}, 'no "choices"'),
        ({"choices": []}, 'no "choices"'),
        ({"error": {"message": "quota exceeded"}}, "quota exceeded"),
        ({"choices": ["text"]}, 'no "message"'),
        ({"choices": [{"message": {"role": "assistant", "content": None}}]}, "content is NoneType"),
        ({"choices": [{"message": {"role": "assistant", "content": 42}}]}, "content is int"),
    ],
)
def test_malformed_answers_are_provider_unavailable(fake_llm, raw, problem):
    fake_llm.raw_response = raw
    with pytest.raises(ProviderUnavailable) as caught:
        provider(fake_llm, retries=2).complete(ask("hi"))
    assert problem in caught.value.message
    assert f"{fake_llm.url}/chat/completions" in caught.value.message
    assert caught.value.code == "provider_unavailable"
    assert len(fake_llm.requests) == 1  # an unusable answer is not retried


# --- OpenAI-compatible: failures ----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_failures_are_retried(fake_llm, status):
    fake_llm.fail_status, fake_llm.fail_times = status, 1
    completion = provider(fake_llm, retries=1).complete(ask("again?"))
    assert completion.text == "ANSWER: again?"
    assert len(fake_llm.requests) == 2
    assert fake_llm.requests[0] == fake_llm.requests[1]


def test_gives_up_after_the_retries_with_the_providers_message(fake_llm):
    fake_llm.fail_status, fake_llm.fail_times = 503, 10
    fake_llm.fail_message = "model is loading"
    with pytest.raises(ProviderUnavailable) as caught:
        provider(fake_llm, retries=2).complete(ask("hi"))
    message = caught.value.message
    assert len(fake_llm.requests) == 3
    assert not isinstance(caught.value, ProviderTimeout)
    assert caught.value.code == "provider_unavailable"
    assert message.startswith(f"The LLM provider at {fake_llm.url}/chat/completions failed: HTTP 503")
    assert "model is loading" in message
    assert "after 3 attempts" in message
    assert caught.value.details["status"] == 503


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried_and_never_show_the_key(fake_llm, status):
    # Real providers echo the key back ("Incorrect API key provided: sk-..."); it must not reach
    # whoever called us, in the message or in the details.
    fake_llm.fail_status, fake_llm.fail_times = status, 5
    fake_llm.fail_message = f"Incorrect API key provided: {KEY}"
    with pytest.raises(ProviderUnavailable) as caught:
        provider(fake_llm, api_key=KEY, retries=3).complete(ask("hi"))
    assert len(fake_llm.requests) == 1
    assert f"HTTP {status}" in caught.value.message
    assert "Incorrect API key provided: ***" in caught.value.message
    assert KEY not in json.dumps(caught.value.as_dict())
    assert KEY not in repr(provider(fake_llm, api_key=KEY))


def test_a_wrong_path_is_a_clear_404(fake_llm):
    with pytest.raises(ProviderUnavailable, match="HTTP 404") as caught:
        OpenAICompatibleProvider(base_url=fake_llm.url + "/nope", model="m", retries=2).complete(ask("hi"))
    assert "no such endpoint" in caught.value.message
    assert fake_llm.requests == []  # the fake only records chat completions


def test_a_slow_provider_times_out_without_retrying(fake_llm):
    fake_llm.latency = 3.0
    llm = OpenAICompatibleProvider(base_url=fake_llm.url, model="m", timeout=0.5, retries=2)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        llm.complete(ask("hi"))
    assert time.monotonic() - started < 10
    assert len(fake_llm.requests) == 1
    assert caught.value.code == "provider_timeout"
    assert isinstance(caught.value, ProviderUnavailable)  # callers that only care "no answer" catch both
    assert (
        caught.value.message == f"The LLM provider at {fake_llm.url}/chat/completions did not answer within 0.5 seconds"
    )


def test_an_unreachable_provider_names_the_url_without_credentials():
    port = free_port()  # nothing listens there now: every attempt is refused
    llm = OpenAICompatibleProvider(
        base_url=f"http://user:hunter2@127.0.0.1:{port}/v1", model="m", api_key=KEY, retries=1, backoff_seconds=0.01
    )
    with pytest.raises(ProviderUnavailable) as caught:
        llm.complete(ask("hi"))
    assert not isinstance(caught.value, ProviderTimeout)
    message = caught.value.message
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in message
    assert "cannot connect" in message
    assert "after 2 attempts" in message
    assert "hunter2" not in json.dumps(caught.value.as_dict())
    assert KEY not in json.dumps(caught.value.as_dict())


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"base_url": "ftp://example.com/v1"}, "http"),
        ({"base_url": "example.com/v1"}, "http"),
        ({"model": "  "}, "model"),
        ({"timeout": 0}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_validates_its_configuration(options, problem):
    arguments = {"base_url": "http://localhost:11434/v1", "model": "llama3", **options}
    with pytest.raises(ValueError, match=problem):
        OpenAICompatibleProvider(**arguments)


# --- Extractive ---------------------------------------------------------------------------------

EN_PREFACE = "No language model is configured on this server, so here is what I remember that bears on your question:"
ZH_PREFACE = "本服务器未配置语言模型，以下是记忆中与您的问题相关的内容："


def test_extractive_answers_from_memories_and_says_so():
    completion = ExtractiveProvider().complete(
        ask("Where is the office?", memories=("The office is in Berlin", "It moved there in 2019"))
    )
    assert completion.text == f"{EN_PREFACE}\n- The office is in Berlin\n- It moved there in 2019"
    assert completion.model == "extractive"
    assert completion.finish_reason == "stop"


def test_extractive_answers_a_chinese_question_in_chinese():
    completion = ExtractiveProvider().complete(
        ask("办公室在哪里？", memories=("办公室在柏林", "The office moved in 2019"))
    )
    assert completion.text == f"{ZH_PREFACE}\n- 办公室在柏林\n- The office moved in 2019"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "Where is the office?",
            "No language model is configured on this server, and I found nothing in memory about this.",
        ),
        ("办公室在哪里？", "本服务器未配置语言模型，记忆中也没有找到相关内容。"),
        ("Was ist 東京?", "本服务器未配置语言模型，记忆中也没有找到相关内容。"),
    ],
)
def test_extractive_says_when_nothing_was_found(question, expected):
    assert ExtractiveProvider().complete(ask(question)).text == expected
    # Blank memories are nothing too.
    assert ExtractiveProvider().complete(ask(question, memories=("", "  \n"))).text == expected


def test_extractive_lists_at_most_five_memories_in_the_order_given():
    memories = tuple(f"memory {number}" for number in range(1, 9))
    text = ExtractiveProvider().complete(ask("what do you know?", memories=memories)).text
    assert text.splitlines()[1:] == [f"- memory {number}" for number in range(1, 6)]


def test_extractive_keeps_a_multi_line_memory_one_item():
    text = ExtractiveProvider().complete(ask("steps?", memories=("Deploy:\n\n1. build\n2. ship\n",))).text
    assert text == f"{EN_PREFACE}\n- Deploy:\n  1. build\n  2. ship"


def test_extractive_respects_max_tokens_but_always_keeps_the_preface():
    memories = tuple(
        f"fact number {number}: " + "the quick brown fox jumps over the lazy dog " * 3 for number in range(5)
    )
    full = ExtractiveProvider().complete(ask("facts?", memories=memories))
    assert full.finish_reason == "stop"
    budget = estimate_tokens(EN_PREFACE) + 60
    cut = ExtractiveProvider().complete(ask("facts?", memories=memories, max_tokens=budget))
    assert estimate_tokens(cut.text) <= budget
    assert cut.text.startswith(f"{EN_PREFACE}\n- fact number 0: ")
    assert full.text.startswith(cut.text.removesuffix("…"))
    assert cut.text.endswith("…")
    assert cut.finish_reason == "length"
    assert cut.usage.completion_tokens == estimate_tokens(cut.text)

    tiny = ExtractiveProvider().complete(ask("facts?", memories=memories, max_tokens=3))
    assert tiny.text == EN_PREFACE
    assert tiny.finish_reason == "length"


def test_extractive_usage_is_estimated_like_a_generating_provider_would_be():
    request = ask("Where is the office?", system="Be brief.", memories=("The office is in Berlin",))
    completion = ExtractiveProvider().complete(request)
    assert completion.usage.prompt_tokens == estimate_prompt_tokens(grounded_messages(request))
    assert completion.usage.completion_tokens == estimate_tokens(completion.text)


def test_extractive_is_deterministic():
    request = ask("什么？", memories=("甲", "乙", "丙"), max_tokens=40)
    assert ExtractiveProvider().complete(request) == ExtractiveProvider().complete(request)
    assert ExtractiveProvider.kind == "extractive"


# --- Choosing a provider: settings and agents ---------------------------------------------------

EXTRACTIVE_SERVER = {"MEMORYHUB_LLM_PROVIDER": "extractive", "MEMORYHUB_LLM_URL": None, "MEMORYHUB_LLM_MODEL": None}


def openai_server(fake: FakeLLM, **extra) -> dict:
    return {
        "MEMORYHUB_LLM_PROVIDER": "openai",
        "MEMORYHUB_LLM_URL": fake.url,
        "MEMORYHUB_LLM_MODEL": "server-model",
        "MEMORYHUB_LLM_API_KEY": "sk-server",
        **extra,
    }


def test_default_provider_is_extractive_without_a_url():
    with override_settings(**EXTRACTIVE_SERVER):
        llm = default_provider()
        assert isinstance(llm, ExtractiveProvider)
        assert default_provider() is llm  # built once


def test_default_provider_is_openai_with_a_url(fake_llm):
    with override_settings(**openai_server(fake_llm, MEMORYHUB_LLM_MAX_TOKENS=77, MEMORYHUB_LLM_TIMEOUT_SECONDS=9)):
        llm = default_provider()
        assert isinstance(llm, OpenAICompatibleProvider)
        assert (llm.model, llm.max_tokens, llm.timeout) == ("server-model", 77, 9.0)
        llm.complete(ask("hi"))
    assert fake_llm.headers[0]["authorization"] == "Bearer sk-server"
    assert fake_llm.requests[0]["max_tokens"] == 77
    # Leaving the override forgets the provider built for it.
    with override_settings(**EXTRACTIVE_SERVER):
        assert isinstance(default_provider(), ExtractiveProvider)


def test_an_agent_with_its_own_url_is_openai_compatible(fake_llm):
    agent = Agent(
        name="Tutor", provider_url=fake_llm.url, base_model="agent-model", provider_api_key="sk-agent", max_tokens=64
    )
    with override_settings(**EXTRACTIVE_SERVER):
        llm = provider_for(agent)
    assert isinstance(llm, OpenAICompatibleProvider)
    llm.complete(ask("hi", max_tokens=1000))
    assert fake_llm.requests[0]["model"] == "agent-model"
    assert fake_llm.requests[0]["max_tokens"] == 64  # the agent's limit is the ceiling
    assert fake_llm.headers[0]["authorization"] == "Bearer sk-agent"


def test_the_servers_key_never_goes_to_an_agents_own_url(fake_llm):
    agent = Agent(name="Elsewhere", provider_url=fake_llm.url)
    with override_settings(**openai_server(fake_llm)):
        provider_for(agent).complete(ask("hi"))
    assert "authorization" not in fake_llm.headers[0]
    assert fake_llm.requests[0]["model"] == "server-model"


def test_an_agent_without_provider_settings_uses_the_servers(fake_llm):
    with override_settings(**openai_server(fake_llm)):
        provider_for(Agent(name="Plain", max_tokens=32)).complete(ask("hi"))
    assert fake_llm.headers[0]["authorization"] == "Bearer sk-server"
    assert fake_llm.requests[0]["max_tokens"] == 32
    with override_settings(**EXTRACTIVE_SERVER):
        assert isinstance(provider_for(Agent(name="Plain")), ExtractiveProvider)


def test_an_agent_may_insist_on_extractive(fake_llm):
    agent = Agent(name="Offline", provider=Agent.Provider.EXTRACTIVE, provider_url=fake_llm.url)
    with override_settings(**openai_server(fake_llm)):
        assert isinstance(provider_for(agent), ExtractiveProvider)


def test_an_openai_agent_with_no_url_anywhere_is_provider_unavailable():
    agent = Agent(name="Lost", provider=Agent.Provider.OPENAI, base_model="m")
    with override_settings(**EXTRACTIVE_SERVER), pytest.raises(ProviderUnavailable) as caught:
        provider_for(agent)
    assert "Agent 'Lost'" in caught.value.message
    assert "no URL" in caught.value.message
    assert caught.value.code == "provider_unavailable"


def test_an_agent_with_an_unusable_url_is_provider_unavailable_without_its_credentials():
    agent = Agent(name="Broken", provider_url="ftp://admin:pa55word@files.example/v1", base_model="m")
    with override_settings(**EXTRACTIVE_SERVER), pytest.raises(ProviderUnavailable) as caught:
        provider_for(agent)
    assert "Agent 'Broken'" in caught.value.message
    assert "http(s) URL" in caught.value.message
    assert "pa55word" not in caught.value.message
