"""`manage.py mcp_tcp`: MCP over plain TCP, one newline-delimited JSON-RPC connection per socket.

The first line of a connection authenticates it, in one of two forms:

    <api key>
    {"key": "<api key>", "namespace": "org:team:project", "tools": "kg-read,kg-write"}

(`namespace` and `tools` optional: the key's default namespace, every tool category). After that
the connection speaks MCP exactly as the stdio transport does (`mcp_endpoint/lines.py`). A
refused first line gets one JSON-RPC error line with id null, then the connection is closed.

There is no TLS: bind to loopback (the default) or put a TLS terminator in front.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import sys
from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from access import namespaces
from access.authentication import authenticate
from access.exceptions import NotAuthenticated, RateLimited
from access.permissions import Access
from kernel.asyncdb import db_sync_to_async
from kernel.errors import DomainError
from kernel.startup import announce, start_background_work
from mcp_endpoint import lines, registry
from mcp_endpoint.jsonrpc import INVALID_REQUEST, ProtocolError, dumps, error, parse
from mcp_endpoint.models import McpSession

logger = logging.getLogger("mcp_endpoint.tcp")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
# The first line (a key, or a small JSON object) must arrive this soon and be at most this long:
# a connection that has not authenticated yet holds one of the connection slots. A client sends
# its key line as soon as it connects; idle sockets could otherwise take every slot (30 s each
# used to be enough to lock real clients out with a handful).
FIRST_LINE_TIMEOUT_SECONDS = 5.0
# Connections from one address that may wait for their first line at once; more are refused at
# once, so one address cannot hold every slot with sockets that never authenticate.
MAX_PENDING_PER_ADDRESS = 8
FIRST_LINE_LIMIT = 64 * 1024
# How long a refused connection's unread input is drained before closing (so the client reads
# the error line instead of a connection reset).
LINGER_SECONDS = 1.0
NOT_AUTHENTICATED = (
    'A valid API key is required: send it as the first line, or as {"key": ...} with optional "namespace" and "tools"'
)


def parse_bind(value: str) -> tuple[str, int]:
    """'HOST:PORT', '[v6]:PORT' or 'PORT' → (host, port); the host defaults to loopback."""
    host, separator, port = value.rpartition(":")
    if not separator:
        host, port = DEFAULT_HOST, value
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise CommandError(f"--bind {value!r}: expected HOST:PORT with a port from 0 to 65535", returncode=2)
    return host or DEFAULT_HOST, number


def show_address(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def refusal(problem: ProtocolError) -> bytes:
    return (dumps(error(None, problem)) + "\n").encode()


def credentials(line: bytes) -> tuple[str, str | None, tuple[str, ...] | None]:
    """(key, namespace, categories) from a first line; raises ProtocolError."""
    try:
        text = line.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ProtocolError(INVALID_REQUEST, "The first line must be the API key (UTF-8 text)") from None
    if not text.startswith("{"):
        return text, None, None
    try:
        value = parse(text)
    except ProtocolError as problem:  # every refusal of the first line is -32600
        raise ProtocolError(INVALID_REQUEST, f"The first line is not valid JSON: {problem.message}") from None
    if not isinstance(value, dict):
        raise ProtocolError(INVALID_REQUEST, "The first line must be the API key or a JSON object with 'key'")
    key, namespace, tools = value.get("key"), value.get("namespace"), value.get("tools")
    if not isinstance(key, str):
        raise ProtocolError(INVALID_REQUEST, "The first line's JSON object needs 'key': the API key as a string")
    if isinstance(tools, list) and all(isinstance(item, str) for item in tools):
        tools = ",".join(tools)
    if not (namespace is None or isinstance(namespace, str)) or not (tools is None or isinstance(tools, str)):
        raise ProtocolError(INVALID_REQUEST, "'namespace' and 'tools' must be strings")
    try:
        if namespace:
            namespace = namespaces.validate(namespace)
        categories = registry.parse_categories(tools)
    except (DomainError, ValueError) as problem:
        text = problem.message if isinstance(problem, DomainError) else str(problem)
        raise ProtocolError(INVALID_REQUEST, f"Bad request: {text}") from None
    return key.strip(), namespace or None, categories


@db_sync_to_async
def _authenticate(raw_key: str) -> Access:
    try:
        return replace(authenticate(raw_key), surface="mcp")
    except NotAuthenticated:
        # One text for unknown, revoked and expired keys alike (no oracle), as on HTTP.
        raise ProtocolError(INVALID_REQUEST, NOT_AUTHENTICATED) from None
    except RateLimited as problem:
        raise ProtocolError(INVALID_REQUEST, problem.message, {"retryAfter": problem.retry_after}) from None


class TcpServer:
    def __init__(
        self,
        host: str,
        port: int,
        max_connections: int,
        *,
        first_line_timeout: float = FIRST_LINE_TIMEOUT_SECONDS,
        max_pending_per_address: int = MAX_PENDING_PER_ADDRESS,
    ) -> None:
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.first_line_timeout = first_line_timeout
        self.max_pending_per_address = max_pending_per_address
        self.clients: set[asyncio.Task[Any]] = set()
        # Connections per peer address still waiting for their first line.
        self.pending: collections.Counter[str] = collections.Counter()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        server = await asyncio.start_server(self.accept, self.host, self.port, limit=FIRST_LINE_LIMIT)
        address = server.sockets[0].getsockname()
        print(f"listening on {show_address(address)}", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            server.close()
            for task in list(self.clients):
                task.cancel()
            await asyncio.gather(*self.clients, return_exceptions=True)
            await server.wait_closed()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        print("stopped", file=sys.stderr, flush=True)

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        if self.pending[address] >= self.max_pending_per_address:
            logger.warning("MCP TCP connection from %s refused: %d waiting for their key", peer, self.pending[address])
            await self.refuse(
                reader,
                writer,
                f"Too many connections waiting for their API key line from your address "
                f"(at most {self.max_pending_per_address})",
            )
            return
        if len(self.clients) >= self.max_connections:
            logger.warning("MCP TCP connection from %s refused: %d connections open", peer, len(self.clients))
            await self.refuse(reader, writer, f"Too many connections: this server allows {self.max_connections}")
            return
        task = asyncio.current_task()
        assert task is not None
        self.clients.add(task)
        try:
            await self.serve(reader, writer, address)
        except Exception:
            logger.exception("MCP TCP connection from %s failed", peer)
        finally:
            self.clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        self.pending[address] += 1
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), self.first_line_timeout)
            raw_key, namespace, categories = credentials(line)
            access = await _authenticate(raw_key)
        except TimeoutError:
            await self.refuse(reader, writer, f"No API key line within {self.first_line_timeout:g} seconds")
            return
        except asyncio.LimitOverrunError:
            await self.refuse(reader, writer, f"The first line is longer than {FIRST_LINE_LIMIT} bytes")
            return
        except asyncio.IncompleteReadError:
            return  # closed before sending a whole first line
        except ProtocolError as problem:
            await self.refuse(reader, writer, problem)
            return
        except ConnectionError:
            return
        finally:
            self.pending[address] -= 1
            if self.pending[address] <= 0:
                del self.pending[address]
        await lines.LineConnection(
            lines.SocketStream(reader, writer),
            access=access,
            namespace=namespace,
            categories=categories,
            transport=McpSession.Transport.TCP,
            raw_key=raw_key,
        ).run()

    async def refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, problem: str | ProtocolError
    ) -> None:
        """One error line, then close, after reading what the client already sent (closing a
        socket with unread input resets it, and the client might never see the error)."""
        try:
            if isinstance(problem, str):
                problem = ProtocolError(INVALID_REQUEST, problem)
            writer.write(refusal(problem))
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(LINGER_SECONDS):
                while await reader.read(lines.CHUNK_SIZE):
                    pass
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class Command(BaseCommand):
    help = (
        "Serve MCP over TCP: newline-delimited JSON-RPC, one connection per client. Each "
        "connection's first line is an API key, or a JSON object "
        '{"key": ..., "namespace": ..., "tools": "kg-read,kg-write"}; the connection then has '
        "that key's grants. No TLS: keep the default loopback address unless a TLS terminator "
        "sits in front. Prints 'listening on HOST:PORT' to stderr when ready; stops on SIGINT/SIGTERM."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind",
            default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
            help=f"HOST:PORT to listen on (default {DEFAULT_HOST}:{DEFAULT_PORT}; port 0 picks a free one).",
        )
        parser.add_argument(
            "--max-connections",
            type=int,
            default=128,
            help="Connections served at once; more are refused with an error line (default 128).",
        )
        parser.add_argument(
            "--first-line-timeout",
            type=float,
            default=FIRST_LINE_TIMEOUT_SECONDS,
            help=f"Seconds a new connection has to send its key line (default {FIRST_LINE_TIMEOUT_SECONDS:g}).",
        )
        parser.add_argument(
            "--max-pending-per-address",
            type=int,
            default=MAX_PENDING_PER_ADDRESS,
            help="Connections from one address that may wait for their key line at once; more are "
            f"refused with an error line (default {MAX_PENDING_PER_ADDRESS}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = parse_bind(options["bind"])
        if options["max_connections"] < 1:
            raise CommandError("--max-connections must be at least 1", returncode=2)
        if options["max_pending_per_address"] < 1 or not options["first_line_timeout"] > 0:
            raise CommandError(
                "--max-pending-per-address must be at least 1, --first-line-timeout above 0", returncode=2
            )
        announce()
        start_background_work()
        connections.close_all()
        try:
            server = TcpServer(
                host,
                port,
                options["max_connections"],
                first_line_timeout=options["first_line_timeout"],
                max_pending_per_address=options["max_pending_per_address"],
            )
            asyncio.run(server.run())
        except OSError as problem:
            raise CommandError(f"cannot listen on {options['bind']}: {problem}") from None
