"""Tool declarations by category; importing this package registers them all."""

from mcp_endpoint.tools import graph, memory, vectors  # noqa: F401
