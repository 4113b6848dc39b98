"""A real local OpenAI-compatible chat server, standing in for the outside LLM provider.

Tests talk to it over real HTTP (DESIGN.md: only the outside world is replaced, and by a real
local server, never by patching). Use the `fake_llm` fixture, or `with FakeLLM() as llm:`.

    llm.url                 "http://127.0.0.1:PORT/v1" (give it to a provider as its base URL)
    llm.requests            JSON bodies received on /v1/chat/completions, in order (failed ones too)
    llm.headers             their headers; keys are matched case-insensitively
    llm.answer              None: "ANSWER: <last user message>"; a str; or a callable(body) -> str
    llm.reasoning           when set, the answer message carries "reasoning_content"
    llm.usage               when set, sent as "usage" verbatim ({}: no "usage" key at all);
                            None: prompt_tokens = sum(len(content))//4 + 1,
                                  completion_tokens = len(answer)//4 + 1
    llm.latency             seconds to sleep before answering (timeout tests)
    llm.fail_status         with fail_times: answer the next `fail_times` requests with this
    llm.fail_times          status and {"error": {"message": fail_message}}; fail_times counts
    llm.fail_message        down to 0, after which answers are normal again
    llm.raw_response        when set, the 200 body instead of a completion (bytes verbatim,
                            anything else as JSON): for malformed-answer tests
    llm.close()

Other paths answer 404 with a JSON error; `"stream": true` answers 400 (not implemented).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/v1/chat/completions"


class Headers(dict[str, str]):
    """Request headers with case-insensitive keys (stored lower-case): HTTP header names are."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__((str(key).lower(), value) for key, value in dict(items).items())

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


class FakeLLM:
    """Starts serving at construction (127.0.0.1, a free port, a daemon thread); `close()` stops.

    Attributes may be changed between (or during) requests; each request reads them when it
    arrives. Recording and the failure countdown are under a lock, so concurrent calls are safe.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answer: str | Callable[[dict[str, Any]], str] | None = None
        self.reasoning: str | None = None
        self.usage: dict[str, Any] | None = None
        self.latency: float = 0.0
        self.fail_status: int | None = None
        self.fail_times: int = 0
        self.fail_message: str = "simulated provider failure"
        self.raw_response: bytes | Any | None = None
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port (handlers still sleeping are daemon threads, not waited for)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FakeLLM {self.url} requests={len(self.requests)}>"

    # --- What one request gets (called by the handler thread) ---------------------------------

    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> int | None:
        """Log the request; return the status to fail it with, if it is one of those to fail."""
        with self._lock:
            self.requests.append(body)
            self.headers.append(Headers(headers))
            if self.fail_status is not None and self.fail_times > 0:
                self.fail_times -= 1
                return self.fail_status
        return None

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages") or []
        if callable(self.answer):
            text = self.answer(body)
        elif self.answer is not None:
            text = self.answer
        else:
            last_user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
            text = f"ANSWER: {last_user}"
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if self.reasoning is not None:
            message["reasoning_content"] = self.reasoning
        completion: dict[str, Any] = {
            "id": f"chatcmpl-fake-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
        if self.usage is None:
            prompt = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
            completion_tokens = len(text) // 4 + 1
            completion["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens,
            }
        elif self.usage:
            completion["usage"] = self.usage
        return completion


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler sleeping out `latency` must not hold up close()
    fake: FakeLLM


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: Any) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
        with contextlib.suppress(OSError):  # the client gave up (timeout tests) or the server closed
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "fake_llm_error", "code": status}})

    def do_GET(self) -> None:
        self._error(404, f"no such endpoint: GET {self.path}")

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?", 1)[0] != CHAT_PATH:
            self._error(404, f"no such endpoint: POST {self.path}")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._error(400, "the request body is not a JSON object")
            return
        fail_status = fake._record(body, dict(self.headers.items()))
        if fake.latency:
            time.sleep(fake.latency)
        if fail_status is not None:
            self._error(fail_status, fake.fail_message)
        elif body.get("stream"):
            self._error(400, 'FakeLLM does not stream; send "stream": false')
        elif fake.raw_response is not None:
            self._send(200, fake.raw_response)
        else:
            self._send(200, fake._completion(body))
