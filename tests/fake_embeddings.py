"""A real local OpenAI-compatible embeddings server, standing in for the outside provider.

Tests talk to it over real HTTP (DESIGN.md: only the outside world is replaced, and by a real local
server, never by patching). `with FakeEmbeddings() as provider:` then point MEMORYHUB_EMBEDDINGS_URL
at `provider.url`.

    provider.url          "http://127.0.0.1:PORT/v1"
    provider.inputs       the `input` lists received on /v1/embeddings, in order (failed ones too)
    provider.fail_times   answer the next `fail_times` requests with HTTP 500 (counts down to 0)
    provider.failing      while True, answer every request with HTTP 500
    provider.latency      seconds to sleep before answering
    provider.before_answer  when set, called with the texts before a request is answered (runs in the
                          server's thread: for tests that change the database while a drain waits)

Vectors are deterministic per text (16 dims, seeded by the text's CRC): the same text always gets
the same vector, and a search for a text's exact words finds that text first.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

DIMS = 16


def vector_of(text: str) -> list[float]:
    return list(np.random.default_rng(zlib.crc32(text.encode())).normal(size=DIMS).tolist())


class FakeEmbeddings:
    def __init__(self) -> None:
        self.inputs: list[list[str]] = []
        self.fail_times = 0
        self.failing = False
        self.latency = 0.0
        self.before_answer: Callable[[list[str]], object] | None = None
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-embeddings", daemon=True
        )
        self._thread.start()

    def _should_fail(self, texts: list[str]) -> bool:
        with self._lock:
            self.inputs.append(texts)
            if self.failing:
                return True
            if self.fail_times > 0:
                self.fail_times -= 1
                return True
            return False

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeEmbeddings:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeEmbeddings


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        texts = list(body.get("input") or [])
        if fake.latency:
            time.sleep(fake.latency)
        if fake.before_answer is not None:
            fake.before_answer(texts)
        answer: dict[str, Any]
        if self.path != "/v1/embeddings":
            status, answer = 404, {"error": {"message": "not found"}}
        elif fake._should_fail(texts):
            status, answer = 500, {"error": {"message": "the embedding model is overloaded"}}
        else:
            data = [{"object": "embedding", "index": i, "embedding": vector_of(t)} for i, t in enumerate(texts)]
            status, answer = 200, {"object": "list", "data": data, "model": body.get("model")}
        raw = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(raw)
