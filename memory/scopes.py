"""Users under one key: which memories a request for a `user_id` reaches.

MemOS clients (a Coze bot, MemOS' MCP servers) send one key for all of their users and tell them
apart by `user_id`. As in MemOS, each user_id has its own memories by default: here, those
recorded with it as actor in the caller's own namespace (the key's default, or an MCP
connection's). A namespace named explicitly is shared: whoever may read it under the key's grants
reads all of it. Where a namespace is expected, the user_id itself names the user's own memories
(MemOS names a user's own memories by the user_id). Without a user_id a request reaches everything
the key can. This partitions what one key reaches, it does not authenticate users: the key holder
says which user is asking, as MemOS' server key does.

The grants themselves are checked by the runner (access.operations) when the memory operations
are performed with the namespaces a scope names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scope:
    """What a request reads: `namespace` as the memory operations take it (None: every namespace
    the key can read), and `actor_in`, the namespaces where only one actor's memories are read."""

    namespace: list[str] | None
    actor_in: dict[str, str] = field(default_factory=dict)
    # {namespace: the name the caller used for it}: a user's own memories named by user_id.
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, namespace: str) -> str:
        return self.labels.get(namespace, namespace)

    def holds(self, memory: Mapping[str, Any]) -> bool:
        """Whether a memory (found by id) is within this scope."""
        name = memory["namespace"]
        if self.namespace is not None and name not in self.namespace:
            return False
        return self.actor_in.get(name, memory["actorId"]) == memory["actorId"]


def user_scope(user_id: str | None, named: list[str] | None, own: Callable[[], str]) -> Scope:
    """The scope of a read for `user_id` (see above). `named` are the namespaces the request names
    (None: none), where `user_id` may stand for the user's own memories; `own()` is the caller's
    own namespace, called only when needed (it raises NamespaceRequired when there is none)."""
    if not user_id:
        return Scope(named)
    if named is None:
        home = own()
        return Scope([home], {home: user_id})
    if user_id not in named:
        return Scope(named)
    home = own()
    spaces = list(dict.fromkeys(home if name == user_id else name for name in named))
    if home in named:  # the namespace itself is named too: all of it is read
        return Scope(spaces)
    return Scope(spaces, {home: user_id}, {home: user_id})


def user_targets(user_id: str | None, named: list[str] | None, own: Callable[[], str]) -> list[tuple[str, str]]:
    """(namespace, the name the caller used for it) of each place a write for `user_id` goes: the
    namespaces named (the user_id naming the caller's own namespace), else the caller's own
    namespace."""
    if named is None:
        home = own()
        return [(home, home)]
    targets = {(own() if name == user_id and user_id else name): name for name in named}
    return list(targets.items())
