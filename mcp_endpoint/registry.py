"""The tool registry: each MCP tool is declared once, here or in `mcp_endpoint/tools/`.

A declaration names the tool, says what it does in words written for a model, types its
arguments with a pydantic model (which becomes `inputSchema`), declares the `outputSchema` its
results conform to, and gives the handler that calls the services. The protocol layer
(`protocol.py`) does the rest: listing, validation, grant errors as `isError`, and the
`structuredContent` + text rendering of results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from access.permissions import Access

# The base of every argument model (tool modules import it from here) and the JSON Schema a model
# shows as: both belong to the operation contracts that the REST API reads too (graph/contracts.py).
from graph.contracts import Arguments
from graph.contracts import NoArguments as NoArguments
from kernel.contracts import self_contained as input_schema

# Categories a connection can choose with `?tools=` / `--tools`, in listing order.
CATEGORIES = ("kg-read", "kg-write", "vectors", "memory", "agents")


@dataclass(frozen=True)
class ToolContext:
    """Who is calling and where: the key's access, the connection's namespace (None: the key's
    default namespace, resolved by the operation), the language the client asked for
    (Accept-Language: "zh", "en"; None when it did not say), and the language of the endpoint it
    came through, for messages when nothing else says which (protocol.Profile.language)."""

    access: Access
    namespace: str | None
    language: str | None = None
    endpoint_language: str = "en"


@dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    category: str
    arguments: type[Arguments]
    output_schema: dict[str, Any]
    handler: Callable[[ToolContext, Any], Any]
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    # What the text block carries, when it is not the structured result itself (the official
    # server sends the bare array for create_entities / create_relations / add_observations).
    text_payload: Callable[[Any], Any] | None = None
    # The nine tools shared with the official server pretty-print their text as it does
    # (JSON.stringify(result, null, 2)); the others send compact JSON, which costs fewer tokens.
    text_indent: int | None = None
    # When set, the text block is this plain text instead of JSON (the marketplace tools answer
    # in sentences, as the marketplace seed shows).
    render_text: Callable[[Any], str] | None = None
    # Another name the tool answers to, everywhere; an endpoint may list it under this one (the
    # marketplace endpoint lists the marketplace seed's names).
    alias: str | None = None
    input_schema: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"tool {self.name}: unknown category {self.category!r}")
        object.__setattr__(self, "input_schema", input_schema(self.arguments))

    @property
    def annotations(self) -> dict[str, Any]:
        # All four hints are always spelled out, as the official server does: the spec's defaults
        # (destructive, not idempotent, open world) are the wrong guess for a memory tool. Memory
        # tools only touch this server's store: a closed world. Reads are idempotent.
        return {
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive and not self.read_only,
            "idempotentHint": self.idempotent or self.read_only,
            "openWorldHint": False,
        }

    def describe(self) -> dict[str, Any]:
        """The tool as `tools/list` shows it (an endpoint may show it under its alias)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "annotations": self.annotations,
        }


_TOOLS: dict[str, Tool] = {}
_ALIASES: dict[str, str] = {}


def register(tool: Tool) -> Tool:
    if tool.name in _TOOLS or tool.name in _ALIASES:
        raise ValueError(f"tool {tool.name} is declared twice")
    _TOOLS[tool.name] = tool
    if tool.alias:
        _ALIASES[tool.alias] = tool.name
    return tool


@dataclass(frozen=True)
class DynamicTools:
    """Tools that exist per caller (one `agent_{id}` per agent the caller holds tokens for):
    `list` gives the caller's, `resolve` finds one by name (or alias) or returns None."""

    category: str
    list: Callable[[ToolContext], list[Tool]]
    resolve: Callable[[ToolContext, str], Tool | None]


_DYNAMIC: list[DynamicTools] = []


def register_dynamic(dynamic: DynamicTools) -> None:
    if dynamic.category not in CATEGORIES:
        raise ValueError(f"dynamic tools: unknown category {dynamic.category!r}")
    _DYNAMIC.append(dynamic)


def dynamic_tools(categories: Iterable[str] | None = None) -> list[DynamicTools]:
    chosen = set(CATEGORIES if categories is None else categories)
    return [dynamic for dynamic in _DYNAMIC if dynamic.category in chosen]


def declare(
    name: str,
    title: str,
    description: str,
    arguments: type[Arguments],
    output_schema: dict[str, Any],
    *,
    category: str,
    handler: Callable[[ToolContext, Any], Any],
    **options: Any,
) -> Tool:
    """Build and register a tool (what every tool module's declarations call)."""
    return register(
        Tool(
            name=name,
            title=title,
            description=description,
            category=category,
            arguments=arguments,
            output_schema=output_schema,
            handler=handler,
            **options,
        )
    )


def get(name: str) -> Tool | None:
    """The declared tool called `name` (or whose alias it is)."""
    return _TOOLS.get(name) or _TOOLS.get(_ALIASES.get(name, ""))


def tools(categories: Iterable[str] | None = None) -> list[Tool]:
    """Registered tools in a stable order (by category, then declaration order)."""
    chosen = set(CATEGORIES if categories is None else categories)
    order = {category: index for index, category in enumerate(CATEGORIES)}
    selected = [tool for tool in _TOOLS.values() if tool.category in chosen]
    return sorted(selected, key=lambda tool: order[tool.category])


def parse_categories(value: str | None) -> tuple[str, ...] | None:
    """`kg-read,kg-write` → ('kg-read', 'kg-write'); None or empty → every category.

    Raises ValueError naming the unknown categories."""
    if value is None or not value.strip():
        return None
    names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    unknown = [name for name in names if name not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown tool categories {', '.join(unknown)}; choose from {', '.join(CATEGORIES)}")
    return names
