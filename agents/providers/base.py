"""The one interface every chat provider implements, and the prompt every one of them sees.

A caller builds a `ChatRequest`: the conversation (`messages`, system prompt first if any) and,
separately, the `memories` the answer should rest on. Keeping memories apart lets the extractive
provider answer from them directly while generating providers get them rendered into the system
message by `grounded_messages`, the same way for all of them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

ROLES = ("system", "user", "assistant", "tool")

MEMORY_PREAMBLE = (
    "You have a long-term memory. These memories were retrieved for the user's latest message, "
    "most relevant first; use them when they bear on it, and say so when they do not answer it:"
)


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    memories: tuple[str, ...] = ()
    # None: the provider's (or agent's) own limit.
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    # Overrides the provider's configured model for this request.
    model: str | None = None

    @property
    def question(self) -> str:
        """The latest user message (what the answer is for)."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    model: str
    # Provider-reported reason the answer ended ("stop", "length", ...), when known.
    finish_reason: str | None = field(default=None)


class ChatProvider(abc.ABC):
    """Answers a chat request. Implementations raise `agents.exceptions.ProviderUnavailable` (or
    its subclass `ProviderTimeout`) on failure and never hang past their timeout."""

    #: "openai", "extractive"
    kind: str
    #: The model answers come from (shown to users, recorded with usage).
    model: str

    @abc.abstractmethod
    def complete(self, request: ChatRequest) -> Completion: ...


def grounded_messages(request: ChatRequest) -> list[ChatMessage]:
    """The request's messages with its memories added to the system message (one is created
    when there is none), as every generating provider sends them."""
    messages = list(request.messages)
    if not request.memories:
        return messages
    listed = "\n".join(f"- {memory}" for memory in request.memories)
    block = f"{MEMORY_PREAMBLE}\n{listed}"
    if messages and messages[0].role == "system":
        messages[0] = ChatMessage("system", f"{messages[0].content}\n\n{block}")
    else:
        messages.insert(0, ChatMessage("system", block))
    return messages


def estimate_tokens(text: str) -> int:
    """An upper-ish estimate of the tokens `text` costs, without a tokenizer: one per three UTF-8
    bytes (English runs about four characters a token, Chinese about one character, three bytes)."""
    return -(-len(text.encode("utf-8")) // 3)


def estimate_prompt_tokens(messages: list[ChatMessage]) -> int:
    # A few tokens of framing per message, as chat templates add.
    return sum(estimate_tokens(message.content) + 4 for message in messages)
