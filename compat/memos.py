"""The MemOS operations: MemOS requests in, MemOS-shaped `data` out.

Each function takes the caller's `Access` and a request model (`schemas`) and performs the one
implementation of each thing: the memory operations (write, search, list, get by id, delete;
`access.operations.perform`, whose runner checks the grants) and `agents.chat` (grounded chat).
This module only translates: cubes to namespaces, messages to memories, memories to MemOS memory
items, MemOS filters to the graph's filter description.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction

from access import namespaces
from access.operations import allowed, check, perform
from access.permissions import Access
from agents import chat as chat_service
from compat import filters, schemas
from graph import limits, validity
from graph.exceptions import InvalidArgument
from kernel.errors import DomainError
from memory import limits as memory_limits
from memory import operations
from memory.scopes import Scope, user_scope, user_targets
from memory.services import NewMemory
from vectors.embedding import embedded_ahead

MEMORY_TYPE = filters.MEMORY_TYPE
SESSION_TAG = filters.SESSION_TAG
ROLE_TAG = "role:"
MAX_ROLE_LENGTH = 100
# get_all lists at most this many memories (MemOS' playground tree shows 200 nodes).
GET_ALL_LIMIT = 200
# get_memory pages: MemOS returns everything when no page is asked for; here a page is bounded.
MAX_PAGE_SIZE = 100
# Search types MemOS would return for a memory here (every one is long-term).
TEXT_MEMORY_TYPES = ("All", MEMORY_TYPE)
# Search modes of search_type (get_all).
SEARCH_TYPES = {None: "hybrid", "embedding": "vector", "fulltext": "keyword"}


class MemoryNotFound(DomainError):
    """No readable memory has this id (unreadable ones look the same)."""

    code = "not_found"

    def __init__(self, memory_id: str) -> None:
        # MemOS' own wording.
        super().__init__(f"Memory with ID {memory_id} not found", memory_id=memory_id)


# --- translation helpers --------------------------------------------------------------------------


def cubes(value: schemas.CubeIds, deprecated: str | None = None, *, user_id: str | None = None) -> list[str] | None:
    """A cube list (or one cube, or the deprecated single `mem_cube_id`) as namespace names, the
    request's `user_id` standing for the user's own cube (`memory.scopes.user_scope`); None
    when nothing was given (the caller's default applies)."""
    given = [value] if isinstance(value, str) else list(value or [])
    if not given and deprecated:
        given = [deprecated]
    given = [cube for cube in given if cube]
    return (
        list(dict.fromkeys(cube if user_id and cube == user_id else namespaces.validate(cube) for cube in given))
        or None
    )


def _own(access: Access) -> Callable[[], str]:
    """The key's default namespace, where each user's own memories are (NamespaceRequired without one)."""
    return lambda: namespaces.validate(access.resolve_namespace())


def _scope(access: Access, user_id: str | None, named: list[str] | None) -> Scope:
    return user_scope(user_id, named, _own(access))


def _shown(scope: Scope, named: list[str] | None) -> list[str] | None:
    """The cube of each group a named scope always answers (even when empty), by the caller's names."""
    return [scope.label(space) for space in scope.namespace or []] if named is not None else None


def _tag(memory: Any, prefix: str) -> str | None:
    return next((tag[len(prefix) :] for tag in memory["tags"] if tag.startswith(prefix)), None)


def memory_item(memory: Any, *, relativity: float | None = None) -> dict[str, Any]:
    """A search hit or a stored memory as a MemOS TextualMemoryItem (`format_memory_item`: the
    embedding blanked, `ref_id`, `id` and `memory` copied into the metadata)."""
    identifier = memory["id"]
    ref_id = f"[{identifier.split('-')[0]}]"
    role = _tag(memory, ROLE_TAG)
    metadata: dict[str, Any] = {
        "user_id": memory["actorId"] or None,
        "session_id": _tag(memory, SESSION_TAG),
        # MemOS' status of a memory replaced by a newer one: archived (found by as_of / include_expired).
        "status": "activated" if memory.get("current", True) else "archived",
        "type": "fact",
        "key": memory["entityName"],
        "source": "conversation" if role else None,
        "tags": memory["tags"],
        "visibility": None,
        "created_at": memory["createdAt"],
        # Memories are never edited in place.
        "updated_at": memory["createdAt"],
        "info": None,
        "memory_type": MEMORY_TYPE,
        "sources": [{"type": "chat", "role": role}] if role else [],
        "embedding": [],
        "usage": [],
        "background": "",
        "file_ids": [],
        "user_name": memory["namespace"],
        "expires_at": memory["expiresAt"],
        "mention_count": memory.get("mentionCount", 1),
        "last_seen": memory.get("lastSeen", memory["createdAt"]),
        # Validity and lineage (graph/validity.py), snake_case as MemOS names its fields.
        "valid_from": memory.get("validFrom", memory["createdAt"]),
        "valid_to": memory.get("validTo"),
        "supersedes": memory.get("supersedes"),
        "superseded_by": memory.get("supersededBy"),
        "source_id": memory.get("sourceId"),
        "extracted_by": memory.get("extractedBy"),
        "id": identifier,
        "memory": memory["text"],
        "ref_id": ref_id,
    }
    if relativity is not None:
        metadata["relativity"] = relativity
    return {"id": identifier, "memory": memory["text"], "metadata": metadata, "ref_id": ref_id}


def _grouped(
    items: Iterable[tuple[str, dict[str, Any]]], *, named: list[str] | None, totals: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """[{cube_id, memories, total_nodes}] in order of first appearance; every named cube gets a
    group, even an empty one (as MemOS answers one group per cube asked for)."""
    groups: dict[str, list[dict[str, Any]]] = {cube: [] for cube in named or []}
    for cube, item in items:
        groups.setdefault(cube, []).append(item)
    return [
        {"cube_id": cube, "memories": found, "total_nodes": (totals or {}).get(cube, len(found))}
        for cube, found in groups.items()
    ]


def _empty_groups(text_groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"cube_id": group["cube_id"], "memories": [], "total_nodes": 0} for group in text_groups]


def _minimum(*values: float | None) -> float:
    return max((value for value in values if value is not None), default=0.0)


# --- /product/add ---------------------------------------------------------------------------------


def _content(content: str | list[Any], index: int) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif part.type in (None, "text", "input_text") and isinstance(part.text, str):
            texts.append(part.text)
        else:
            raise InvalidArgument(
                f"messages[{index}].content: only text parts are stored, not {part.type!r}", field="messages"
            )
    return "\n".join(texts)


def _role(value: str | None, index: int) -> str:
    role = (value or "user").strip()
    if not role or len(role) > MAX_ROLE_LENGTH:
        raise InvalidArgument(f"messages[{index}].role must be 1 to {MAX_ROLE_LENGTH} characters", field="messages")
    return role


def messages_of(request: schemas.AddRequest) -> list[tuple[str, str]]:
    """(role, text) of every message of an add request, blank ones included: `messages` (a string
    is one user message), then the deprecated `memory_content` (as MemOS appends it)."""
    if request.doc_path:
        raise InvalidArgument(
            "doc_path is not supported: this server does not read files; send the document's text in messages",
            field="doc_path",
        )
    if request.messages is None and request.memory_content is None:
        raise InvalidArgument("messages is required: a string, or a list of {role, content} messages", field="messages")
    given = request.messages
    found: list[tuple[str, str]] = []
    if isinstance(given, str):
        found.append(("user", given))
    elif given is not None:
        limits.items(given, field="messages")
        for index, message in enumerate(given):
            if isinstance(message, str):
                found.append(("user", message))
            elif message.content is not None:
                found.append((_role(message.role, index), _content(message.content, index)))
            elif message.type in ("text", "input_text") and message.text is not None:
                found.append((_role(message.role, index), message.text))
            elif message.type:
                raise InvalidArgument(
                    f"messages[{index}]: only text messages are stored, not {message.type!r}", field="messages"
                )
            else:
                raise InvalidArgument(f"messages[{index}] has no content", field="messages")
    if request.memory_content is not None:
        found.append(("user", request.memory_content))
    limits.items(found, field="messages")
    return found


def chat_times_of(request: schemas.AddRequest) -> list[str | None]:
    """Per message of `messages_of` (in its order): its chat_time as a stored time, the memory's
    validFrom (None when not given); one that is not a time is refused, naming the message."""
    given = request.messages
    times: list[str | None] = []
    if isinstance(given, str):
        times.append(None)
    elif given is not None:
        for index, message in enumerate(given):
            moment = None if isinstance(message, str) else message.chat_time
            if moment is not None and moment.strip():
                times.append(validity.parse_time(moment, field=f"messages[{index}].chat_time"))
            else:
                times.append(None)
    if request.memory_content is not None:
        times.append(None)
    return times


def add(access: Access, request: schemas.AddRequest) -> list[dict[str, Any]]:
    """Store each non-empty message as a memory in every writable cube (the user's own cube, in
    the key's default namespace, when none is named), synchronously; the grants of every cube are checked before
    anything is written, and all cubes are written in one transaction."""
    found = messages_of(request)
    times = chat_times_of(request)
    named = cubes(request.writable_cube_ids, request.mem_cube_id, user_id=request.user_id)
    targets = user_targets(request.user_id, named, _own(access))
    for target, _ in targets:
        check(access, operations.WRITE, namespace=target)
    extra = [*(request.custom_tags or []), *([f"{SESSION_TAG}{request.session_id}"] if request.session_id else [])]
    new = [
        NewMemory(text=text, actor_id=request.user_id or "", tags=(f"{ROLE_TAG}{role}", *extra), valid_from=at)
        for (role, text), at in zip(found, times, strict=True)
        if text.strip()
    ]
    if not new:
        return []
    added: list[dict[str, Any]] = []
    # Embedded once, before the transaction: every cube stores the same texts, and the write lock
    # is not held while the model runs.
    with embedded_ahead(memory.text for memory in new), transaction.atomic():
        for target, cube in targets:
            written = perform(
                access, operations.WRITE, namespace=target, memories=new, dedupe=request.dedupe, infer=request.infer
            )
            added += [
                {
                    "memory": memory.text,
                    "memory_id": stored["id"],
                    "memory_type": MEMORY_TYPE,
                    "cube_id": cube,
                    "duplicate_of": stored["duplicateOf"],
                    **({"inferred": stored["inferred"]} if "inferred" in stored else {}),
                }
                for memory, stored in zip(new, written, strict=True)
            ]
    return added


# --- /product/search ------------------------------------------------------------------------------


def search(access: Access, request: schemas.SearchRequest) -> dict[str, Any]:
    """The best `top_k` memories of the readable cubes (when none is named: the user's own, or
    without a user_id every namespace the key can read), grouped by cube, the cube of the best
    memory first."""
    condition = filters.parse(request.filter)
    wanted = memory_limits.top_k(request.top_k, field="top_k")
    named = cubes(request.readable_cube_ids, request.mem_cube_id, user_id=request.user_id)
    scope = _scope(access, request.user_id, named)
    found = perform(
        access,
        operations.SEARCH,
        namespace=scope.namespace,
        query=request.query,
        actor_in=scope.actor_in,
        # A filter is applied to the best 50, so that top_k of those passing it are found.
        top_k=memory_limits.MAX_TOP_K if condition else wanted,
        **request.moment(),
    )["results"]
    minimum = _minimum(request.relativity, request.threshold)
    hits = [hit for hit in found if hit["score"] >= minimum and filters.matches(condition, hit)][:wanted]
    if request.search_memory_type not in TEXT_MEMORY_TYPES:
        hits = []
    text_mem = _grouped(
        ((scope.label(hit["namespace"]), memory_item(hit, relativity=hit["score"])) for hit in hits),
        named=_shown(scope, named),
    )
    return {
        "text_mem": text_mem,
        "pref_mem": _empty_groups(text_mem) if request.include_preference else [],
        "tool_mem": _empty_groups(text_mem),
        "skill_mem": _empty_groups(text_mem),
        "pref_note": "",
        "pref_string": "",
    }


# --- /product/chat/complete -----------------------------------------------------------------------


def chat_complete(access: Access, request: schemas.ChatCompleteRequest) -> tuple[dict[str, str], str]:
    """Answer grounded in the readable cubes' memories (the user's own when none is named); the
    exchange is recorded in the first writable cube, else in the user's own cube, unless
    add_message_on_answer is false. Recording never fails the answer: when it cannot be done
    (no LLM, no default namespace, no write grant on it) the second value says why, for the
    envelope's message."""
    condition = filters.parse(request.filter)
    user = request.user_id
    scope = _scope(access, user, cubes(request.readable_cube_ids, request.mem_cube_id, user_id=user))
    writable = cubes(request.writable_cube_ids, request.mem_cube_id, user_id=user)
    answer = chat_service.chat(
        access,
        query=request.query,
        user_id=user,
        readable=scope.namespace,
        actor_in=scope.actor_in,
        writable=user_targets(user, writable, _own(access))[0][0] if writable else None,
        history=[turn.model_dump() for turn in request.history] if request.history is not None else None,
        system_prompt=request.system_prompt or request.base_prompt,
        top_k=request.top_k,
        threshold=_minimum(request.threshold, request.relativity) or None,
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        model=request.model_name_or_path,
        add_message_on_answer=request.add_message_on_answer,
        tags=[f"{SESSION_TAG}{request.session_id}"] if request.session_id else [],
        keep=(lambda hit: filters.matches(condition, hit)) if condition else None,
    )
    return {"response": answer.response, "reasoning": answer.reasoning}, answer.not_recorded


# --- /product/get_all, /product/get_memory, /product/get_memory/{id} ------------------------------


def get_all(access: Access, request: schemas.GetAllRequest) -> list[dict[str, Any]]:
    """text_mem: the newest GET_ALL_LIMIT memories of the cubes (when none is named: the user's
    own, or without a user_id every namespace the key can read), grouped by cube (with
    search_query: the best 50 matches instead). Other memory types do not exist here: []."""
    if request.memory_type != "text_mem":
        return []
    named = cubes(request.mem_cube_ids, user_id=request.user_id)
    scope = _scope(access, request.user_id, named)
    if request.search_query is not None and request.search_query.strip():
        found = perform(
            access,
            operations.SEARCH,
            namespace=scope.namespace,
            query=request.search_query,
            actor_in=scope.actor_in,
            top_k=memory_limits.MAX_TOP_K,
            mode=SEARCH_TYPES[request.search_type],
            **request.moment(),
        )["results"]
        return _grouped(
            ((scope.label(hit["namespace"]), memory_item(hit, relativity=hit["score"])) for hit in found),
            named=_shown(scope, named),
        )
    listed = perform(
        access,
        operations.LIST,
        namespace=scope.namespace,
        actor_in=scope.actor_in,
        limit=GET_ALL_LIMIT,
        **request.moment(),
    )
    return _grouped(
        ((scope.label(memory["namespace"]), memory_item(memory)) for memory in listed["memories"]),
        named=_shown(scope, named),
        totals={scope.label(space): total for space, total in listed["totals"].items()},
    )


def get_memories(access: Access, request: schemas.GetMemoryRequest) -> dict[str, Any]:
    """One page of a cube's memories, newest first, with the number matching in total."""
    page = request.page or 1
    size = request.page_size or MAX_PAGE_SIZE
    if size > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be from 1 to {MAX_PAGE_SIZE}", field="page_size")
    condition = filters.parse(request.filter)
    named = cubes(request.mem_cube_id, user_id=request.user_id) or [namespaces.validate(request.mem_cube_id)]
    scope = _scope(access, request.user_id, named)
    (cube,) = _shown(scope, named) or named
    listed = perform(
        access,
        operations.LIST,
        namespace=scope.namespace,
        actor_in=scope.actor_in,
        limit=size,
        offset=(page - 1) * size,
        where=filters.where(condition) if condition else None,
        **request.moment(),
    )
    text_mem = [
        {
            "cube_id": cube,
            "memories": [memory_item(memory) for memory in listed["memories"]],
            "total_nodes": listed["total"],
        }
    ]
    return {
        "text_mem": text_mem,
        "pref_mem": _empty_groups(text_mem) if request.include_preference else [],
        "tool_mem": _empty_groups(text_mem) if request.include_tool_memory else [],
        "skill_mem": _empty_groups(text_mem) if request.include_skill_memory else [],
    }


def get_memory(access: Access, memory_id: str, user_id: str | None = None) -> dict[str, Any]:
    """One memory by id; with a user_id, only one of that user's own memories."""
    found = perform(access, operations.GET, id=memory_id)
    if found is None or (user_id and not _scope(access, user_id, None).holds(found)):
        raise MemoryNotFound(memory_id)
    return memory_item(found)


# --- /product/delete_memory -----------------------------------------------------------------------


def delete(access: Access, request: schemas.DeleteMemoryRequest) -> dict[str, Any]:
    """Delete the listed memories the key may write: with writable_cube_ids, only those in these
    cubes; else, with a user_id, only the user's own. Ids that are not deleted are reported, not
    refused: unknown and unwritable ids look the same."""
    if request.file_ids is not None or request.filter:
        raise InvalidArgument(
            "only deletion by memory_ids is supported here (there are no files, and filters are not used to delete)",
            field="file_ids" if request.file_ids is not None else "filter",
        )
    if request.memory_ids is None:
        raise InvalidArgument("memory_ids is required: the ids of the memories to delete", field="memory_ids")
    limits.items(request.memory_ids, field="memory_ids")
    named = cubes(request.writable_cube_ids, user_id=request.user_id)
    scope = _scope(access, request.user_id, named) if named is not None or request.user_id else Scope(None)
    given = list(dict.fromkeys(request.memory_ids))
    if named is not None:
        check(access, operations.DELETE, namespace=scope.namespace)  # named cubes must all be writable
    elif scope.namespace is not None and not all(
        allowed(access, operations.DELETE, namespace=space) for space in scope.namespace
    ):
        # The user's own memories are in a namespace this key cannot write: none is deleted.
        return {"status": "success", "deleted": [], "not_deleted": given}
    deleted: list[str] = []
    not_deleted: list[str] = []
    for memory_id in given:
        try:
            outcome = perform(
                access,
                operations.DELETE,
                namespace=scope.namespace,
                actor_in=scope.actor_in,
                id=memory_id,
                purge=request.purge,
            )
        except InvalidArgument:  # not one of our ids (e.g. a MemOS uuid): nothing to delete
            not_deleted.append(memory_id)
            continue
        (deleted if outcome["deleted"] else not_deleted).append(memory_id)
    return {"status": "success", "deleted": deleted, "not_deleted": not_deleted}
