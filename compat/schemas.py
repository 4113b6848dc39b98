"""Request and response models of the MemOS-compatible API, with MemOS' field names.

Requests mirror MemOS' `src/memos/api/product_models.py` (APIADDRequest, APISearchRequest,
APIChatCompleteRequest, GetMemoryPlaygroundRequest, GetMemoryRequest, DeleteMemoryRequest).
Unknown fields are ignored, as pydantic does for MemOS. Fields that have no effect here are still
declared, so the docs say so. Cube lists also accept a single string: MemOS' own example MCP
server sends one.

Responses are the `{code, message, data}` envelope of MemOS' `BaseResponse`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from graph import limits
from memory.limits import MAX_ACTOR_LENGTH, MAX_TOP_K

CubeIds = str | list[str] | None
IGNORED = "Accepted for compatibility; no effect here."


def _user_id() -> Any:
    return Field(
        None,
        max_length=MAX_ACTOR_LENGTH,
        description="The user, of the many one API key may serve: recorded as each memory's actor "
        "(metadata.user_id). With no cube named, a user_id reads and writes only its own memories (its cube, "
        "also named by the user_id itself); a cube named explicitly is shared under the key's grants. Without "
        "user_id: everything the key can reach.",
    )


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _short_lists(cls, data: Any) -> Any:
        # A list over the item limit is refused by its length, before its items are validated.
        return limits.short_lists(data)


class ContentPart(BaseModel):
    """One part of a multi-part message content (OpenAI style). Only text parts are stored."""

    model_config = ConfigDict(extra="allow")

    type: str | None = Field(None, description="'text' (or 'input_text'); other kinds are refused")
    text: str | None = None


class Message(BaseModel):
    """A chat message: {role, content, chat_time}. MemOS' converted form of memory_content,
    {"type": "text", "text": ...}, is accepted too."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _short_lists(cls, data: Any) -> Any:
        return limits.short_lists(data)

    role: str | None = Field(None, description="user, assistant, system or tool (default: user)")
    # Its first wrong part is reported, not every one (a request holds up to 1,000 messages).
    content: str | Annotated[list[ContentPart | str], Field(fail_fast=True)] | None = Field(
        None, description="The text (or text parts)"
    )
    chat_time: str | None = Field(
        None,
        description="When it was said (ISO 8601, e.g. 2025-06-25T20:15:00Z or 2025-06-25 20:15:00, UTC unless an "
        "offset is given): the memory's valid_from (created_at records when it was stored)",
    )
    type: str | None = Field(None, description="'text' for the {type, text} form")
    text: str | None = None


class ChatTurn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(description="system, user or assistant")
    content: str


class AsOf(BaseModel):
    """asOf and includeExpired, MemOS style (snake_case) and as on the other APIs (camelCase)."""

    as_of: str | None = Field(
        None,
        description="Find what was true at this time (ISO 8601; a date alone is midnight UTC) instead of now. "
        "Also accepted as asOf",
    )
    asOf: str | None = Field(None, description="as_of")
    include_expired: StrictBool | None = Field(
        None,
        description="true: every fact, current and past (superseded), each with metadata.valid_from/valid_to and "
        "status archived when no longer current. Default false: current facts only. Also accepted as includeExpired",
    )
    includeExpired: StrictBool | None = Field(None, description="include_expired")

    def moment(self) -> dict[str, Any]:
        """as_of and include_expired as the memory operations take them (snake_case first)."""
        return {
            "as_of": self.as_of if self.as_of is not None else self.asOf,
            "include_expired": self.include_expired if self.include_expired is not None else self.includeExpired,
        }


class AddRequest(Request):
    """APIADDRequest."""

    user_id: str | None = _user_id()
    session_id: str | None = Field(None, max_length=200, description="Stored as the tag session:<session_id>")
    task_id: str | None = Field(None, description=IGNORED)
    writable_cube_ids: CubeIds = Field(
        None,
        description="The namespaces to store the messages in (each gets every message). Default: the user's "
        "own cube (the API key's default namespace).",
    )
    async_mode: Literal["async", "sync"] = Field(
        "async", description="Accepted; memories are always stored (and embedded) before the answer."
    )
    mode: Literal["fast", "fine"] | None = Field(None, description=IGNORED)
    custom_tags: list[str] | None = Field(None, description="Tags stored with every message")
    info: dict[str, Any] | None = Field(None, description="Accepted; not stored.")
    messages: str | list[Message | str] | None = Field(
        None,
        description="A string (one user message) or a list of messages; each non-empty message becomes a memory "
        "tagged role:<role>.",
    )
    chat_history: list[dict[str, Any]] | None = Field(None, description=IGNORED)
    is_feedback: bool = Field(False, description=IGNORED)
    manager_user_id: str | None = Field(None, description=IGNORED)
    project_id: str | None = Field(None, description=IGNORED)
    mem_cube_id: str | None = Field(None, description="(Deprecated) one writable cube")
    memory_content: str | None = Field(None, description="(Deprecated) one user message")
    doc_path: str | None = Field(None, description="(Deprecated) refused: send the document's text in messages")
    source: str | None = Field(None, description=IGNORED)
    operation: list[dict[str, Any]] | None = Field(None, description=IGNORED)
    dedupe: StrictBool = Field(
        True,
        description="false: store every message even when it says the same as a current memory of this user_id in "
        "the cube. Default true: a repeat is not stored twice (its duplicate_of names the memory it repeats).",
    )
    infer: StrictBool = Field(
        False,
        description="true: after storing the messages, have the server's model extract their facts behind the "
        "write (as MemOS' fine mode does): each fact becomes a memory (metadata.source_id names its message), and "
        "a fact that changes what a memory said supersedes it. Without a model configured: accepted, nothing "
        "extracted (inferred: disabled).",
    )


class SearchRequest(Request, AsOf):
    """APISearchRequest."""

    query: str = Field(description="What to look for, in any language")
    user_id: str | None = _user_id()
    readable_cube_ids: CubeIds = Field(
        None,
        description="The namespaces to search. Default: the user's own cube; without user_id, every namespace "
        "the API key can read.",
    )
    mode: Literal["fast", "fine", "mixture"] = Field(
        "fast", description="Accepted; every mode is the server's hybrid (meaning + exact terms) search."
    )
    session_id: str | None = Field(None, description=IGNORED + " (MemOS uses it for soft weighting only)")
    top_k: int = Field(10, ge=1, le=MAX_TOP_K, description=f"How many memories, 1 to {MAX_TOP_K}")
    relativity: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Minimum relevance (metadata.relativity). Default: none, because this server's scores are "
        "not calibrated like MemOS' reranker's.",
    )
    dedup: Literal["no", "sim", "mmr"] | None = Field(None, description=IGNORED)
    rerank: bool | None = Field(None, description=IGNORED)
    pref_top_k: int | None = Field(None, description=IGNORED)
    include_preference: bool = Field(True, description="Adds empty pref_mem groups (no preference memory here)")
    search_tool_memory: bool | None = Field(None, description=IGNORED)
    tool_mem_top_k: int | None = Field(None, description=IGNORED)
    include_skill_memory: bool | None = Field(None, description=IGNORED)
    skill_mem_top_k: int | None = Field(None, description=IGNORED)
    filter: dict[str, Any] | None = Field(
        None,
        description="and/or conditions on id, user_id, session_id, cube_id, tags, memory_type, created_at "
        "(gt/gte/lt/lte); other fields are refused.",
    )
    internet_search: bool = Field(False, description=IGNORED)
    threshold: float | None = Field(None, ge=0, le=1, description="Minimum relevance, like relativity")
    search_memory_type: str = Field(
        "All", description="All or LongTermMemory (every memory here); other types find nothing."
    )
    chat_history: list[dict[str, Any]] | None = Field(None, description=IGNORED)
    source: str | None = Field(None, description=IGNORED)
    mem_cube_id: str | None = Field(None, description="(Deprecated) one readable cube")
    moscube: bool = Field(False, description=IGNORED)
    operation: list[dict[str, Any]] | None = Field(None, description=IGNORED)


class ChatCompleteRequest(Request):
    """APIChatCompleteRequest."""

    user_id: str | None = _user_id()
    query: str = Field(description="The user's message")
    readable_cube_ids: CubeIds = Field(
        None,
        description="Where to look for memories. Default: the user's own cube; without user_id, every namespace "
        "the API key can read.",
    )
    writable_cube_ids: CubeIds = Field(
        None,
        description="Where to record the exchange (the first; it must be writable). Default: the user's own cube, "
        "when the key has a default namespace it may write (else the exchange is not recorded, and the "
        "message says so).",
    )
    history: list[ChatTurn] | None = Field(None, description="Earlier turns, oldest first")
    mode: Literal["fast", "fine", "mixture"] = Field("fast", description=IGNORED)
    system_prompt: str | None = Field(None, description="The system prompt (the memories are added to it)")
    base_prompt: str | None = Field(None, description="(Deprecated) system_prompt")
    top_k: int = Field(10, ge=1, le=MAX_TOP_K, description=f"How many memories to ground on, 1 to {MAX_TOP_K}")
    session_id: str | None = Field(None, max_length=200, description="Recorded turns are tagged session:<session_id>")
    include_preference: bool | None = Field(None, description=IGNORED)
    pref_top_k: int | None = Field(None, description=IGNORED)
    model_name_or_path: str | None = Field(None, description="The model to ask (default: MEMORYHUB_LLM_MODEL)")
    max_tokens: int | None = Field(None, ge=1, description="Most tokens in the answer")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    add_message_on_answer: bool = Field(
        True,
        description="Record the query and the answer as memories (role:user / role:assistant); never without a "
        "language model (a question alone is not a fact)",
    )
    filter: dict[str, Any] | None = Field(None, description="As in /product/search")
    internet_search: bool = Field(False, description=IGNORED)
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Minimum relevance of the memories used. Default: none (MemOS' 0.5 is for its reranker's scores).",
    )
    relativity: float | None = Field(None, ge=0, le=1, description="Minimum relevance, like threshold")
    manager_user_id: str | None = Field(None, description=IGNORED)
    project_id: str | None = Field(None, description=IGNORED)
    mem_cube_id: str | None = Field(None, description="(Deprecated) one cube, readable and writable")
    moscube: bool = Field(False, description=IGNORED)


class GetAllRequest(Request, AsOf):
    """GetMemoryPlaygroundRequest."""

    user_id: str | None = _user_id()
    memory_type: Literal["text_mem", "act_mem", "param_mem", "para_mem"] = Field(
        description="text_mem lists memories; the other kinds do not exist here (empty list)"
    )
    mem_cube_ids: CubeIds = Field(
        None,
        description="The namespaces. Default: the user's own cube; without user_id, every namespace the key can read.",
    )
    search_query: str | None = Field(None, description="Search instead of listing")
    search_type: Literal["embedding", "fulltext"] | None = Field(
        None, description="embedding: by meaning only; fulltext: by words only; default: both"
    )


class GetMemoryRequest(Request, AsOf):
    """GetMemoryRequest."""

    mem_cube_id: str = Field(description="The namespace")
    user_id: str | None = _user_id()
    include_preference: bool = Field(True, description="Adds an empty pref_mem group")
    include_tool_memory: bool = Field(True, description="Adds an empty tool_mem group")
    include_skill_memory: bool = Field(True, description="Adds an empty skill_mem group")
    filter: dict[str, Any] | None = Field(None, description="As in /product/search")
    page: int | None = Field(None, ge=1, le=limits.MAX_INTEGER, description="Page number, from 1 (default 1)")
    page_size: int | None = Field(None, ge=1, description="Memories per page, at most 100 (default 100)")


class DeleteMemoryRequest(Request):
    """DeleteMemoryRequest."""

    writable_cube_ids: CubeIds = Field(
        None,
        description="When given, only memories in these namespaces are deleted (each must be writable); else, "
        "with user_id, only the user's own",
    )
    memory_ids: list[str] | None = Field(None, description="The ids to delete (mem_<n>)")
    file_ids: list[str] | None = Field(None, description="Refused: there are no files here")
    filter: dict[str, Any] | None = Field(None, description="Refused: delete by memory_ids")
    purge: bool = Field(
        False,
        description="Erase the memories with their whole history at once (for erasure requests; they cannot be "
        "restored). Default false: a deleted memory can be restored for MEMORYHUB_HISTORY_RETENTION_DAYS",
    )
    user_id: str | None = _user_id()
    session_id: str | None = Field(None, description=IGNORED)
    conversation_id: str | None = Field(None, description=IGNORED)
    auto_cleanup_working: bool | None = Field(None, description=IGNORED)


# --- responses ------------------------------------------------------------------------------------


class Metadata(BaseModel):
    """MemOS' TreeNodeTextualMemoryMetadata, filled with what a memory here has."""

    model_config = ConfigDict(extra="allow")

    user_id: str | None = Field(description="The actor recorded with the memory (user_id at add)")
    session_id: str | None
    status: str = Field(description="Always 'activated'")
    type: str | None
    key: str | None = Field(description="The knowledge-graph entity of an observation; null for a free memory")
    source: str | None = Field(description="'conversation' for messages with a role")
    tags: list[str]
    visibility: str | None
    created_at: str | None
    updated_at: str | None
    info: dict[str, Any] | None
    memory_type: str = Field(description="Always 'LongTermMemory'")
    sources: list[dict[str, Any]]
    embedding: list[float] = Field(description="Always empty")
    usage: list[str]
    background: str
    file_ids: list[str]
    user_name: str = Field(description="The cube (namespace), where MemOS keeps it")
    expires_at: str | None = Field(description="When it will be forgotten (ttl); null: never")
    mention_count: int = Field(1, description="How often the text was added (repeats are folded into it)")
    last_seen: str | None = Field(None, description="When the text was last added (created_at if only once)")
    relativity: float | None = Field(None, description="Search only: relevance to the query, 0 to 1")
    id: str
    memory: str
    ref_id: str


class MemoryItem(BaseModel):
    id: str = Field(description="mem_<n>")
    memory: str
    metadata: Metadata
    ref_id: str = Field(description="[<id>], as MemOS builds it")


class CubeMemories(BaseModel):
    cube_id: str
    memories: list[MemoryItem]
    total_nodes: int = Field(description="How many memories of the cube match (search: how many are returned)")


class SearchData(BaseModel):
    text_mem: list[CubeMemories] = Field(description="Grouped by cube, best first")
    pref_mem: list[CubeMemories]
    tool_mem: list[CubeMemories]
    skill_mem: list[CubeMemories]
    pref_note: str
    pref_string: str


class MemoryData(BaseModel):
    text_mem: list[CubeMemories]
    pref_mem: list[CubeMemories]
    tool_mem: list[CubeMemories]
    skill_mem: list[CubeMemories]


class AddedMemory(BaseModel):
    memory: str
    memory_id: str = Field(description="mem_<n>; for a repeat, the id of the memory it repeats")
    memory_type: str
    cube_id: str
    duplicate_of: str | None = Field(
        None,
        description="The id of the current memory this message says the same as (nothing new was stored; that "
        "memory's mention count and last-seen time rose); null when it was stored",
    )
    inferred: str | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="Only with infer: queued (its facts will be extracted) or disabled (no model configured)",
    )


class ChatData(BaseModel):
    response: str
    reasoning: str = Field(description="The model's <think> block, '' when none")


class DeleteData(BaseModel):
    status: str = Field(description="'success'")
    deleted: list[str]
    not_deleted: list[str] = Field(
        description="Unknown ids, ids of other namespaces or outside writable_cube_ids, and knowledge-graph "
        "observations (delete those with the graph API)"
    )


class Envelope(BaseModel):
    code: int = Field(200, description="200, or the HTTP status of the failure")
    message: str


class AddResponse(Envelope):
    data: list[AddedMemory] | None


class SearchResponse(Envelope):
    data: SearchData | None


class ChatResponse(Envelope):
    data: ChatData | None


class GetAllResponse(Envelope):
    data: list[CubeMemories] | None


class GetMemoryResponse(Envelope):
    data: MemoryData | None


class GetOneResponse(Envelope):
    data: MemoryItem | None


class DeleteResponse(Envelope):
    data: DeleteData | None


class ErrorResponse(Envelope):
    data: None = None
