"""Errors of the knowledge-graph store. Messages are written for the agent that made the call."""

from __future__ import annotations

from kernel.errors import DomainError, InvalidArgument


class GraphError(DomainError):
    code = "graph_error"


# InvalidArgument is the kernel's (namespace names are validated in the access layer, below the
# graph); it is re-exported here for the store's modules. It is not a GraphError: callers that
# turn GraphErrors into messages catch both.
__all__ = [
    "Conflict",
    "EntityAlreadyExists",
    "EntityNotFound",
    "GraphError",
    "InvalidArgument",
    "LimitExceeded",
    "NotFound",
    "RetentionPassed",
]


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


class NotFound(GraphError):
    """No such memory, observation, entity, relation or version within the caller's reach (an id
    outside it answers the same, so ids reveal nothing about other tenants)."""

    code = "not_found"


class Conflict(GraphError):
    """A restore or update would clash with what is there now (a name taken since, a relation or
    an observation that exists again)."""

    code = "already_exists"


class RetentionPassed(GraphError):
    """A deleted object's versions are older than the retention window: it cannot be restored."""

    code = "retention_passed"
