"""Tool declarations by category; importing this package registers them all."""

from mcp_endpoint.tools import agents, graph, memory, vectors  # noqa: F401
