"""Errors of the marketplace and of the LLM providers.

Messages are written for whoever made the call (often a model). Edges map `code` to their own
format: REST 400/402/404/502/504, MCP `isError`, MemOS `{code, message}`.
"""

from __future__ import annotations

from kernel.errors import DomainError


class MarketplaceError(DomainError):
    code = "marketplace_error"


class InvalidArgument(MarketplaceError):
    code = "invalid_argument"


class AgentNotFound(MarketplaceError):
    """No published agent has this id (unpublished agents look the same to callers)."""

    code = "not_found"

    def __init__(self, agent_id: object) -> None:
        super().__init__(f"Agent {agent_id} does not exist or is not available", agent_id=agent_id)


class InsufficientCredits(MarketplaceError):
    code = "insufficient_credits"


class InsufficientTokens(MarketplaceError):
    code = "insufficient_tokens"


class ProviderUnavailable(MarketplaceError):
    """The LLM provider failed (refused, errored, or answered something unusable) after the
    retries it deserved. The message names the provider's URL, never its key."""

    code = "provider_unavailable"


class ProviderTimeout(ProviderUnavailable):
    """The LLM provider did not answer within the configured timeout."""

    code = "provider_timeout"
