"""The memory tools: free-text memories written and searched by meaning, under the tool and
argument names of the MemOS MCP servers, so that agents set up for MemOS work unchanged.

- `add_memory` / `search_memories` / `chat`: MemOS's example server
  (`examples/mem_mcp/simple_fastmcp_serve.py`): a `cube_id` is a namespace here and `user_id` the
  memory's actor; `chat` answers from memory through `agents.chat` (the service behind MemOS'
  `/product/chat/complete`), whose provider failures come back as `isError`.
- `add_message` / `search_memory` / `delete_memory`: `@memtensor/memos-api-mcp`, the server MemOS's
  Claude Desktop guide sets up: record the conversation after answering, search before answering.

One key may serve many users, told apart by `user_id`, as on `/product/*` (`memory.scopes`): with
a user_id, what no cube names is the user's own memories (those recorded with it in this
connection's namespace; the user_id itself names them too), and a namespace named explicitly is
shared. Without a user_id a tool reaches what the key can.

Every handler performs the memory operations through `access.operations.perform`, whose runner
checks the caller's grants. Search covers free memories and the knowledge graph's observations
alike: both are what a namespace remembers.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field

from access import namespaces
from access.operations import allowed, check, perform
from access.permissions import Access
from agents import chat as chat_service
from graph import validity
from graph.contracts import VERSIONS
from graph.exceptions import InvalidArgument
from graph.limits import limit as store_limit
from mcp_endpoint.registry import Arguments, Tool, ToolContext, declare
from mcp_endpoint.tools.schema import INTEGER, NUMBER, STRING, STRINGS, array_schema, object_schema, optional
from memory import extraction, limits, operations
from memory.limits import MAX_TTL_MS
from memory.scopes import Scope, user_scope
from memory.selectors import SearchResult
from memory.services import NewMemory, WrittenMemory

CATEGORY = "memory"

# memos-api-mcp's memory_limit_number: 6 by default, at most 25.
DEFAULT_MEMORY_LIMIT = 6
MAX_MEMORY_LIMIT = 25
MAX_ROLE_LENGTH = 100
MAX_ITEMS = store_limit("MAX_ITEMS_PER_REQUEST")

# --- output schemas ------------------------------------------------------------------------------

TIME = {"type": ["string", "null"], "description": "ISO 8601 UTC, e.g. 2026-05-01T09:30:00Z"}
MEMORY_ID = {**STRING, "description": "The memory's id, e.g. mem_123 (what delete_memory takes)"}
SCORE = {**NUMBER, "description": "Relevance to the query, 0 to 1 (higher is more relevant)"}
ENTITY_NAME = {
    "type": ["string", "null"],
    "description": "The knowledge-graph entity the text is an observation of; null for a free memory",
}
DUPLICATE_OF = {
    "type": ["string", "null"],
    "description": "The id of the current memory this text says the same as: then nothing new was stored, and "
    "that memory's mentionCount and lastSeen rose. Null when the text was stored",
}
MENTION_COUNT = {**INTEGER, "description": "How often this text was written (repeats are folded into it)"}
LAST_SEEN = {**TIME, "description": "When it was last written (createdAt when only once)"}
DEDUPE = (
    "false: store it even when it says the same as a current memory of this user_id in the namespace (default "
    "true: a repeat is not stored twice; the answer names the memory it repeats in duplicateOf)."
)
# Validity and lineage (graph/validity.py), on every memory the tools return.
VALIDITY = {
    "validFrom": {**TIME, "description": "When the fact became true (createdAt unless given)"},
    "validTo": {**TIME, "description": "When it stopped being true; null while current"},
    "current": {"type": "boolean", "description": "Whether it is true now"},
    "supersedes": {"type": ["string", "null"], "description": "The memory it replaced (mem_...), or null"},
    "supersededBy": {"type": ["string", "null"], "description": "The memory that replaced it (mem_...), or null"},
    "sourceId": {
        "type": ["string", "null"],
        "description": "The message it was extracted from (mem_...); null when written as is",
    },
    "extractedBy": {"type": ["string", "null"], "description": "The model that extracted it; null when none"},
}
AS_OF = (
    "Search what was true at this time (ISO 8601, e.g. 2025-03-01 or 2025-03-01T12:00:00Z) instead of what is "
    "true now: for questions about the past ('where did Dana work last March?')."
)
INCLUDE_EXPIRED = (
    "true: search every fact, current and past (superseded, closed), each marked with current, validFrom and "
    "validTo: for questions about how something changed. Default false: current facts only."
)
VALID_FROM = "When the fact became true (ISO 8601; a date alone is midnight UTC). Default: now."
VALID_TO = (
    "When it stopped being true (ISO 8601, after validFrom): a past fact, found only by asOf and includeExpired "
    "searches. Default: still true. To replace a fact that changed, use supersede_memory."
)
INFER = (
    "true: after storing it, have the server's language model extract its facts behind the write: each becomes "
    "a memory of its own (sourceId names this one), and a fact that changes what a memory said supersedes that "
    "memory. Default false. Without a model configured on the server it is accepted and nothing is extracted."
)
INFERRED = {
    "type": "string",
    "enum": ["queued", "disabled"],
    "description": "Only with infer: queued (facts will be extracted) or disabled (no model configured)",
}


def with_inferred(properties: dict[str, Any]) -> dict[str, Any]:
    """The output schema of a write tool: `properties` always present, `inferred` only with infer."""
    schema = object_schema(properties)
    return {**schema, "properties": {**schema["properties"], "inferred": INFERRED}}


WRITTEN = with_inferred(
    {
        "id": MEMORY_ID,
        "namespace": {**STRING, "description": "Where it was stored"},
        "createdAt": TIME,
        "expiresAt": {**TIME, "description": "When it will be forgotten (ttl_ms); null: never"},
        "duplicateOf": DUPLICATE_OF,
        "validFrom": VALIDITY["validFrom"],
        "validTo": VALIDITY["validTo"],
    }
)
MEMORY_HIT = object_schema(
    {
        "id": MEMORY_ID,
        "text": STRING,
        "namespace": STRING,
        "tags": STRINGS,
        "score": SCORE,
        "createdAt": TIME,
        "expiresAt": TIME,
        "actorId": {**STRING, "description": "The user_id it was recorded with; empty when none"},
        "entityName": ENTITY_NAME,
        "mentionCount": MENTION_COUNT,
        "lastSeen": LAST_SEEN,
        **VALIDITY,
    }
)
FOUND_MEMORY = object_schema(
    {
        "id": MEMORY_ID,
        "memory": {**STRING, "description": "The remembered text"},
        "score": SCORE,
        "createdAt": TIME,
        "tags": {**STRINGS, "description": "add_message records role:<role> and conversation:<id>"},
        "namespace": STRING,
        "entityName": ENTITY_NAME,
        "mentionCount": MENTION_COUNT,
        "lastSeen": LAST_SEEN,
        **VALIDITY,
    }
)

# --- helpers -------------------------------------------------------------------------------------


def _declare(
    name: str,
    title: str,
    description: str,
    arguments: type[Arguments],
    output: dict[str, Any],
    handler: Any,
    **options: Any,
) -> Tool:
    return declare(name, title, description, arguments, output, category=CATEGORY, handler=handler, **options)


def identity(access: Access) -> str:
    """Who is calling, for conversation ids: the key's owner (so a person's keys share
    conversations), else the key, else the local operator of a keyless stdio session."""
    if access.user_id is not None:
        return f"user:{access.user_id}"
    if access.key_id is not None:
        return f"key:{access.key_id}"
    return "local"


def conversation_id(access: Access, first_message: str, user_id: str | None = None) -> str:
    """12 hex digits naming a conversation, as memos-api-mcp's md5(user + "\\n" + first message); the
    user is the key's identity, and the user_id when one is given (one key, many users)."""
    user = f"{identity(access)}/{user_id}" if user_id else identity(access)
    digest = hashlib.md5(f"{user}\n{first_message}".encode(), usedforsecurity=False)
    return digest.hexdigest()[:12]


def _connection_namespace(ctx: ToolContext) -> str:
    """The connection's namespace (`?namespace=`, else the key's default), validated."""
    return namespaces.validate(ctx.access.resolve_namespace(ctx.namespace))


def _cubes(value: str | list[str] | None) -> list[str] | None:
    """cube_ids as a list; "" and [] mean "not given"."""
    given = [value] if isinstance(value, str) else list(value or [])
    return [cube for cube in given if cube] or None


def _scope(ctx: ToolContext, user_id: str | None, named: list[str] | None) -> Scope:
    return user_scope(user_id or None, named, lambda: _connection_namespace(ctx))


# --- MemOS example server: add_memory, search_memories, chat --------------------------------------


class AddMemoryArguments(Arguments):
    memory_content: str = Field(
        min_length=1, description="What to remember, in any language: one fact, preference, decision or summary."
    )
    user_id: str | None = optional(
        "Whose memory this is: recorded as its actor; search_memories and chat with this user_id find it.",
        max_length=255,
    )
    cube_id: str | None = optional(
        "The namespace to store it in, such as 'org:team:project' (default: this connection's namespace; the "
        "user_id names it too)."
    )
    tags: list[str] | None = optional("Labels to store with it (at most 64, each 1 to 255 characters).")
    ttl_ms: int | None = optional("Forget it after this many milliseconds (default: never).", ge=1, le=MAX_TTL_MS)
    dedupe: bool | None = optional(DEDUPE)
    validFrom: str | None = optional(VALID_FROM)
    validTo: str | None = optional(VALID_TO)
    infer: bool | None = optional(INFER)


def add_memory(ctx: ToolContext, args: AddMemoryArguments) -> WrittenMemory:
    own = args.cube_id and args.cube_id == args.user_id  # MemOS names a user's own cube by its user_id
    memory = NewMemory(
        text=args.memory_content,
        actor_id=args.user_id or None,
        tags=args.tags,
        ttl_ms=args.ttl_ms,
        valid_from=args.validFrom,
        valid_to=args.validTo,
    )
    (written,) = perform(
        ctx.access,
        operations.WRITE,
        namespace=None if own else args.cube_id or ctx.namespace,
        memories=[memory],
        dedupe=args.dedupe is not False,
        infer=args.infer is True,
    )
    return written


_declare(
    "add_memory",
    "Add Memory",
    "Remember one piece of information (a fact, a preference, a decision, a summary) as a free-text memory. "
    "The very next search_memories or search_memory finds it by meaning, also when asked in "
    "another language. Stored in `cube_id` or this connection's namespace. Returns its id (mem_...). A text that "
    "says the same as a memory this user_id already has there is not stored twice: duplicateOf names that memory. "
    "validFrom/validTo say when the fact is true; when a fact changes, use supersede_memory rather than adding "
    "a contradicting memory.",
    AddMemoryArguments,
    WRITTEN,
    add_memory,
)


class SearchMemoriesArguments(Arguments):
    query: str = Field(min_length=1, description="What to look for, in words (any language).")
    user_id: str | None = optional(
        "Who is asking: without cube_ids only the memories recorded with this user_id (as given to add_memory) in "
        "this connection's namespace are searched; omit it to search everyone's.",
        max_length=255,
    )
    cube_ids: str | list[str] | None = optional(
        "The namespace, or list of namespaces, to search, all of their memories whoever recorded them (the user_id "
        "names the user's own). Default: the user's own memories; without user_id every namespace this key can read."
    )
    top_k: int | None = optional(
        f"How many memories to return, 1 to {limits.MAX_TOP_K} (default {limits.DEFAULT_TOP_K}).",
        ge=1,
        le=limits.MAX_TOP_K,
    )
    asOf: str | None = optional(AS_OF)
    includeExpired: bool | None = optional(INCLUDE_EXPIRED)


def search_memories(ctx: ToolContext, args: SearchMemoriesArguments) -> SearchResult:
    scope = _scope(ctx, args.user_id, _cubes(args.cube_ids))
    found: SearchResult = perform(
        ctx.access,
        operations.SEARCH,
        namespace=scope.namespace,
        query=args.query,
        actor_in=scope.actor_in,
        top_k=args.top_k,
        as_of=args.asOf,
        include_expired=args.includeExpired,
    )
    return found


_declare(
    "search_memories",
    "Search Memories",
    "Find memories by meaning and exact terms, best first: paraphrases match, and so do other languages "
    "(a Chinese query finds an English memory). Searches the namespaces in `cube_ids`, else the memories of "
    "`user_id` in this connection's namespace, else every namespace this key can read. Covers free memories and the knowledge graph's observations (entityName names the entity). "
    "score is 0 to 1; totalResults counts the candidates considered. Returns what is true now; asOf returns what "
    "was true then, includeExpired every fact (each says whether it is current and what superseded it).",
    SearchMemoriesArguments,
    object_schema(
        {
            "results": {**array_schema(MEMORY_HIT), "description": "Best first"},
            "totalResults": INTEGER,
            "queryTime": {**INTEGER, "description": "Milliseconds"},
        }
    ),
    search_memories,
    read_only=True,
)


class ChatArguments(Arguments):
    query: str = Field(min_length=1, description="The user's message to answer, in any language.")
    user_id: str | None = optional(
        "Who is asking: recorded as the actor of the exchange (as add_memory records user_id); without cube_ids "
        "the answer is grounded on this user's own memories only.",
        max_length=255,
    )
    cube_ids: str | list[str] | None = optional(
        "The namespace, or list of namespaces, whose memories ground the answer (the user_id names the user's "
        "own). Default: the user's own memories; without user_id every namespace this key can read."
    )
    top_k: int | None = optional(
        f"How many memories to ground the answer on, 1 to {limits.MAX_TOP_K} (default {limits.DEFAULT_TOP_K}).",
        ge=1,
        le=limits.MAX_TOP_K,
    )
    add_message_on_answer: bool | None = optional(
        "Record the question and the answer as memories in this connection's namespace (default true, as "
        "MemOS does; needs write access there). Never without a language model: a question is not a fact."
    )


def chat(ctx: ToolContext, args: ChatArguments) -> dict[str, Any]:
    scope = _scope(ctx, args.user_id, _cubes(args.cube_ids))
    answer = chat_service.chat(
        ctx.access,
        query=args.query,
        user_id=args.user_id or None,
        readable=scope.namespace,
        actor_in=scope.actor_in,
        writable=ctx.namespace,
        top_k=args.top_k,
        add_message_on_answer=args.add_message_on_answer is not False,
    )
    return {
        "response": answer.response,
        "reasoning": answer.reasoning,
        "memories": [hit["id"] for hit in answer.memories],
        "recorded": answer.recorded,
        "notRecorded": answer.not_recorded,
    }


_declare(
    "chat",
    "Chat With Memory",
    "Answer a message from memory: the memories closest to `query` (in `cube_ids`, else `user_id`'s own, else "
    "every namespace this key can read) are retrieved and given to the server's language model, which answers "
    "grounded in them. Then the exchange is recorded in this connection's namespace (add_message_on_answer=false "
    "to skip). Without a configured model the answer lists the memories found and says so, and nothing is "
    "recorded. Returns the answer, the model's reasoning when it gave any, and the ids of the memories used.",
    ChatArguments,
    object_schema(
        {
            "response": {**STRING, "description": "The answer"},
            "reasoning": {**STRING, "description": "The model's reasoning (its <think> block); empty when none"},
            "memories": {**STRINGS, "description": "Ids of the memories the answer was grounded on, best first"},
            "recorded": {
                **STRINGS,
                "description": "Ids of the memories recording the exchange (empty when not recorded)",
            },
            "notRecorded": {
                **STRING,
                "description": "Why the exchange was not recorded although asked to be; empty otherwise",
            },
        }
    ),
    chat,
)


# --- memos-api-mcp: add_message, search_memory, delete_memory -------------------------------------

FIRST_MESSAGE = "The first message of the current conversation, word for word: it names the conversation."
USER_ID = "The user, when this key serves several (as MemOS' MEMOS_USER_ID): recorded as the actor of the messages"


class MessageInput(Arguments):
    role: str = Field(
        min_length=1, max_length=MAX_ROLE_LENGTH, description="Who said it: user or assistant (or system, tool)."
    )
    content: str = Field(description="What was said. Messages with empty content are skipped.")
    chat_time: str | None = optional(
        "When it was said (ISO 8601, e.g. 2025-06-25T20:15:00Z): the memory's validFrom (createdAt records when it "
        "was stored)."
    )


class AddMessageArguments(Arguments):
    conversation_first_message: str = Field(min_length=1, description=FIRST_MESSAGE)
    messages: list[MessageInput] = Field(
        min_length=1, max_length=MAX_ITEMS, description="The new messages of the conversation, in order."
    )
    user_id: str | None = optional(f"{USER_ID}; search_memory with this user_id finds them.", max_length=255)
    dedupe: bool | None = optional(DEDUPE)
    infer: bool | None = optional(INFER)


def _chat_time(value: str | None, index: int) -> str | None:
    """A message's chat_time as its validFrom (checked: refused, naming the message, when not a time)."""
    if value is None or not value.strip():
        return None
    return validity.parse_time(value, field=f"messages[{index}].chat_time")


def add_message(ctx: ToolContext, args: AddMessageArguments) -> dict[str, Any]:
    user = args.user_id or None
    conversation = conversation_id(ctx.access, args.conversation_first_message, user)
    target = _connection_namespace(ctx)
    new = [
        NewMemory(
            text=message.content,
            actor_id=user or "",
            tags=(f"role:{message.role.strip()}", f"conversation:{conversation}"),
            valid_from=_chat_time(message.chat_time, index),
        )
        for index, message in enumerate(args.messages)
        if message.content.strip()
    ]
    if new:
        written = perform(
            ctx.access,
            operations.WRITE,
            namespace=target,
            memories=new,
            dedupe=args.dedupe is not False,
            infer=args.infer is True,
        )
    else:
        check(ctx.access, operations.WRITE, namespace=target)  # nothing to store, but the call must be allowed
        written = []
    answer = {
        "added": sum(memory["duplicateOf"] is None for memory in written),
        "memoryIds": [memory["id"] for memory in written],
        "duplicateOf": [memory["duplicateOf"] for memory in written],
        "conversationId": conversation,
        "namespace": target,
    }
    inferred = extraction.requested(args.infer) if args.infer else None
    return {**answer, "inferred": inferred} if inferred else answer


_declare(
    "add_message",
    "Add Message",
    "Record the conversation in memory: call it after every answer with the new user and assistant "
    "messages (or a summary of them). Each non-empty message becomes a memory in this connection's namespace, "
    "tagged role:<role> and conversation:<id> (the id is derived from conversation_first_message and your "
    "key), so search_memory finds it later by meaning. Returns the ids of the memories stored; a message that "
    "says the same as one this user_id already has there is not stored twice (duplicateOf names that memory).",
    AddMessageArguments,
    with_inferred(
        {
            "added": {**INTEGER, "description": "How many memories were stored (repeats are not)"},
            "memoryIds": {
                **STRINGS,
                "description": "Their ids, in message order (empty messages skipped); a repeat has the id of the "
                "memory it repeats",
            },
            "duplicateOf": {
                "type": "array",
                "items": {"type": ["string", "null"]},
                "description": "Per memoryIds entry: the id of the memory that message repeats, or null when stored",
            },
            "conversationId": {**STRING, "description": "The conversation tag's id: 12 hex digits"},
            "namespace": STRING,
        }
    ),
    add_message,
)


class SearchMemoryArguments(Arguments):
    query: str = Field(min_length=1, description="What to look for, in words (any language).")
    conversation_first_message: str | None = optional(
        FIRST_MESSAGE + " Accepted for compatibility: the search covers all of the namespace's memories (a "
        "user_id's own, with user_id)."
    )
    memory_limit_number: int | None = optional(
        f"How many memories to return, 1 to {MAX_MEMORY_LIMIT} (default {DEFAULT_MEMORY_LIMIT}).",
        ge=1,
        le=MAX_MEMORY_LIMIT,
    )
    relativity: float | None = optional(
        "Minimum score, 0 to 1: leave out memories less relevant than this (default 0: none left out).",
        ge=0,
        le=1,
    )
    filter: dict[str, Any] | None = optional(
        'Only memories matching it: {"tags": [...]} (carrying every tag listed) and/or {"role": "user"} '
        "(messages of that role, as add_message records them). Applied to the best "
        f"{limits.MAX_TOP_K} matches."
    )
    knowledgebase_ids: list[str] | None = optional(
        'Other namespaces to search as well, or ["all"] for every namespace this key can read (all of their '
        "memories, whoever recorded them)."
    )
    user_id: str | None = optional(
        f"{USER_ID}: only this user's memories of this connection's namespace are searched.", max_length=255
    )
    asOf: str | None = optional(AS_OF)
    includeExpired: bool | None = optional(INCLUDE_EXPIRED)


def _filter_tags(value: dict[str, Any] | None) -> set[str]:
    """The tags a memory must carry for `filter` (see SearchMemoryArguments.filter)."""
    if not value:
        return set()
    unknown = sorted(set(value) - {"tags", "role"})
    if unknown:
        raise InvalidArgument(
            f"filter supports only the keys 'tags' and 'role', not {', '.join(map(repr, unknown))}", field="filter"
        )
    tags = value.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
        raise InvalidArgument("filter.tags must be a tag or a list of tags", field="filter")
    wanted = set(tags)
    role = value.get("role")
    if role is not None:
        if not isinstance(role, str) or not role.strip():
            raise InvalidArgument("filter.role must be a role such as 'user' or 'assistant'", field="filter")
        wanted.add(f"role:{role.strip()}")
    return wanted


def search_memory(ctx: ToolContext, args: SearchMemoryArguments) -> dict[str, Any]:
    wanted = _filter_tags(args.filter)
    others = args.knowledgebase_ids or []
    # Without "all": the connection's namespace (a user's own memories of it), and any others named.
    scope = Scope(None)
    if "all" not in others:
        home = _connection_namespace(ctx)
        own = {home: args.user_id} if args.user_id and home not in others else {}
        scope = Scope(list(dict.fromkeys([home, *others])), own)
    limit = args.memory_limit_number or DEFAULT_MEMORY_LIMIT
    found = perform(
        ctx.access,
        operations.SEARCH,
        namespace=scope.namespace,
        query=args.query,
        actor_in=scope.actor_in,
        top_k=limits.MAX_TOP_K if wanted else limit,
        as_of=args.asOf,
        include_expired=args.includeExpired,
    )
    minimum = args.relativity or 0.0
    hits = [hit for hit in found["results"] if hit["score"] >= minimum and (not wanted or wanted <= set(hit["tags"]))]
    return {
        "query": args.query,
        "memories": [
            {
                "id": hit["id"],
                "memory": hit["text"],
                "score": hit["score"],
                "createdAt": hit["createdAt"],
                "tags": hit["tags"],
                "namespace": hit["namespace"],
                "entityName": hit["entityName"],
                "mentionCount": hit["mentionCount"],
                "lastSeen": hit["lastSeen"],
                **{name: hit[name] for name in VALIDITY},
            }
            for hit in hits[:limit]
        ],
    }


_declare(
    "search_memory",
    "Search Memory",
    "Search your memory before answering: the memories closest in meaning to `query` in this connection's "
    "namespace, best first (paraphrases and other languages match; exact identifiers count extra). Covers what "
    "add_message and add_memory stored and the knowledge graph's observations. Returns {query, memories: [{id, "
    "memory: the text, score: 0 to 1, createdAt, tags, namespace, entityName: the entity an observation belongs "
    "to, else null, validFrom, validTo, current, supersedes, supersededBy}]}. Current facts only, unless asOf "
    "(what was true then) or includeExpired (every fact, marked).",
    SearchMemoryArguments,
    object_schema({"query": STRING, "memories": {**array_schema(FOUND_MEMORY), "description": "Best first"}}),
    search_memory,
    read_only=True,
)


class DeleteMemoryArguments(Arguments):
    memory_ids: list[str] = Field(
        max_length=MAX_ITEMS, description="Ids of the memories to delete (mem_..., as search results give them)."
    )
    user_id: str | None = optional(
        f"{USER_ID}: only this user's memories of this connection's namespace are deleted; others are notDeleted.",
        max_length=255,
    )
    purge: bool | None = optional(
        "Erase them with their whole history at once (for erasure requests): a purged memory cannot be restored. "
        "Also erases the history of memories deleted earlier. Default false: a deleted memory can be restored "
        "with restore_memory for the retention window."
    )


def delete_memory(ctx: ToolContext, args: DeleteMemoryArguments) -> dict[str, list[str]]:
    deleted: list[str] = []
    not_deleted: list[str] = []
    given = list(dict.fromkeys(args.memory_ids))
    # With a user_id, one user of a shared key cannot delete another's memory by its id: only the
    # user's own memories of this connection's namespace are reached.
    scope = _scope(ctx, args.user_id, None) if args.user_id else Scope(None)
    if scope.namespace is not None and not all(
        allowed(ctx.access, operations.DELETE, namespace=space) for space in scope.namespace
    ):
        return {"deleted": [], "notDeleted": given}
    for memory_id in given:
        try:
            outcome = perform(
                ctx.access,
                operations.DELETE,
                namespace=scope.namespace,
                actor_in=scope.actor_in,
                id=memory_id,
                purge=bool(args.purge),
            )
        except InvalidArgument:  # not a memory id: nothing to delete
            not_deleted.append(memory_id)
            continue
        (deleted if outcome["deleted"] else not_deleted).append(outcome["id"])
    return {"deleted": deleted, "notDeleted": not_deleted}


_declare(
    "delete_memory",
    "Delete Memory",
    "Forget memories by id (mem_..., as the search tools return them); the next search no longer finds them. "
    "A deleted memory can be brought back with restore_memory for a while; purge=true erases it and its "
    "history at once. Returns the ids deleted and those not deleted: unknown ids, ids that are not memory ids, "
    "knowledge-graph observations (use delete_observations for those) and memories in namespaces this key "
    "cannot write.",
    DeleteMemoryArguments,
    object_schema({"deleted": STRINGS, "notDeleted": STRINGS}),
    delete_memory,
    destructive=True,
    idempotent=True,
)


# --- history: memory_history, update_memory, restore_memory; supersede_memory -------------------

OBJECT_ID = {**STRING, "description": "mem_<n> (a memory or observation), ent_<n> (an entity) or rel_<n> (a relation)"}


class MemoryHistoryArguments(Arguments):
    id: str | None = optional(
        "A memory or observation id (mem_..., as search results give them), or an entity (ent_...) or relation "
        "(rel_...) id: its versions. Give id or entityName."
    )
    entityName: str | None = optional(
        "An entity's name (current, or one it had before a rename or its deletion): the entity's versions and "
        "those of its observations and relations. Give id or entityName."
    )
    namespace: str | None = optional(
        "With entityName: the namespace of the entity (default: this connection's namespace). An id is looked "
        "up in every namespace this key can read."
    )


def memory_history(ctx: ToolContext, args: MemoryHistoryArguments) -> dict[str, Any]:
    if (args.id is None) == (args.entityName is None):
        raise InvalidArgument("give either id or entityName", field="id")
    if args.id is not None:
        found = perform(ctx.access, operations.HISTORY, id=args.id)
        return {"id": found["id"], "entityName": None, "entities": [], "versions": found["versions"]}
    entity = perform(ctx.access, "entity_history", namespace=args.namespace or ctx.namespace, name=args.entityName)
    return {"id": None, "entityName": entity["name"], "entities": entity["entities"], "versions": entity["versions"]}


_declare(
    "memory_history",
    "Memory History",
    "Who changed a memory, when, through which surface, and what it said before and after: every version of a "
    "memory or observation (id mem_...), or of an entity with its observations and relations (entityName), "
    "newest first. Deleted memories and entities keep their history for the retention window; use the version "
    "numbers with restore_memory.",
    MemoryHistoryArguments,
    object_schema(
        {
            "id": {**OBJECT_ID, "type": ["string", "null"]},
            "entityName": {"type": ["string", "null"], "description": "The name asked for; null for an id"},
            "entities": {**STRINGS, "description": "With entityName: ids (ent_...) of the entities that had it"},
            "versions": VERSIONS,
        }
    ),
    memory_history,
    read_only=True,
)


class UpdateMemoryArguments(Arguments):
    id: str = Field(description="The memory or observation to change (mem_..., as search results give them).")
    text: str = Field(description="Its new text (not empty; at most the observation size limit).")


def update_memory(ctx: ToolContext, args: UpdateMemoryArguments) -> dict[str, Any]:
    updated: dict[str, Any] = perform(ctx.access, operations.UPDATE, id=args.id, text=args.text)
    return updated


_declare(
    "update_memory",
    "Update Memory",
    "Correct a memory in place (a typo, a wrong detail): it gets the new text and keeps its id; searches find it "
    "by the new text at once. The old text stays in its history (memory_history) and can be restored "
    "(restore_memory). When the fact itself changed (a new job, a new address), use supersede_memory instead, "
    "so the old fact stays true for its time. A past (superseded) memory is refused. Needs write access to the "
    "memory's namespace.",
    UpdateMemoryArguments,
    object_schema(
        {
            "id": MEMORY_ID,
            "text": STRING,
            "namespace": STRING,
            "version": {"type": ["integer", "null"], "description": "The memory's version number after the update"},
        }
    ),
    update_memory,
    destructive=True,  # the text is replaced (the old one stays in the history)
    idempotent=True,
)


class RestoreMemoryArguments(Arguments):
    id: str = Field(
        description="What to restore: a memory or observation (mem_...), an entity (ent_...) or a relation (rel_...)."
    )
    version: int | None = optional(
        "The version to go back to (memory_history lists them). Default: undo the deletion (the object comes back "
        "as it was just before it was deleted).",
        ge=1,
    )


def restore_memory(ctx: ToolContext, args: RestoreMemoryArguments) -> dict[str, Any]:
    restored: dict[str, Any] = perform(ctx.access, operations.RESTORE, id=args.id, version=args.version)
    return restored


_declare(
    "restore_memory",
    "Restore Memory",
    "Undo a deletion or a change: a deleted memory, observation, entity or relation comes back with the same "
    "id (an entity with the observations and relations deleted with it; an observation with its entity, if "
    "that was deleted too); with `version`, a memory gets that version's text and validity back (a superseded "
    "memory is not reopened while its successor stands: supersede the successor instead). Deleted things can be "
    "restored for the server's retention window (30 days by default), unless purged.",
    RestoreMemoryArguments,
    object_schema(
        {
            "id": OBJECT_ID,
            "kind": {"type": "string", "enum": ["observation", "entity", "relation"]},
            "namespace": STRING,
            "version": {**INTEGER, "description": "The version number the restore was recorded as"},
            "restoredFrom": {**INTEGER, "description": "The version whose fields came back"},
            "state": {"type": ["object", "null"], "description": "The object's fields now"},
            "alsoRestored": {**STRINGS, "description": "Ids restored along with it (an entity's observations ...)"},
        }
    ),
    restore_memory,
    destructive=True,  # a restore to a version replaces the current fields
)


class SupersedeMemoryArguments(Arguments):
    id: str = Field(description="The current memory whose fact changed (mem_..., as search results give them).")
    text: str = Field(description="What is true now, e.g. 'Dana's team lead is Marco' (not empty).")
    user_id: str | None = optional(
        f"{USER_ID}: only this user's memories of this connection's namespace can be superseded.", max_length=255
    )


def supersede_memory(ctx: ToolContext, args: SupersedeMemoryArguments) -> dict[str, Any]:
    # With a user_id, one user of a shared key cannot supersede another's memory (as delete_memory).
    scope = _scope(ctx, args.user_id, None) if args.user_id else Scope(None)
    done: dict[str, Any] = perform(
        ctx.access,
        operations.SUPERSEDE,
        namespace=scope.namespace,
        actor_in=scope.actor_in,
        id=args.id,
        text=args.text,
    )
    return done


_declare(
    "supersede_memory",
    "Supersede Memory",
    "Record that a fact changed: the memory `id` (e.g. 'Dana's team lead is Priya') stops being current now "
    "and a new memory with `text` ('Dana's team lead is Marco') replaces it, linked both ways (supersedes / "
    "supersededBy). Searches then return the new fact; the old one stays for questions about the past "
    "(asOf, includeExpired) and in memory_history. Fails, naming the current successor, when the memory was "
    "already superseded: supersede that one.",
    SupersedeMemoryArguments,
    object_schema(
        {
            "id": {**MEMORY_ID, "description": "The new memory, current from validFrom"},
            "supersedes": {**STRING, "description": "The memory it replaced (now closed at validFrom)"},
            "validFrom": TIME,
            "namespace": STRING,
        }
    ),
    supersede_memory,
    destructive=True,  # the old fact stops being current (it is kept, closed)
)
