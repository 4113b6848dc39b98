"""Every operation on tenant data, declared once with the permission it needs, and the one runner
that checks it.

Each app declares its operations (graph/operations.py, vectors/operations.py,
memory/operations.py, agents/operations.py) with `declare`; every surface (MCP tools, the REST
APIs, the MemOS-compatible API, the web pages, admin actions) calls `perform(access, name, ...)`
and never a service or selector that touches tenant data directly. The runner receives the caller
one way (an `Access`, first and positional), resolves which namespaces the call reaches, checks
the declared permission on each, runs the function with namespace names instead of the caller
(a write inside `access.changes.by`, so the history it records knows who changed what, through
which surface), and announces a committed write with the generic `operation_applied` signal.

An operation's function never sees the `Access`: what it may touch is decided here, by its
declared `Reach` and `Permission`:

- `Reach.NAMESPACE`: one namespace, the one named (else the caller's default); the function gets
  `namespace=<name>`.
- `Reach.NAMESPACES`: the namespaces named (a name or a list; each must be granted), else every
  existing namespace the caller holds the permission on; the function gets
  `namespaces={id: name}` (named namespaces that do not exist yet are left out: nothing is there).
  Calls by id (delete a memory by its id) use this: a row outside the reach is "not found".
- `Reach.DATABASE`: the whole database, for operators only (a write grant on '*'); the function
  gets no namespace.
- `Reach.ACCOUNT`: the caller's own account (credits, token balances); any working key of a user
  may; the function gets `user_id=<the key's owner>`, and a write also `actor` (who acts, for the
  ledger).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from access import changes, namespaces, selectors
from access.exceptions import AccessError, AccountRequired
from access.permissions import Access, Permission
from access.signals import operation_applied
from kernel.errors import InvalidArgument, StoreBusy
from kernel.sql import is_busy


class Reach(enum.Enum):
    NAMESPACE = "namespace"
    NAMESPACES = "namespaces"
    DATABASE = "database"
    ACCOUNT = "account"


class UnknownOperation(LookupError):
    """A programming error: a surface asked for an operation nobody declared."""


@dataclass(frozen=True)
class Operation:
    name: str
    function: Callable[..., Any]
    permission: Permission
    reach: Reach = Reach.NAMESPACE
    # What a successful call changes ("graph", "vectors", "memories", "ledger"), announced by
    # `operation_applied` after commit; None: it changes nothing (a read).
    changes: str | None = None

    @property
    def read_only(self) -> bool:
        return self.changes is None


_OPERATIONS: dict[str, Operation] = {}


def declare(operations: Iterable[Operation]) -> dict[str, Operation]:
    """Register `operations` (names are unique across apps); returns them by name."""
    declared: dict[str, Operation] = {}
    for operation in operations:
        existing = _OPERATIONS.get(operation.name)
        if existing is not None and existing != operation:
            raise ValueError(f"operation {operation.name!r} is declared twice")
        _OPERATIONS[operation.name] = declared[operation.name] = operation
    return declared


def declared() -> dict[str, Operation]:
    """Every declared operation by name (a copy)."""
    return dict(_OPERATIONS)


def get(name: str) -> Operation:
    try:
        return _OPERATIONS[name]
    except KeyError:
        raise UnknownOperation(name) from None


# Entered around every write before its function runs, with the operation's name and arguments:
# work that can be done ahead (vectors: embedding the new texts) then does not hold SQLite's one
# write lock. Registered by the apps that need it (vectors/apps.py).
WritePreparer = Callable[[str, dict[str, Any]], AbstractContextManager[None]]
_write_preparers: list[WritePreparer] = []


def prepare_writes_with(preparer: WritePreparer) -> None:
    if preparer not in _write_preparers:
        _write_preparers.append(preparer)


def perform(access: Access, name: str, /, *, namespace: str | list[str] | None = None, **arguments: Any) -> Any:
    """Run the operation declared as `name` for `access` (see `run`)."""
    return run(get(name), access, namespace=namespace, **arguments)


def run(operation: Operation, access: Access, /, *, namespace: str | list[str] | None = None, **arguments: Any) -> Any:
    """Run `operation` for `access`. `namespace` is what the caller named (None: the key's default,
    or for `Reach.NAMESPACES` every namespace it holds the permission on).

    Raises NamespaceRequired, NamespaceForbidden, OperatorOnly or AccountRequired before anything
    is read or written; domain errors of the operation itself pass through unchanged."""
    reached = _resolve(operation, access, namespace)
    arguments.update(reached)
    announced = reached.get("namespace")
    if operation.read_only:
        with _busy_as_domain_error():
            return operation.function(**arguments)
    with _busy_as_domain_error(), contextlib.ExitStack() as prepared:
        # Who changes what, for the history the stores record (access/changes.py).
        prepared.enter_context(changes.by(access, operation.name))
        for prepare in _write_preparers:
            prepared.enter_context(prepare(operation.name, arguments))
        result = operation.function(**arguments)
    name, changed = operation.name, operation.changes
    transaction.on_commit(
        lambda: operation_applied.send(sender=Operation, operation=name, namespace=announced, changes=changed)
    )
    return result


@contextlib.contextmanager
def _busy_as_domain_error() -> Iterator[None]:
    """A database that stayed busy past its wait (SQLite's write lock held by another writer for
    longer than the busy timeout, a PostgreSQL deadlock) is no bug of the call: every surface
    answers it as `store_busy` (503 with Retry-After, or a tool error), not as a server error."""
    try:
        yield
    except Exception as error:
        if is_busy(error):
            raise StoreBusy() from error
        raise


def check(access: Access, name: str, /, *, namespace: str | list[str] | None = None) -> None:
    """Raise what `perform(access, name, namespace=namespace)` would raise before running, and do
    nothing else: for orchestrations that must refuse before they start work that costs (chat
    checks the namespace it was told to record in before it pays for a model call; the MemOS add
    checks every namespace it names before writing to any)."""
    _resolve(get(name), access, namespace)


def _resolve(operation: Operation, access: Access, namespace: str | list[str] | None) -> dict[str, Any]:
    """The arguments the runner adds for the operation's reach, once the caller's grants allow it."""
    reach = operation.reach
    if reach is Reach.DATABASE:
        access.require_operator(operation.name)
        return {}
    if reach is Reach.ACCOUNT:
        if access.user_id is None:
            raise AccountRequired(operation.name)
        if operation.read_only:
            return {"user_id": access.user_id}
        return {"user_id": access.user_id, "actor": access.actor}
    if reach is Reach.NAMESPACES:
        return {"namespaces": _reach(access, namespace, operation.permission)}
    if not (namespace is None or isinstance(namespace, str)):
        raise InvalidArgument("namespace must be one namespace name", field="namespace")
    target = namespaces.validate(access.resolve_namespace(namespace))
    access.require(target, operation.permission)
    return {"namespace": target}


def allowed(access: Access, name: str, /, *, namespace: str | None = None) -> bool:
    """Whether `perform(access, name, namespace=namespace)` would pass the grant check: for
    orchestrations that do something only where they may (chat records an exchange in the key's
    default namespace when it can write there, and says why not otherwise)."""
    try:
        check(access, name, namespace=namespace)
    except AccessError:
        return False
    return True


def _reach(access: Access, named: str | list[str] | None, permission: Permission) -> dict[int, str]:
    """{id: name} of the existing namespaces a `Reach.NAMESPACES` call covers."""
    if named is None:
        return dict(selectors.reachable_namespaces(access, permission=permission).values_list("id", "name"))
    names = [named] if isinstance(named, str) else named
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise InvalidArgument("namespace must be a namespace name or a non-empty list of them", field="namespace")
    found: dict[int, str] = {}
    for name in dict.fromkeys(names):
        target = access.require(namespaces.validate(name), permission)
        ns_id = namespaces.lookup(target)
        if ns_id is not None:
            found[ns_id] = target
    return found
