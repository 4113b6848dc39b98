"""The offline default provider: no model, so it answers with the memories themselves.

A server without MEMORYHUB_LLM_URL still answers chat calls, and the answer says plainly that no
language model is configured, so neither a user nor a calling model mistakes a list of retrieved
memories for a generated reply.
"""

from __future__ import annotations

import re

from agents.providers.base import (
    ChatProvider,
    ChatRequest,
    Completion,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
    grounded_messages,
)

#: Memories listed at most; retrieval puts the most relevant first, so these are the best ones.
MAX_MEMORIES = 5

# Han ideographs (basic, extension A, compatibility, extensions B+): a question containing any is
# answered in Chinese, the one CJK language the wording below is written in.
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")

_WORDING = {
    "en": (
        "No language model is configured on this server, so here is what I remember that bears on your question:",
        "No language model is configured on this server, and I found nothing in memory about this.",
    ),
    "zh": (
        # Full-width punctuation is correct Chinese, not a look-alike of ASCII.
        "本服务器未配置语言模型，以下是记忆中与您的问题相关的内容：",  # noqa: RUF001
        "本服务器未配置语言模型，记忆中也没有找到相关内容。",  # noqa: RUF001
    ),
}


class ExtractiveProvider(ChatProvider):
    """Answers from `request.memories` without generating.

    The answer is a preface saying no language model is configured, then up to `MAX_MEMORIES`
    memories as a "- " list, in the order given (the caller's ranking); with no memories, one
    sentence saying nothing was found. Chinese wording when the question contains Han
    characters, English otherwise. With `request.max_tokens`, memories are dropped (the last one
    that does not fit is cut short with "…") so `estimate_tokens(text) <= max_tokens`, except
    that the preface is always kept; `finish_reason` is then "length". Deterministic.

    Usage is estimated the way it would be for a generating provider given the same request,
    so an agent costs about the same whichever provider answers.
    """

    kind = "extractive"
    model = "extractive"

    def complete(self, request: ChatRequest) -> Completion:
        preface, nothing_found = _WORDING["zh" if _CJK.search(request.question) else "en"]
        memories = [_as_item(memory) for memory in request.memories]
        memories = [memory for memory in memories if memory][:MAX_MEMORIES]
        if memories:
            text, cut = _fit(preface, memories, request.max_tokens)
        else:
            text, cut = nothing_found, False
        return Completion(
            text=text,
            usage=Usage(
                prompt_tokens=estimate_prompt_tokens(grounded_messages(request)),
                completion_tokens=estimate_tokens(text),
            ),
            model=self.model,
            finish_reason="length" if cut else "stop",
        )


def _as_item(memory: str) -> str:
    # Continuation lines are indented so a multi-line memory stays one item of the list.
    lines = [line.rstrip() for line in memory.strip().splitlines()]
    return "\n  ".join(line for line in lines if line)


def _fit(preface: str, memories: list[str], max_tokens: int | None) -> tuple[str, bool]:
    """The preface and as many memory items as fit in `max_tokens`; True when any were cut."""
    text = preface
    for memory in memories:
        line = f"\n- {memory}"
        if max_tokens is None or estimate_tokens(text + line) <= max_tokens:
            text += line
            continue
        # Part of this memory is better than none, when a useful part fits.
        low, high = 0, len(memory)
        while low < high:  # the longest prefix that fits, by bisection (estimates are monotonic)
            middle = (low + high + 1) // 2
            if estimate_tokens(f"{text}\n- {memory[:middle].rstrip()}…") <= max_tokens:
                low = middle
            else:
                high = middle - 1
        if low >= min(len(memory) // 4, 20) and low > 0:
            text += f"\n- {memory[:low].rstrip()}…"
        return text, True
    return text, False
