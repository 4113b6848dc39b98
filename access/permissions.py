"""What a caller may do: the grants of one API key (or of a signed-in user), checked in one place.

`Access` is immutable and carries everything a request needs, so checking a namespace costs no
query. Every operation goes through `access.operations.run`, which calls `require`;
views never check grants themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from access import patterns
from access.exceptions import InvalidGrant, NamespaceForbidden, NamespaceRequired, OperatorOnly


class Permission(enum.IntEnum):
    """Ordered, so that write implies read: `granted >= needed`."""

    READ = 1
    WRITE = 2

    @classmethod
    def parse(cls, value: str) -> Permission:
        try:
            return cls[value.upper()]
        except (KeyError, AttributeError):
            raise InvalidGrant(f"permission must be 'read' or 'write', not {value!r}", permission=value) from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Grant:
    pattern: str
    permission: Permission

    def __str__(self) -> str:
        return f"{self.pattern}={self.permission.label}"


@dataclass(frozen=True)
class Access:
    grants: tuple[Grant, ...]
    user_id: int | None = None
    key_id: int | None = None
    key_prefix: str | None = None
    default_namespace: str | None = None
    # Which edge the caller came through, for the history of what it changes: mcp, rest, memos,
    # console, admin, import (access.changes.SURFACES); set by each edge's authentication adapter.
    surface: str = ""

    def permission_for(self, namespace: str) -> Permission | None:
        """The strongest permission any grant gives on `namespace`, or None."""
        best: Permission | None = None
        for grant in self.grants:
            if patterns.matches(grant.pattern, namespace) and (best is None or grant.permission > best):
                best = grant.permission
        return best

    def can(self, namespace: str, permission: Permission) -> bool:
        granted = self.permission_for(namespace)
        return granted is not None and granted >= permission

    def require(self, namespace: str, permission: Permission) -> str:
        if not self.can(namespace, permission):
            raise NamespaceForbidden(namespace, permission.label)
        return namespace

    @property
    def actor(self) -> str:
        """Who acts, as audit records name them: the key by its prefix, else the local operator."""
        return f"key:{self.key_prefix}" if self.key_prefix else "local"

    def is_operator(self) -> bool:
        """A write grant on '*': the only kind of caller allowed database-wide operations."""
        return any(g.pattern == patterns.WILDCARD and g.permission is Permission.WRITE for g in self.grants)

    def require_operator(self, operation: str) -> None:
        if not self.is_operator():
            raise OperatorOnly(operation)

    def resolve_namespace(self, *candidates: str | None) -> str:
        """The first namespace given (request body, then header), else the key's default."""
        for candidate in (*candidates, self.default_namespace):
            if candidate:
                return candidate
        raise NamespaceRequired()
