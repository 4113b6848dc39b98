"""The MemOS-compatible API (`/product/*`): MemOS' server API on top of MemoryHub's memories.

MemOS (MemTensor/MemOS, `src/memos/api/routers/server_router.py`) is a memory server whose REST API
clients such as Coze plugins and MemOS' example MCP server speak. This package answers the same
routes with the same field names and the same `{code, message, data}` envelope, so those clients
work unchanged against MemoryHub:

- `api.py`: the django-ninja API (routes, auth, the envelope, error translation);
- `schemas.py`: MemOS' request models and the response shapes;
- `memos.py`: the operations, translating to the memory operations (performed through
  `access.operations`, which checks the grants) and `agents.chat`;
- `filters.py`: the part of MemOS' memory `filter` that has a meaning here, translated to the
  graph's filter description (no SQL here).

Mapping: a cube is a namespace (`org:team:project`); `user_id` is recorded as each memory's actor.
As in MemOS, each user_id has its own cube, read and written by default: here, the memories
recorded with that user_id in the key's default namespace (one key serves all of a bot's users;
`memory.scopes`). The user_id itself names that cube where a cube is expected. A cube
named explicitly is shared by whoever may read it under the key's grants. Without user_id,
`readable_cube_ids` default to every namespace the key can read and `writable_cube_ids` to the
key's default namespace. The deprecated `mem_cube_id` is accepted where MemOS accepted it. A cube
the key has no grant for is a 403.

Deviations from MemOS, each deliberate:

- Memories are stored as given: each non-empty message is one memory (MemOS runs an LLM "mem
  reader" that rewrites a conversation into extracted facts). Storage is always synchronous;
  `async_mode` is accepted. Every memory has `memory_type` "LongTermMemory"; there are no
  preference, tool or skill memories (those groups are present and empty), and no act/param
  memories (get_all answers []).
- Ids are `mem_<n>`, not uuids; `ref_id` is built from them as MemOS builds it (`[<id>]`).
- A user's own cube is a part of the key's default namespace, not a namespace of its own: grants
  cover it with the namespace, and naming the namespace reads every user's memories in it.
- `relativity` / `threshold` have no default: this server's scores (hybrid cosine + exact terms,
  0..1) are not calibrated like MemOS' reranker's, so MemOS' defaults (0.57 / 0.5) would drop good
  matches. Given explicitly, they are honoured.
- `filter` supports id, user_id, session_id, cube_id, tags, memory_type and created_at/updated_at
  comparisons, under and/or; other fields are refused (400) rather than ignored.
- get_all lists the newest 200 memories of the cubes as flat items (MemOS builds a tree of up to
  200 nodes for its playground); get_memory pages are at most 100 (MemOS returns everything when
  no page is asked for); `total_nodes` says how many there are.
- delete_memory deletes by `memory_ids` only (no files here; deleting by filter is refused);
  `data` reports `deleted` and `not_deleted` besides MemOS' `status`.
- An unknown memory id is a 404 envelope (MemOS answers 200 with `data: null`); validation errors
  are 400 (FastAPI's 422 in MemOS).
- chat/complete records the exchange as MemOS does, except with the offline extractive provider
  (no LLM configured): then nothing is recorded, since its "answer" recites memories that are
  stored already and a question alone is not a fact. Recording never fails the answer unless the
  writable cube was named: when it cannot be done, the envelope's message says why. Search and
  chat apply `filter` to the best 50 matches.
- `info` and `source` are accepted and not stored; a message's `chat_time` is its memory's
  `valid_from` (metadata; a chat_time that is not a time is refused); `doc_path` is refused (no file
  reading here).
- Time: search and get_all return current memories; `as_of` / `include_expired` (or `asOf` /
  `includeExpired`) return those valid then / every one, with `valid_from`, `valid_to`,
  `supersedes`, `superseded_by`, `source_id`, `extracted_by` in the metadata and status `archived`
  for one no longer current.
"""
