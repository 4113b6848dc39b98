"""The MCP protocol core: one JSON-RPC message in, at most one reply out, no transport.

Every transport (Streamable HTTP, legacy SSE, stdio, TCP) keeps a `Connection` per client and
hands each decoded message to `handle`; an endpoint that presents the server its own way (the
answers its clients were written against) gives its connections a `Profile`. Handshake-era clients (2024-11-05 … 2025-11-25) go
through initialize / notifications/initialized; a request whose `_meta` carries a 2026-07-28
protocol version is served statelessly on its own. Tool failures the model can act on (bad
arguments, unknown entities, limits, grants) come back as `isError` results; protocol faults
as JSON-RPC errors.

`handle` is synchronous: it reads and writes SQLite. Async transports call it through
`db_sync_to_async`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.conf import settings
from pydantic import ValidationError

from access.operations import perform
from access.permissions import Access
from graph import limits
from kernel import metrics
from kernel.errors import DomainError, StoreBusy
from kernel.sql import is_busy
from mcp_endpoint import registry
from mcp_endpoint.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    RESOURCE_NOT_FOUND,
    UNSUPPORTED_PROTOCOL_VERSION,
    Message,
    ProtocolError,
    classify,
    dumps,
    error,
    pretty,
    result,
)

logger = logging.getLogger(__name__)

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]

PROTOCOL_VERSION_META = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_META = "io.modelcontextprotocol/clientInfo"
SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"

GRAPH_RESOURCE = "memory://knowledge-graph"

INSTRUCTIONS = (
    "MemoryHub is a long-term memory: a knowledge graph of entities (people, projects, places, "
    "ideas), their observations (short facts) and relations between them. Before answering, "
    "look up what you already know with search_nodes or open_nodes; after learning something "
    "worth keeping, record it with create_entities, add_observations and create_relations. "
    "Free-text memories work the same way: search_memory (or search_memories) before answering, "
    "add_message (or add_memory) after; search finds text by meaning, in any language, and graph "
    "observations too. Reads page their results: follow nextCursor / nextOffset when hasMore is true. "
    "The agent marketplace: search_agents finds agents, buy_agent_tokens buys tokens for one with your "
    "credits, and agent_<id> calls it."
)


@functools.cache
def _release() -> str:
    # Read once per process: importlib.metadata scans the installed distributions on every call,
    # a visible share of a read tool call's server time when it ran per request (bench/load.py).
    try:
        return version("memoryhub")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0.0.0"


def server_info() -> dict[str, str]:
    return {"name": "memoryhub", "title": "MemoryHub", "version": _release()}


def negotiate(requested: Any) -> str:
    """The version to answer an initialize with: the client's if we speak it, else our latest."""
    return requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE_VERSION


# Handshake era: resources/subscribe. 2026-07-28: the same, through subscriptions/listen (served
# where a request can answer with a stream: Streamable HTTP).
CAPABILITIES: Mapping[str, Any] = {
    "tools": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": False},
}


def _as_declared(tool: registry.Tool) -> dict[str, Any]:
    return tool.describe()


@dataclass(frozen=True)
class Profile:
    """What may differ between endpoints: the handshake's answers (instructions, capabilities,
    ping, the version for an initialize that names none), how tools/list shows a tool, and the
    language of tool messages. Everything else is the core's, the same on every endpoint.
    `STANDARD` is plain MCP; an endpoint whose clients were written against another server's
    answers supplies its own."""

    # Given to the model by initialize.
    instructions: str
    # What initialize announces.
    capabilities: Mapping[str, Any]
    # The result of ping.
    ping: Mapping[str, Any] = field(default_factory=dict)
    # The version an initialize that names none is answered with; None: it is invalid params.
    unnamed_version: str | None = None
    # A tool as tools/list shows it.
    describe: Callable[[registry.Tool], dict[str, Any]] = _as_declared
    # The language tool messages use when neither the client nor the text it sent says one.
    language: str = "en"


STANDARD = Profile(instructions=INSTRUCTIONS, capabilities=CAPABILITIES)


@dataclass
class Connection:
    """What the server knows about one client: who it is, where it works, what it negotiated.

    Transports that keep state elsewhere (HTTP sessions in the database) load it into a
    Connection per message and save it back when `changed` is set."""

    access: Access
    namespace: str | None
    categories: tuple[str, ...] | None = None
    protocol_version: str | None = None
    client_info: dict[str, Any] | None = None
    initialized: bool = False
    subscribed: bool = False
    changed: bool = field(default=False, compare=False)
    # Set by a stateless 2026-07-28 request for the duration of that request.
    modern: bool = False
    # How the endpoint the client came through presents the server.
    profile: Profile = STANDARD
    # The language the client asked for ("zh", "en"; over HTTP its Accept-Language), for tool
    # messages; None: unsaid.
    language: str | None = None

    def context(self) -> registry.ToolContext:
        return registry.ToolContext(self.access, self.namespace, self.language, self.profile.language)

    def tools(self) -> list[registry.Tool]:
        """The declared tools of the connection's categories, then the caller's own (agents)."""
        listed = registry.tools(self.categories)
        for dynamic in registry.dynamic_tools(self.categories):
            listed.extend(dynamic.list(self.context()))
        return listed

    def tool(self, name: Any) -> registry.Tool | None:
        if not isinstance(name, str):
            return None
        tool = registry.get(name)
        if tool is not None:
            return tool if self.categories is None or tool.category in self.categories else None
        for dynamic in registry.dynamic_tools(self.categories):
            found = dynamic.resolve(self.context(), name)
            if found is not None:
                return found
        return None

    def stateless_copy(self) -> Connection:
        """A fresh connection of the same caller and settings, for a request that stands alone."""
        return Connection(
            access=self.access,
            namespace=self.namespace,
            categories=self.categories,
            profile=self.profile,
            language=self.language,
        )


@dataclass(frozen=True)
class Reply:
    """What `handle` produced: the JSON-RPC reply (None for notifications and responses)."""

    message: dict[str, Any] | None


Handler = Callable[[Connection, dict[str, Any]], dict[str, Any]]


def handle(connection: Connection, message: Message) -> Reply:
    """Answer one classified message on `connection`."""
    if message.kind == "response":
        # We never send requests to clients, so there is nothing to match a response with.
        return Reply(None)
    if message.kind == "notification":
        _notification(connection, message)
        return Reply(None)
    meta = message.params.get("_meta")
    modern = isinstance(meta, dict) and PROTOCOL_VERSION_META in meta
    if modern:
        # A stateless request stands on its own: it neither uses nor changes what a handshake
        # negotiated on a long-lived connection (stdio, TCP, an HTTP session).
        connection = connection.stateless_copy()
    try:
        value = _modern_request(connection, message) if modern else _request(connection, message)
        return Reply(result(message.id, value))
    except ProtocolError as problem:
        return Reply(error(message.id, problem))
    except Exception:
        logger.exception("MCP %s failed", message.method)
        return Reply(error(message.id, ProtocolError(INTERNAL_ERROR, "Internal error")))


BATCH_VERSION = "2025-03-26"


def handle_batch(connection: Connection, values: list[Any]) -> list[dict[str, Any]]:
    """Answer a JSON-RPC batch: the replies of its members (none for notifications), an error
    reply for each invalid member. Batches exist only in protocol 2025-03-26 (received MUST be
    supported there, and they were removed after it); raises ProtocolError otherwise."""
    if connection.protocol_version != BATCH_VERSION:
        raise ProtocolError(INVALID_REQUEST, f"Invalid Request: batches are only allowed in protocol {BATCH_VERSION}")
    if not values:
        raise ProtocolError(INVALID_REQUEST, "Invalid Request: empty batch")
    most = limits.limit("MAX_ITEMS_PER_REQUEST")
    if len(values) > most:
        # Every member is answered: the reply to 200,000 pings would be as long as they are.
        raise ProtocolError(
            INVALID_REQUEST, f"Invalid Request: the batch has {len(values)} messages; the limit is {most}"
        )
    replies = []
    for value in values:
        try:
            message = classify(value)
            if message.kind == "request" and message.method == "initialize":
                raise ProtocolError(INVALID_REQUEST, "Invalid Request: initialize cannot be part of a batch")
        except ProtocolError as problem:
            replies.append(error(None, problem))
            continue
        reply = handle(connection, message)
        if reply.message is not None:
            replies.append(reply.message)
    return replies


def _notification(connection: Connection, message: Message) -> None:
    if message.method == "notifications/initialized" and not connection.initialized:
        connection.initialized = True
        connection.changed = True
    # Other notifications (cancelled, progress, roots/list_changed) need nothing from us: every
    # request is answered before the next one is read.


def _request(connection: Connection, message: Message) -> dict[str, Any]:
    method = message.method
    if method == "initialize":
        return _initialize(connection, message.params)
    if method == "ping":
        return dict(connection.profile.ping)
    if connection.protocol_version is None:
        raise ProtocolError(INVALID_REQUEST, f"Invalid Request: send initialize before {method}")
    handler = _HANDLERS.get(method)
    if handler is None:
        raise ProtocolError(METHOD_NOT_FOUND, f"Method not found: {method}")
    return handler(connection, message.params)


def _modern_request(connection: Connection, message: Message) -> dict[str, Any]:
    """A stateless 2026-07-28 request: the envelope in `_meta` replaces the handshake."""
    meta = message.params["_meta"]
    requested = meta.get(PROTOCOL_VERSION_META)
    if CLIENT_CAPABILITIES_META not in meta:
        raise ProtocolError(INVALID_PARAMS, f"params._meta is missing the required key {CLIENT_CAPABILITIES_META}")
    if not isinstance(requested, str):
        raise ProtocolError(INVALID_PARAMS, "the protocol-version envelope value must be a string")
    if requested not in MODERN_VERSIONS:
        raise ProtocolError(
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
            {"supported": list(MODERN_VERSIONS), "requested": requested},
        )
    connection.modern = True
    connection.protocol_version = requested
    client_info = meta.get(CLIENT_INFO_META)
    connection.client_info = client_info if isinstance(client_info, dict) else None
    method = message.method
    if method == "server/discover":
        # Not the profile's: a profile keeps the handshake's answers that an endpoint's clients
        # were written against, and those clients do not discover.
        value: dict[str, Any] = {
            "supportedVersions": list(MODERN_VERSIONS),
            "capabilities": copy.deepcopy(dict(CAPABILITIES)),
            "instructions": INSTRUCTIONS,
        }
    else:
        handler = _MODERN_HANDLERS.get(method)
        if handler is None:
            raise ProtocolError(METHOD_NOT_FOUND, f"Method not found: {method}")
        value = handler(connection, message.params)
    value["resultType"] = "complete"
    if method in _CACHEABLE:
        # Required on these results since 2026-07-28. Tool lists vary per user (their agent
        # tools), and the graph changes with every write: private and immediately stale.
        value.setdefault("ttlMs", 0)
        value.setdefault("cacheScope", "private")
    value["_meta"] = {SERVER_INFO_META: server_info()}
    return value


_CACHEABLE = {"server/discover", "tools/list", "resources/list", "resources/templates/list", "resources/read"}


# --- lifecycle -----------------------------------------------------------------------------------


def _initialize(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
    if connection.protocol_version is not None and not connection.modern:
        raise ProtocolError(INVALID_REQUEST, "Invalid Request: this connection is already initialized")
    requested = params.get("protocolVersion")
    if requested is None:
        requested = connection.profile.unnamed_version
    if not isinstance(requested, str):
        raise ProtocolError(INVALID_PARAMS, "Invalid params: protocolVersion must be a string")
    client_info = params.get("clientInfo")
    connection.protocol_version = negotiate(requested)
    connection.client_info = client_info if isinstance(client_info, dict) else None
    connection.changed = True
    profile = connection.profile
    return {
        "protocolVersion": connection.protocol_version,
        "capabilities": copy.deepcopy(dict(profile.capabilities)),
        "serverInfo": server_info(),
        "instructions": profile.instructions,
    }


# --- tools -----------------------------------------------------------------------------------------


def _page_size() -> int:
    return int(settings.MEMORYHUB_MCP_PAGE_SIZE)


def _decode_cursor(cursor: Any) -> int:
    try:
        if not isinstance(cursor, str):
            raise ValueError
        offset = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
        if offset < 0:
            raise ValueError
        return offset
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ProtocolError(INVALID_PARAMS, "Invalid params: cursor is not one this server returned") from None


def _paged(items: list[dict[str, Any]], params: dict[str, Any], key: str) -> dict[str, Any]:
    start = _decode_cursor(params["cursor"]) if params.get("cursor") is not None else 0
    end = start + _page_size()
    page: dict[str, Any] = {key: items[start:end]}
    if end < len(items):
        page["nextCursor"] = base64.urlsafe_b64encode(str(end).encode()).decode().rstrip("=")
    return page


def _tools_list(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
    tools = [connection.profile.describe(tool) for tool in connection.tools()]
    return _paged(tools, params, "tools")


def _tools_call(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
    # Tool metrics (kernel/metrics.py, /metrics): a count by outcome and the latency, per tool.
    started = time.perf_counter()
    name = params.get("name")
    tool = connection.tool(name)
    if tool is None:
        metrics.observe_tool(metrics.tool_label(name, declared=False), "fault", time.perf_counter() - started)
        raise ProtocolError(INVALID_PARAMS, f"Unknown tool: {name}")
    # Declared tools are counted under their name, per-user agent tools as "agent" (bounded labels).
    label = metrics.tool_label(tool.name, declared=registry.get(tool.name) is tool)
    outcome = "fault"  # unless the tool returns: a crash, answered as a JSON-RPC internal error
    try:
        value = _run_tool(connection, tool, params)
        outcome = "error" if value["isError"] else "ok"
        return value
    finally:
        metrics.observe_tool(label, outcome, time.perf_counter() - started)


def _run_tool(connection: Connection, tool: registry.Tool, params: dict[str, Any]) -> dict[str, Any]:
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return tool_error(f"Input validation error: arguments for tool {tool.name} must be an object")
    try:
        # Before any tool runs: a lone surrogate would otherwise reach SQLite or the embedder.
        limits.unicode_strings(arguments)
        parsed = tool.arguments.model_validate(arguments)
    except ValidationError as invalid:
        return tool_error(f"Input validation error: Invalid arguments for tool {tool.name}: {_explain(invalid)}")
    except DomainError as failure:  # a list over its item limit, text that is not Unicode
        return tool_error(failure.message)
    try:
        value = tool.handler(connection.context(), parsed)
    except DomainError as failure:
        return tool_error(failure.message)
    except Exception as failure:
        if not is_busy(failure):  # else a transaction begun outside the operation runner
            raise
        return tool_error(StoreBusy().message)
    return tool_result(tool, value)


# The problems a validation error names; the rest are counted.
SHOWN_PROBLEMS = 20


def _explain(invalid: ValidationError) -> str:
    problems = []
    for problem in invalid.errors(include_url=False, include_context=False, include_input=False)[:SHOWN_PROBLEMS]:
        where = ".".join(str(part) for part in problem["loc"]) or "arguments"
        problems.append(f"{where}: {problem['msg']}")
    more = invalid.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more else "")


def tool_result(tool: registry.Tool, value: Any) -> dict[str, Any]:
    """A successful CallToolResult: structured content plus the same JSON as text."""
    shown = tool.text_payload(value) if tool.text_payload is not None else value
    if tool.render_text is not None:
        text = tool.render_text(value)
    elif tool.text_indent is None:
        text = dumps(shown)
    else:
        text = pretty(shown, tool.text_indent)
    return {"content": [{"type": "text", "text": text}], "structuredContent": value, "isError": False}


def tool_error(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


# --- resources -------------------------------------------------------------------------------------


GRAPH_RESOURCE_INFO = {
    "uri": GRAPH_RESOURCE,
    "name": "knowledge-graph",
    "title": "Knowledge graph",
    "description": (
        "The knowledge graph of this connection's namespace as JSON (entities and relations, "
        "first page of read_graph; use the read_graph tool to page further)."
    ),
    "mimeType": "application/json",
}


def _resource_uri(connection: Connection, params: dict[str, Any]) -> str:
    uri = params.get("uri")
    if uri != GRAPH_RESOURCE:
        code = INVALID_PARAMS if connection.modern else RESOURCE_NOT_FOUND
        raise ProtocolError(code, "Resource not found", {"uri": uri})
    return uri


def _resources_list(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
    return _paged([GRAPH_RESOURCE_INFO], params, "resources")


def _resource_templates_list(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
    return {"resourceTemplates": []}


def _resources_read(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
    uri = _resource_uri(connection, params)
    try:
        graph = perform(connection.access, "read_graph", namespace=connection.namespace)
    except DomainError as failure:
        raise ProtocolError(INVALID_PARAMS, failure.message) from None
    text = json.dumps(graph, ensure_ascii=False, separators=(",", ":"))
    return {"contents": [{"uri": uri, "mimeType": "application/json", "text": text}]}


def _check_subscription(connection: Connection) -> None:
    """Raises ProtocolError unless the key may read what a subscription of this connection
    watches: the graph resource, with the grant `resources/read` needs (its operation, reading
    one entity: only the check matters)."""
    try:
        perform(connection.access, "read_graph", namespace=connection.namespace, limit=1)
    except DomainError as failure:
        raise ProtocolError(INVALID_PARAMS, failure.message) from None


def _resources_subscribe(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
    _resource_uri(connection, params)
    _check_subscription(connection)
    if not connection.subscribed:
        connection.subscribed = True
        connection.changed = True
    return {}


def _resources_unsubscribe(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
    _resource_uri(connection, params)
    if connection.subscribed:
        connection.subscribed = False
        connection.changed = True
    return {}


SUBSCRIPTION_ID_META = "io.modelcontextprotocol/subscriptionId"


def listen_filter(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """What a 2026-07-28 `subscriptions/listen` asks for that we will honour: tool list changes,
    and updates of the knowledge-graph resource when the key may read the namespace. Raises
    ProtocolError for a malformed filter or one naming an unknown resource."""
    wanted = params.get("notifications")
    if not isinstance(wanted, dict):
        raise ProtocolError(INVALID_PARAMS, "Invalid params: notifications must be an object")
    honoured: dict[str, Any] = {}
    if wanted.get("toolsListChanged") is True:
        honoured["toolsListChanged"] = True
    uris = wanted.get("resourceSubscriptions")
    if uris is not None:
        if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: resourceSubscriptions must be a list of URIs")
        for uri in uris:
            _resource_uri(connection, {"uri": uri})
        if uris:
            _check_subscription(connection)
            honoured["resourceSubscriptions"] = [GRAPH_RESOURCE]
            connection.subscribed = True
    return honoured


def tag_subscription(message: dict[str, Any], subscription_id: Any) -> dict[str, Any]:
    """A notification as sent on a listen stream: `_meta` names the listen request."""
    params = dict(message.get("params") or {})
    params["_meta"] = {**params.get("_meta", {}), SUBSCRIPTION_ID_META: subscription_id}
    return {**message, "params": params}


_MODERN_HANDLERS: dict[str, Handler] = {
    "tools/list": _tools_list,
    "tools/call": _tools_call,
    "resources/list": _resources_list,
    "resources/templates/list": _resource_templates_list,
    "resources/read": _resources_read,
}
_HANDLERS: dict[str, Handler] = {
    **_MODERN_HANDLERS,
    "resources/subscribe": _resources_subscribe,
    "resources/unsubscribe": _resources_unsubscribe,
}
