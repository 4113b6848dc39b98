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
    # An OAuth caller (access/oauth.py): the connected app (DOT Application id) and the access
    # token presented. Sessions and rate limits are bound to the (user, app) pair, which outlives
    # the short-lived tokens a client refreshes; long-lived streams re-check the token itself.
    oauth_application_id: int | None = None
    oauth_token_id: int | None = None

    @property
    def is_oauth(self) -> bool:
        return self.oauth_application_id is not None

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


def grant_within(grant: Grant, allowed: tuple[Grant, ...] | list[Grant]) -> bool:
    """True when one of `allowed` covers every namespace `grant` matches with at least its
    permission: what a user may give a key or a connected app of their own."""
    return any(patterns.covers(a.pattern, grant.pattern) and a.permission >= grant.permission for a in allowed)


def intersect(grants: tuple[Grant, ...] | list[Grant], allowed: tuple[Grant, ...] | list[Grant]) -> tuple[Grant, ...]:
    """The grants that reach exactly the (namespace, permission) pairs both `grants` and `allowed`
    reach: a grant inside an allowance is kept (its permission capped by the allowance's), and an
    allowance inside a broader grant is kept (capped by the grant's). Used at each use of an OAuth
    token, whose consent was checked against allowances that operators may have narrowed since."""
    kept: dict[str, Permission] = {}

    def keep(pattern: str, permission: Permission) -> None:
        if kept.get(pattern, Permission.READ) <= permission:
            kept[pattern] = permission

    for grant in grants:
        for allowance in allowed:
            if patterns.covers(allowance.pattern, grant.pattern):
                keep(grant.pattern, min(grant.permission, allowance.permission))
            elif patterns.covers(grant.pattern, allowance.pattern):
                keep(allowance.pattern, min(grant.permission, allowance.permission))
    return tuple(Grant(pattern, permission) for pattern, permission in sorted(kept.items()))
