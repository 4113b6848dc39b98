"""A chat provider speaking the OpenAI chat completions API (OpenAI, DeepSeek, Ollama, vLLM,
llama.cpp server, hosted gateways), over the standard library's HTTP client.

HTTP behaviour (retries, timeout, redirects, redaction) is `kernel.http_client.JsonPoster`'s,
the same as the embeddings client's; this module only builds the request and reads the answer.
"""

from __future__ import annotations

from typing import Any

from agents.exceptions import ProviderTimeout, ProviderUnavailable
from agents.providers.base import (
    ChatProvider,
    ChatRequest,
    Completion,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
    grounded_messages,
)
from kernel.http_client import Endpoint, JsonPoster


class OpenAICompatibleProvider(ChatProvider):
    """`POST {base_url}/chat/completions`, not streamed.

    Request: `{"model", "messages": grounded_messages(request), "max_tokens", "stream": false}`
    plus `temperature` / `top_p` only when the request gives them (so the provider's own defaults
    apply otherwise), and `Authorization: Bearer <api_key>` when a key is set. `max_tokens` is the
    request's limit capped at this provider's (an agent's limit is a ceiling callers cannot lift).

    Answer: `choices[0].message.content`. When the message also carries the model's reasoning
    (`reasoning_content`, as DeepSeek's reasoner sends it), the text is
    `"<think>" + reasoning + "</think>" + content`, the form open models emit inline, so callers
    split reasoning off one way for every provider. Usage comes from `usage`; a provider that
    sends none (some local servers) is estimated with `estimate_prompt_tokens` /
    `estimate_tokens`, so metering never sees zero for real work.

    Failures raise `ProviderUnavailable` naming the URL (never the key); a timeout raises
    `ProviderTimeout` at once, without retrying. Connection errors, 429 and 5xx are retried
    `retries` times. An answer that is not JSON, has no choices, or whose content is not a string
    is `ProviderUnavailable` too.
    """

    kind = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 1,
        max_tokens: int = 1024,
        backoff_seconds: float = 0.5,
    ) -> None:
        endpoint = Endpoint.parse(base_url, "/chat/completions")
        if not model or not model.strip():
            raise ValueError("model must not be empty")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        if backoff_seconds < 0:
            raise ValueError(f"backoff_seconds must be 0 or more, got {backoff_seconds}")
        self.model = model.strip()
        self.max_tokens = max_tokens
        self.display_url = endpoint.display_url
        self._http: JsonPoster[ProviderUnavailable] = JsonPoster(
            endpoint,
            api_key=api_key,
            timeout=timeout,
            retries=retries,
            backoff_seconds=backoff_seconds,
            provider="LLM provider",
            unavailable=ProviderUnavailable,
            timed_out=ProviderTimeout,
        )

    @property
    def timeout(self) -> float:
        return self._http.timeout

    @property
    def retries(self) -> int:
        return self._http.retries

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and tracebacks.
        return f"<{type(self).__name__} {self.model} at {self.display_url}>"

    def complete(self, request: ChatRequest) -> Completion:
        messages = grounded_messages(request)
        model = request.model or self.model
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": message.role, "content": message.content} for message in messages],
            "max_tokens": min(request.max_tokens or self.max_tokens, self.max_tokens),
            "stream": False,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        answer = self._http.post(body)
        text, finish_reason = self._read_choice(answer)
        prompt_tokens, completion_tokens = _reported_usage(answer)
        usage = Usage(
            prompt_tokens=estimate_prompt_tokens(messages) if prompt_tokens is None else prompt_tokens,
            completion_tokens=estimate_tokens(text) if completion_tokens is None else completion_tokens,
        )
        answered_model = answer.get("model")
        return Completion(
            text=text,
            usage=usage,
            model=answered_model if isinstance(answered_model, str) and answered_model else model,
            finish_reason=finish_reason,
        )

    def _read_choice(self, answer: Any) -> tuple[str, str | None]:
        """The text of the first choice (with any reasoning in <think>), and its finish reason."""
        choice, message = self._http.first_message(answer)
        content = message.get("content")
        if not isinstance(content, str):
            raise self._http.fail(f"choices[0].message.content is {type(content).__name__}, not a string")
        # DeepSeek (and vLLM's reasoning parsers) send `reasoning_content`; some gateways and
        # Ollama call the same thing `reasoning`.
        reasoning = message.get("reasoning_content")
        if not isinstance(reasoning, str) or not reasoning:
            reasoning = message.get("reasoning")
        text = f"<think>{reasoning}</think>{content}" if isinstance(reasoning, str) and reasoning else content
        finish_reason = choice.get("finish_reason")
        return text, finish_reason if isinstance(finish_reason, str) else None


def _reported_usage(answer: dict[str, Any]) -> tuple[int | None, int | None]:
    """(prompt_tokens, completion_tokens) as the provider reported them; None where it did not
    (or sent something that is not a token count)."""
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        return None, None

    def count(name: str) -> int | None:
        value = usage.get(name)
        # bool is an int in Python; `true` is not a token count.
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    return count("prompt_tokens"), count("completion_tokens")
