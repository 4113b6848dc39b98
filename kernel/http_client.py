"""JSON over HTTP POST to an outside provider (embeddings, chat), retried the way it deserves.

The embeddings client (`vectors.embedders`) and the chat provider (`agents.providers.openai`)
share this so that retry, timeout, redirect and redaction rules exist once. Only the standard
library is used: providers are plain JSON APIs and the server must not need more to call them.

- `Endpoint.parse(base_url, path)`: the URL to call and the URL to show (no credentials).
- `JsonPoster(...).post(body)`: one logical call, returning the decoded JSON answer or raising
  the caller's own "unavailable" / "timeout" error classes.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, Generic, TypeVar

from kernel.errors import DomainError

E = TypeVar("E", bound=DomainError)

# The provider's own error message goes into ours; long HTML error pages must not.
MAX_DETAIL_CHARS = 200


@dataclass(frozen=True)
class Endpoint:
    #: What is called, credentials and all.
    url: str
    #: For messages and logs: no user:password@, query string or fragment.
    display_url: str
    #: host[:port], e.g. to name a vector space after the server.
    host: str

    @classmethod
    def parse(cls, base_url: str, path: str) -> Endpoint:
        """`base_url` (e.g. https://api.openai.com/v1) joined with `path` (e.g. "/embeddings").

        Raises ValueError unless `base_url` is an http(s) URL with a host.
        """
        parsed = urllib.parse.urlsplit(base_url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"base_url must be an http(s) URL such as https://api.openai.com/v1, got {base_url!r}")
        host = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
        return cls(
            url=base_url.strip().rstrip("/") + path,
            display_url=urllib.parse.urlunsplit((parsed.scheme, host, parsed.path.rstrip("/") + path, "", "")),
            host=host,
        )


class RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would follow a redirect with the Authorization header still attached, possibly to
    # another host, and turn the POST into a GET. A moved endpoint is a configuration problem.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class JsonPoster(Generic[E]):
    """POSTs JSON to one endpoint with `Authorization: Bearer <api_key>` when a key is set.

    - `timeout`: seconds per HTTP attempt. A timeout raises `timed_out` at once: a provider that
      is that slow rarely recovers within the same request, and retrying would multiply the
      caller's wait.
    - `retries`: extra attempts after a connection error, 429 or 5xx, waiting `backoff_seconds`,
      then twice that, and so on (or the provider's Retry-After, capped at `timeout`). Other 4xx
      are the request's fault and are not retried; redirects are refused, not followed.
    - Failures raise `unavailable` ("The <provider> at <display_url> failed: <reason>") with the
      status or reason, plus the provider's own error message when it sent one; never the key
      (providers sometimes echo it back, so it is masked out of their messages too).

    Safe to share between threads: it holds no per-call state.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        api_key: str | None,
        timeout: float,
        retries: int,
        backoff_seconds: float,
        provider: str,
        unavailable: type[E],
        timed_out: type[E],
    ) -> None:
        self.endpoint = endpoint
        self.api_key = api_key or None
        self.timeout = timeout
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        #: Names the provider in messages, e.g. "embedding provider".
        self.provider = provider
        self.unavailable = unavailable
        self.timed_out = timed_out
        self._opener = urllib.request.build_opener(RefuseRedirects)

    def fail(self, reason: str, **details: Any) -> E:
        """The `unavailable` error for `reason` (for callers that find the answer unusable)."""
        return self.unavailable(
            f"The {self.provider} at {self.endpoint.display_url} failed: {reason}",
            url=self.endpoint.display_url,
            **details,
        )

    def timeout_error(self) -> E:
        return self.timed_out(
            f"The {self.provider} at {self.endpoint.display_url} did not answer within {self.timeout:g} seconds",
            url=self.endpoint.display_url,
            timeout_seconds=self.timeout,
        )

    def first_message(self, answer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The first choice of an OpenAI-style chat completion answer and its `message` object;
        `fail` when the answer has neither (a gateway's 200 with an error body says its error)."""
        if not isinstance(answer, dict):
            raise self.fail(f"the answer is a JSON {type(answer).__name__}, not an object")
        choices = answer.get("choices")
        if not isinstance(choices, list) or not choices:
            error = answer.get("error")
            # Some gateways answer 200 with an error body instead of an error status.
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                raise self.fail(f"the answer is an error: {self.redact(error['message'])[:200]}")
            raise self.fail('the answer has no "choices"')
        choice = choices[0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise self.fail('choices[0] has no "message" object')
        return choice, message

    def redact(self, text: str) -> str:
        """`text` with the API key masked ("Incorrect API key provided: sk-..." happens)."""
        if self.api_key:
            text = text.replace(self.api_key, "***")
        return text

    def post(self, body: dict[str, Any]) -> Any:
        """Send `body` as JSON and return the decoded JSON answer of the first 2xx response."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempts = self.retries + 1
        last_reason = ""
        last_status: int | None = None
        for attempt in range(attempts):
            wait = self.backoff_seconds * 2**attempt
            request = urllib.request.Request(self.endpoint.url, data=data, headers=headers, method="POST")
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                status = exc.code
                reason = f"HTTP {status} {exc.reason}".rstrip()
                detail = self._error_detail(exc)
                if detail:
                    reason += f": {detail}"
                if 300 <= status < 400:
                    location = exc.headers.get("Location", "?") if exc.headers else "?"
                    raise self.fail(
                        f"HTTP {status} redirect to {self.redact(location)} (redirects are not followed; "
                        "configure the final URL)",
                        status=status,
                    ) from None
                if status != 429 and status < 500:
                    raise self.fail(reason, status=status) from None
                last_reason, last_status = reason, status
                retry_after = retry_after_seconds(exc.headers.get("Retry-After") if exc.headers else None)
                if retry_after is not None:
                    wait = min(retry_after, self.timeout)
            except TimeoutError:
                raise self.timeout_error() from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    raise self.timeout_error() from None
                last_reason, last_status = f"cannot connect ({exc.reason})", None
            except (HTTPException, OSError) as exc:
                # The connection dropped mid-answer (reset, closed without a response, ...).
                last_reason, last_status = f"connection failed ({type(exc).__name__}: {exc})", None
            else:
                try:
                    return json.loads(raw)
                except ValueError:
                    raise self.fail("the answer is not JSON") from None
            if attempt + 1 < attempts:
                time.sleep(wait)
        attempts_text = f" after {attempts} attempts" if attempts > 1 else ""
        raise self.fail(f"{last_reason}{attempts_text}", status=last_status)

    def _error_detail(self, exc: urllib.error.HTTPError) -> str:
        """The provider's own error message, short and without the key, or ''."""
        try:
            raw = exc.read(4096)
        except (OSError, HTTPException):
            return ""
        text = raw.decode("utf-8", errors="replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error", body.get("detail", body.get("message")))
            if isinstance(error, dict):
                error = error.get("message", error)
            if error is not None:
                text = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
        text = re.sub(r"\s+", " ", self.redact(text)).strip()
        return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's delay in seconds, or None when absent or not a delay."""
    # Only the delta-seconds form; an HTTP date is rare from API servers and backoff covers it.
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
