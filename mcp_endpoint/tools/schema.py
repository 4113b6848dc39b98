"""JSON Schema building blocks of the tool declarations, where the tool modules import them from.

They are declared in kernel/contracts.py, with the operation contracts (graph/contracts.py) that
both the MCP tools and the REST API read.
"""

from kernel.contracts import (
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    STRINGS,
    array_schema,
    extend,
    nullable,
    object_schema,
    optional,
)

__all__ = [
    "BOOLEAN",
    "INTEGER",
    "NUMBER",
    "STRING",
    "STRINGS",
    "array_schema",
    "extend",
    "nullable",
    "object_schema",
    "optional",
]
