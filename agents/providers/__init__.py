"""Chat providers: which one answers, built from settings or from an agent's own settings.

- `default_provider()`: the server's provider (MEMORYHUB_LLM_*), built once per process.
- `provider_for(agent)`: an agent's provider; its empty fields fall back to the server's.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from agents.exceptions import ProviderUnavailable
from agents.providers.base import ChatMessage, ChatProvider, ChatRequest, Completion, Usage

if TYPE_CHECKING:
    from agents.models import Agent

__all__ = ["ChatMessage", "ChatProvider", "ChatRequest", "Completion", "Usage", "default_provider", "provider_for"]


def build(
    kind: str, *, url: str | None, model: str | None, api_key: str | None, max_tokens: int | None = None
) -> ChatProvider:
    if kind == "extractive":
        from agents.providers.extractive import ExtractiveProvider

        return ExtractiveProvider()
    from agents.providers.openai import OpenAICompatibleProvider

    if not url or not model:
        raise ValueError("an OpenAI-compatible provider needs a base URL and a model")
    return OpenAICompatibleProvider(
        base_url=url,
        model=model,
        api_key=api_key,
        timeout=float(settings.MEMORYHUB_LLM_TIMEOUT_SECONDS),
        retries=int(settings.MEMORYHUB_LLM_RETRIES),
        max_tokens=max_tokens or int(settings.MEMORYHUB_LLM_MAX_TOKENS),
    )


@functools.cache
def default_provider() -> ChatProvider:
    return build(
        settings.MEMORYHUB_LLM_PROVIDER,
        url=settings.MEMORYHUB_LLM_URL,
        model=settings.MEMORYHUB_LLM_MODEL,
        api_key=settings.MEMORYHUB_LLM_API_KEY,
    )


def provider_for(agent: Agent) -> ChatProvider:
    """The agent's provider: its own kind, URL, key and model where set, the server's otherwise.
    An agent with its own URL is OpenAI-compatible unless it says otherwise.

    Raises `ProviderUnavailable` naming the agent when it would be OpenAI-compatible but has no
    URL or model (neither its own nor the server's), or its URL is not an http(s) URL: that is
    a configuration the caller cannot fix, and it must not surface as a server error.
    """
    kind = agent.provider or ("openai" if agent.provider_url else settings.MEMORYHUB_LLM_PROVIDER)
    if kind == "extractive":
        return build("extractive", url=None, model=None, api_key=None)
    url = agent.provider_url or settings.MEMORYHUB_LLM_URL
    model = agent.base_model or settings.MEMORYHUB_LLM_MODEL
    # Unsaved agents (admin previews, tests) have no id yet.
    label = f"Agent {agent.name!r}" + (f" (#{agent.pk})" if agent.pk is not None else "")
    missing = [name for name, value in (("URL", url), ("model", model)) if not value]
    if missing:
        raise ProviderUnavailable(
            f"{label} uses an OpenAI-compatible provider but has no "
            f"{' and no '.join(missing)}, and the server sets none (MEMORYHUB_LLM_URL / MEMORYHUB_LLM_MODEL)",
            agent_id=agent.pk,
        )
    try:
        return build(
            "openai",
            url=url,
            model=model,
            # The server's key is for the server's URL; it is never sent to an agent's own URL.
            api_key=agent.provider_api_key or (None if agent.provider_url else settings.MEMORYHUB_LLM_API_KEY),
            max_tokens=agent.max_tokens,
        )
    except ValueError as exc:
        # The message may quote the URL; callers must not see credentials written into it.
        reason = re.sub(r"//[^/@\s]*@", "//", str(exc))
        raise ProviderUnavailable(
            f"{label} has an unusable provider configuration: {reason}", agent_id=agent.pk
        ) from None


@receiver(setting_changed)
def _reset(setting: str, **kwargs: object) -> None:
    # Tests switch providers with override_settings.
    if setting.startswith("MEMORYHUB_LLM_"):
        default_provider.cache_clear()
