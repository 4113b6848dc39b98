"""Memory-grounded chat: answer a question from what the caller's namespaces remember.

One service behind MemOS' `POST /product/chat/complete` and the MCP `chat` tool:

1. retrieve the memories closest to the query (the memory search operation, performed through
   `access.operations`, so scoped by the key's grants: the namespaces asked for, or every
   namespace the key can read);
2. drop those scoring under `threshold` (and those a caller's `keep` rejects);
3. ask the server's chat provider (`agents.providers.default_provider()`, MEMORYHUB_LLM_*) with
   those memories, which the provider renders into the system message;
4. split a `<think>…</think>` block out of the answer into `reasoning`;
5. when `add_message_on_answer`, record the exchange (the query and the answer, tagged
   `role:user` / `role:assistant`, actor = `user_id`) in the writable namespace named, else in the
   key's default namespace (the user's own memories, see `memory.scopes`), with the memory write
   operation.

Recording is a side effect and never fails the answer, except where the caller named the
namespace to record in: that one's write grant is checked before the provider is called (a key
that cannot record there fails fast instead of spending a model call). Otherwise, when there is
no default namespace or no write grant on it, the answer comes back with `not_recorded` saying
why. Nothing is recorded with the offline extractive provider (no LLM configured): its answer
recites memories that are stored already, and the question alone is not a fact; recorded, it
would come back as a "remembered fact" to later questions. The exchange is written only after a
successful answer. Provider failures raise `ProviderUnavailable` / `ProviderTimeout`
(`agents.exceptions`), which every edge maps to its own error (502/504, MCP `isError`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from access import namespaces
from access.operations import allowed, check, perform
from access.permissions import Access
from agents.providers import ChatMessage, ChatRequest, Usage, default_provider
from graph import limits
from kernel.errors import InvalidArgument
from memory import limits as memory_limits
from memory import operations
from memory.selectors import MemoryHit
from memory.services import NewMemory

USER_TAG = "role:user"
ASSISTANT_TAG = "role:assistant"

# Sampling bounds of the OpenAI chat API, which every provider we speak to follows.
MAX_TEMPERATURE = 2.0

# Roles a history turn may have. Tool results are left out: chat APIs only accept them right after
# the assistant turn that called the tool, which a memory chat never makes.
HISTORY_ROLES = ("system", "user", "assistant")

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


@dataclass(frozen=True)
class ChatAnswer:
    response: str
    # The model's reasoning (the `<think>` block), "" when it gave none.
    reasoning: str
    # The memories the answer was grounded on, best first.
    memories: list[MemoryHit]
    usage: Usage
    model: str
    # Ids of the memories that recorded the exchange (empty when add_message_on_answer is off).
    recorded: list[str] = field(default_factory=list)
    # Why the exchange was not recorded although add_message_on_answer asked for it; "" otherwise.
    not_recorded: str = ""


def split_reasoning(text: str) -> tuple[str, str]:
    """(response, reasoning) of a model's answer: every `<think>…</think>` block goes to the
    reasoning (joined by blank lines), the rest is the response; both stripped.

    Two truncated forms are handled as open models emit them: an opening `<think>` never closed
    (the answer ran out inside the reasoning: all of it is reasoning), and a closing `</think>`
    with no opening tag (templates that put `<think>` in the prompt: what precedes it is
    reasoning)."""
    thoughts = [part.strip() for part in _THINK.findall(text)]
    rest = _THINK.sub("", text)
    if "<think>" in rest:
        before, _, after = rest.partition("<think>")
        thoughts.append(after.strip())
        rest = before
    elif "</think>" in rest:
        before, _, after = rest.rpartition("</think>")
        thoughts.insert(0, before.replace("</think>", "").strip())
        rest = after
    return rest.strip(), "\n\n".join(thought for thought in thoughts if thought)


# --- validation -----------------------------------------------------------------------------------


def _number(value: Any, *, field: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"{field} must be a number from {low:g} to {high:g}", field=field)
    if not low <= value <= high:
        raise InvalidArgument(f"{field} must be a number from {low:g} to {high:g}", field=field)
    return float(value)


def _max_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument("max_tokens must be a whole number, 1 or more", field="max_tokens")
    return value  # providers cap it at their own limit


def _history(value: Any) -> list[ChatMessage]:
    """Earlier turns of the conversation: [{role, content}], oldest first."""
    if value is None:
        return []
    limits.items(value, field="history")
    turns: list[ChatMessage] = []
    for index, turn in enumerate(value):
        role = turn.get("role") if isinstance(turn, dict) else None
        content = turn.get("content") if isinstance(turn, dict) else None
        if role not in HISTORY_ROLES or not isinstance(content, str):
            raise InvalidArgument(
                f"history[{index}] must be {{role, content}} with role one of {', '.join(HISTORY_ROLES)} and content a string",
                field="history",
            )
        if content.strip():
            turns.append(ChatMessage(role, limits.observation(content, field=f"history[{index}].content")))
    return turns


def _tags(value: Sequence[str]) -> tuple[str, ...]:
    tags = tuple(value)
    if len(tags) >= memory_limits.MAX_TAGS or not all(
        isinstance(tag, str) and tag.strip() and len(tag) <= memory_limits.MAX_TAG_LENGTH for tag in tags
    ):
        raise InvalidArgument(
            f"tags must be fewer than {memory_limits.MAX_TAGS} strings of 1 to {memory_limits.MAX_TAG_LENGTH} "
            "characters",
            field="tags",
        )
    return tags


def _storable(answer: str) -> str:
    """The answer as a memory can hold it: a model's text may be longer than an observation may be
    (MEMORYHUB_MAX_OBSERVATION_BYTES), or carry NULs or lone surrogates. The answer returned to
    the caller is untouched; refusing to record it after the model was paid for would lose it."""
    raw = answer.replace("\x00", "").encode("utf-8", errors="replace")
    return raw[: limits.limit("MAX_OBSERVATION_BYTES")].decode("utf-8", errors="ignore")


NO_MODEL = "no language model is configured on this server, and a question alone is not a fact to remember"
NO_DEFAULT = "the API key has no default namespace to record it in"


def _writable(access: Access, writable: str | Sequence[str] | None) -> tuple[str | None, str]:
    """Where the exchange is recorded, or None and why not: the first writable namespace given
    (which must be writable: the caller asked for it), else the key's default, when it has one
    and may write there."""
    first = writable if isinstance(writable, str) else next(iter(writable or ()), None)
    if first:
        target = namespaces.validate(first)
        check(access, operations.WRITE, namespace=target)
        return target, ""
    if not access.default_namespace:
        return None, NO_DEFAULT
    target = namespaces.validate(access.default_namespace)
    if not allowed(access, operations.WRITE, namespace=target):
        return None, f"the API key has no write grant for namespace {target!r}"
    return target, ""


# --- the service ----------------------------------------------------------------------------------


def chat(
    access: Access,
    *,
    query: Any,
    user_id: str | None = None,
    readable: str | list[str] | None = None,
    actor_in: Mapping[str, str] | None = None,
    writable: str | Sequence[str] | None = None,
    history: Any = None,
    system_prompt: str | None = None,
    top_k: Any = memory_limits.DEFAULT_TOP_K,
    threshold: Any = None,
    max_tokens: Any = None,
    temperature: Any = None,
    top_p: Any = None,
    model: str | None = None,
    add_message_on_answer: bool = True,
    tags: Sequence[str] = (),
    keep: Callable[[MemoryHit], bool] | None = None,
) -> ChatAnswer:
    """Answer `query` grounded in the caller's memories (see the module docstring).

    `readable` and `actor_in` are what the memory search takes (a namespace, a list, or None:
    every namespace the key can read; the namespaces where only one actor's memories are read);
    `writable` names where the exchange is recorded (first of the list, else the key's default
    namespace). `top_k` is 1..50, `threshold` a minimum score in [0, 1].
    `tags` are added to both recorded memories (e.g. a session tag); `keep` lets an edge apply its
    own filter to the retrieved memories (the best 50 are then considered, and `top_k` of those
    kept are used)."""
    text = memory_limits.query(query)
    wanted = memory_limits.top_k(top_k, field="top_k")
    minimum = _number(threshold, field="threshold", low=0.0, high=1.0)
    sampling_temperature = _number(temperature, field="temperature", low=0.0, high=MAX_TEMPERATURE)
    nucleus = _number(top_p, field="top_p", low=0.0, high=1.0)
    limit = _max_tokens(max_tokens)
    turns = _history(history)
    prompt = system_prompt.strip() if isinstance(system_prompt, str) else ""
    if prompt:
        limits.observation(prompt, field="system_prompt")
    actor = memory_limits.actor(user_id, field="user_id")
    extra_tags = _tags(tags)
    # Checked before the model is called: a named namespace that cannot be recorded in must not
    # cost a call.
    target, not_recorded = _writable(access, writable) if add_message_on_answer else (None, "")
    provider = default_provider()
    if target is not None and provider.kind == "extractive":
        target, not_recorded = None, NO_MODEL

    found = perform(
        access,
        operations.SEARCH,
        namespace=readable,
        query=text,
        actor_in=actor_in,
        top_k=memory_limits.MAX_TOP_K if keep else wanted,
    )["results"]
    hits = [hit for hit in found if (minimum is None or hit["score"] >= minimum) and (keep is None or keep(hit))][
        :wanted
    ]

    messages = [*([ChatMessage("system", prompt)] if prompt else []), *turns, ChatMessage("user", text)]
    completion = provider.complete(
        ChatRequest(
            messages=tuple(messages),
            memories=tuple(hit["text"] for hit in hits),
            max_tokens=limit,
            temperature=sampling_temperature,
            top_p=nucleus,
            model=model or None,
        )
    )
    response, reasoning = split_reasoning(completion.text)

    recorded: list[str] = []
    if target is not None:
        exchange = [NewMemory(text=text, actor_id=actor, tags=(USER_TAG, *extra_tags))]
        if response:
            exchange.append(NewMemory(text=_storable(response), actor_id=actor, tags=(ASSISTANT_TAG, *extra_tags)))
        recorded = [written["id"] for written in perform(access, operations.WRITE, namespace=target, memories=exchange)]
    return ChatAnswer(
        response=response,
        reasoning=reasoning,
        memories=hits,
        usage=completion.usage,
        model=completion.model,
        recorded=recorded,
        not_recorded=not_recorded,
    )
