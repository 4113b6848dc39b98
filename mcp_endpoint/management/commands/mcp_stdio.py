"""`manage.py mcp_stdio`: MemoryHub as a local MCP server on stdin/stdout.

An MCP client (Claude Desktop, Claude Code, ...) starts this command and talks newline-delimited
JSON-RPC over its stdin and stdout (the MCP stdio transport). The spec allows nothing but MCP
messages on stdout, so the command first takes the real stdout for itself and points file
descriptor 1 (and `sys.stdout`) at stderr: Django's output, logging, warnings, a stray print, even
a child process, all end up on stderr, where the client shows them as server logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from access import namespaces
from access.authentication import authenticate
from access.exceptions import NotAuthenticated, RateLimited
from access.permissions import Access, Grant, Permission
from kernel.errors import DomainError
from kernel.startup import announce, start_background_work
from mcp_endpoint import lines, registry
from mcp_endpoint.models import McpSession

KEY_VARIABLE = "MEMORYHUB_API_KEY"
# Exit status for bad arguments or a refused key (what argparse uses for usage errors).
USAGE_ERROR = 2


def claim_stdout() -> int:
    """A private descriptor for the real stdout; fd 1 and `sys.stdout` now write to stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_fd


class Command(BaseCommand):
    help = (
        "Serve MCP over stdin/stdout (newline-delimited JSON-RPC) for a local MCP client such as "
        "Claude Desktop or Claude Code. With an API key (--key, or better the "
        f"{KEY_VARIABLE} environment variable, which does not show up in the process list) the "
        "connection has exactly that key's grants. Without a key it acts as a local operator "
        "(write on every namespace, working in --namespace or 'default'): whoever can run "
        "manage.py can read and write the database file directly, so a key would protect "
        "nothing there. Only MCP messages are written to stdout; everything else goes to stderr."
    )
    # System checks could print to stdout, and a client waits for this process on every start.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--namespace",
            help="Namespace the connection works in (default: the key's default namespace; without a key 'default').",
        )
        parser.add_argument(
            "--tools",
            help=f"Comma-separated tool categories to offer, from {', '.join(registry.CATEGORIES)} (default: all).",
        )
        parser.add_argument(
            "--key",
            help=f"API key whose grants the connection has (default: ${KEY_VARIABLE}; none: local operator).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        protocol_fd = claim_stdout()
        announce()
        start_background_work()
        namespace: str | None = options["namespace"] or None
        try:
            if namespace is not None:
                namespace = namespaces.validate(namespace)
            categories = registry.parse_categories(options["tools"])
        except DomainError as problem:
            raise CommandError(problem.message, returncode=USAGE_ERROR) from None
        except ValueError as problem:
            raise CommandError(str(problem), returncode=USAGE_ERROR) from None
        raw_key = (options["key"] or os.environ.get(KEY_VARIABLE) or "").strip() or None
        if raw_key is None:
            access = Access(
                grants=(Grant("*", Permission.WRITE),), default_namespace=namespace or "default", surface="mcp"
            )
        else:
            try:
                access = authenticate(raw_key)
            except NotAuthenticated:
                raise CommandError(
                    f"the API key given with --key or {KEY_VARIABLE} is not valid (unknown, revoked or expired)",
                    returncode=USAGE_ERROR,
                ) from None
            except RateLimited as problem:
                raise CommandError(problem.message, returncode=USAGE_ERROR) from None
        # The connection's queries run in the database thread of `db_sync_to_async`.
        connections.close_all()
        asyncio.run(_serve(protocol_fd, access, namespace, categories, raw_key))
        with contextlib.suppress(OSError):
            os.close(protocol_fd)


async def _serve(
    protocol_fd: int, access: Access, namespace: str | None, categories: tuple[str, ...] | None, raw_key: str | None
) -> None:
    """Serve until end of input; SIGINT / SIGTERM end the session cleanly too."""
    loop = asyncio.get_running_loop()
    stream = lines.PipeStream(sys.stdin.fileno(), protocol_fd)
    task = asyncio.ensure_future(
        lines.LineConnection(
            stream,
            access=access,
            namespace=namespace,
            categories=categories,
            transport=McpSession.Transport.STDIO,
            raw_key=raw_key,
        ).run()
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():  # we were cancelled ourselves, not the connection by a signal
            raise
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
