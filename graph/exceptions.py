"""Errors of the knowledge-graph store. Messages are written for the agent that made the call."""

from __future__ import annotations

from kernel.errors import DomainError, InvalidArgument


class GraphError(DomainError):
    code = "graph_error"


# InvalidArgument is the kernel's (namespace names are validated in the access layer, below the
# graph); it is re-exported here for the store's modules. It is not a GraphError: callers that
# turn GraphErrors into messages catch both.
__all__ = ["EntityAlreadyExists", "EntityNotFound", "GraphError", "InvalidArgument", "LimitExceeded"]


class LimitExceeded(InvalidArgument, GraphError):
    """A request went over one of the limits in settings.MEMORYHUB_LIMITS (named in `details`)."""

    code = "limit_exceeded"


class EntityNotFound(GraphError):
    code = "not_found"

    def __init__(self, name: str) -> None:
        # The exact text of the official memory server, which agents and tests match on.
        super().__init__(f"Entity with name {name} not found", name=name)


class EntityAlreadyExists(GraphError):
    code = "already_exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"Entity with name {name} already exists", name=name)
