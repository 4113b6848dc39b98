"""A small client of an OpenAI-compatible chat completions API, for extraction (memory/extraction.py).

The chat providers of the marketplace (agents/providers) live above the memory layer, so this
layer has its own: one non-streamed `POST {MEMORYHUB_LLM_URL}/chat/completions` per call, over the
kernel's JSON client (kernel/http_client.py: timeout, redirects refused, the key never in a
message). It asks for JSON with a schema (`response_format`, MEMORYHUB_EXTRACTION_RESPONSE_FORMAT),
at temperature 0, and counts every call in /metrics (kernel.metrics.observe_llm_call: by purpose and
outcome, with its prompt and completion tokens).

The client does not retry: a job that fails is retried by the extraction queue, later, with
backoff (retrying inside the call would only hold the worker while the provider is down).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings

from kernel import metrics
from kernel.errors import DomainError
from kernel.http_client import Endpoint, JsonPoster

T = TypeVar("T")


class LLMUnavailable(DomainError):
    """The model's server failed, refused the request, or answered something that is not a completion."""

    code = "llm_unavailable"


class LLMTimeout(LLMUnavailable):
    """The model's server did not answer within MEMORYHUB_LLM_TIMEOUT_SECONDS."""

    code = "llm_timeout"


class Malformed(LLMUnavailable):
    """The model answered, but not with what was asked (not JSON, or JSON of another shape)."""

    code = "llm_malformed"


def enabled() -> bool:
    """Whether a model is configured for extraction (MEMORYHUB_LLM_URL and MEMORYHUB_LLM_MODEL)."""
    return bool(settings.MEMORYHUB_LLM_URL and settings.MEMORYHUB_LLM_MODEL)


def model_name() -> str:
    return str(settings.MEMORYHUB_LLM_MODEL or "").strip()


class ChatClient:
    """Calls one model; safe to share between threads (it holds no per-call state)."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout: float,
        max_tokens: int,
        response_format: str = "json_schema",
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.response_format = response_format
        self._http: JsonPoster[LLMUnavailable] = JsonPoster(
            Endpoint.parse(base_url, "/chat/completions"),
            api_key=api_key,
            timeout=timeout,
            retries=0,
            backoff_seconds=0,
            provider="LLM provider",
            unavailable=LLMUnavailable,
            timed_out=LLMTimeout,
        )

    @classmethod
    def from_settings(cls) -> ChatClient:
        return cls(
            base_url=str(settings.MEMORYHUB_LLM_URL),
            model=model_name(),
            api_key=settings.MEMORYHUB_LLM_API_KEY,
            timeout=float(settings.MEMORYHUB_LLM_TIMEOUT_SECONDS),
            max_tokens=int(settings.MEMORYHUB_LLM_MAX_TOKENS),
            response_format=settings.MEMORYHUB_EXTRACTION_RESPONSE_FORMAT,
        )

    def ask(
        self,
        purpose: str,
        messages: list[dict[str, str]],
        *,
        schema_name: str,
        schema: dict[str, Any],
        parse: Callable[[Any], T],
    ) -> tuple[T, int, int]:
        """Send `messages`, decode the answer's content as JSON and hand it to `parse` (which
        raises Malformed when it is not of the shape asked for); return (parsed value, prompt
        tokens, completion tokens). Raises LLMTimeout, LLMUnavailable or Malformed; every call is
        counted, its tokens too when it was answered."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "stream": False,
        }
        if self.response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "strict": True, "schema": schema},
            }
        elif self.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        started = time.perf_counter()
        try:
            answer = self._http.post(body)
        except LLMTimeout:
            metrics.observe_llm_call(purpose, "timeout", time.perf_counter() - started)
            raise
        except LLMUnavailable:
            metrics.observe_llm_call(purpose, "error", time.perf_counter() - started)
            raise
        seconds = time.perf_counter() - started
        try:
            content = self._content(answer)
        except LLMUnavailable:
            metrics.observe_llm_call(purpose, "error", seconds)
            raise
        prompt_tokens, completion_tokens = _usage(answer, messages, content)
        try:
            value = parse(decode_json(content))
        except Malformed:
            metrics.observe_llm_call(
                purpose, "malformed", seconds, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
            raise
        metrics.observe_llm_call(
            purpose, "ok", seconds, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        return value, prompt_tokens, completion_tokens

    def _content(self, answer: Any) -> str:
        _, message = self._http.first_message(answer)
        content = message.get("content")
        if not isinstance(content, str):
            raise self._http.fail("choices[0].message.content is not a string")
        return content


_THINK = re.compile(r"<think>.*?</think>", re.S)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)
# What of a malformed answer is kept in the job's last_error and the log.
SHOWN_CHARS = 200


def decode_json(content: str) -> Any:
    """The JSON value of a model's answer, tolerating what models wrap it in: a <think> block
    (reasoning models) and a ```json fence. Raises Malformed otherwise."""
    text = _THINK.sub("", content).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except ValueError:
        shown = content if len(content) <= SHOWN_CHARS else content[: SHOWN_CHARS - 1] + "…"
        raise Malformed(f"the model's answer is not JSON: {shown!r}") from None


def _usage(answer: dict[str, Any], messages: list[dict[str, str]], content: str) -> tuple[int, int]:
    """(prompt, completion) tokens as reported; estimated (4 characters a token) where not, so the
    cost of a provider that reports none is not counted as zero."""
    usage = answer.get("usage")

    def count(name: str) -> int | None:
        value = usage.get(name) if isinstance(usage, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    prompt = count("prompt_tokens")
    completion = count("completion_tokens")
    if prompt is None:
        prompt = sum(len(message.get("content", "")) for message in messages) // 4 + 1
    if completion is None:
        completion = len(content) // 4 + 1
    return prompt, completion
