"""Errors of the knowledge-graph store. Messages are written for the agent that made the call."""

from __future__ import annotations

from kernel.errors import DomainError


class GraphError(DomainError):
    code = "graph_error"


class InvalidArgument(GraphError):
    code = "invalid_argument"


class LimitExceeded(InvalidArgument):
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
