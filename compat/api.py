"""The MemOS-compatible HTTP API: django-ninja, mounted at `/product/`.

Routes (MemOS' `server_router.py` names): POST add, search, chat/complete, get_all, get_memory,
delete_memory; GET get_memory/{memory_id}. Docs at `/product/docs`, schema at
`/product/openapi.json`.

Every answer, success or failure, is MemOS' envelope `{"code", "message", "data"}`: `code` 200 on
success, otherwise the HTTP status of the response (400 bad input, including validation errors
and malformed JSON; 401 missing or invalid key; 403 a cube the key has no grant for; 404 unknown
memory or route; 405; 413 body too large; 429 rate limit; 502/504 the LLM provider failed or
timed out; 500 a bug), with `data: null`. Domain errors are translated here, once.

Keys travel the shared path (`access.authentication`): `X-API-Key`,
`Authorization: Bearer|ApiKey|Token <key>` (memos-api-mcp sends `Token`), `x-momoai-key`.

Bodies may be double-encoded: MemOS' own guide posts `requests.post(url, json=json.dumps({...}))`,
a JSON string holding the JSON object. A body that parses to a string which parses to an object
is taken as that object.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from access.exceptions import NotAuthenticated
from access.ninja_auth import ApiKeyAuth
from access.permissions import Access
from compat import memos, schemas
from compat.docs import LocalSwagger
from graph.exceptions import InvalidArgument
from kernel.errors import DomainError, StoreBusy
from kernel.http_errors import headers_for, status_for
from kernel.sql import is_busy

# The logger keeps its name from before the move out of memoryhub/, so log output is unchanged.
logger = logging.getLogger("memoryhub.compat.api")

TOO_LARGE = "The request body is larger than the server accepts (MEMORYHUB_MAX_REQUEST_BYTES, 16 MB by default)."

DESCRIPTION = """
MemOS' `/product/*` server API on MemoryHub. Cubes are namespaces (`org:team:project`), and every
request needs an API key whose grants cover the cubes: `X-API-Key: <key>` or
`Authorization: Token|Bearer|ApiKey <key>`.

One key may serve many users, told apart by `user_id`: with no cube named, a `user_id` reads and writes
only its own memories (its own cube, which its `user_id` also names); a cube named explicitly is shared
by every user of the key. `user_id` separates users; it does not authenticate them.

Every answer is `{"code", "message", "data"}`; failures carry the HTTP status as `code` and `data: null`.
Memories are stored synchronously (`async_mode` is accepted): they are searchable when `add` answers.
""".strip()


class MemosParser(Parser):
    """JSON bodies, unwrapping a double-encoded object (see the module docstring)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            data = json.loads(request.body)
        except ValueError as error:
            raise InvalidArgument(f"the request body is not valid JSON: {error}") from None
        if isinstance(data, str):
            try:
                inner = json.loads(data)
            except ValueError:
                inner = None
            if isinstance(inner, dict):
                data = inner
        if not isinstance(data, dict):
            raise InvalidArgument(f"the request body must be a JSON object, not a JSON {type(data).__name__}")
        return data


api = NinjaAPI(
    title="MemoryHub — MemOS-compatible API",
    version="1",
    description=DESCRIPTION,
    auth=ApiKeyAuth(),
    parser=MemosParser(),
    urls_namespace="memos",
    docs_url="/docs",
    docs=LocalSwagger(),  # served from this server: the default loads Swagger UI from a CDN
    openapi_url="/openapi.json",
)

ERRORS: dict[int, Any] = {
    status: schemas.ErrorResponse for status in (400, 401, 403, 404, 405, 413, 429, 500, 502, 504)
}


# --- the envelope ---------------------------------------------------------------------------------


def ok(message: str, data: Any) -> dict[str, Any]:
    return {"code": 200, "message": message, "data": data}


def failure(request: HttpRequest, status: int, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    response = api.create_response(request, {"code": status, "message": message, "data": None}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _domain_error(request: HttpRequest, error: DomainError) -> HttpResponse:
    return failure(request, status_for(error), error.message, headers_for(error, request))


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}


def _is_type_tag(part: str) -> bool:
    """A union branch pydantic names in an error's location (`str`, `list[str]`, `Message`), not a
    field: fields here are snake_case."""
    return "[" in part or part in _TYPE_TAGS or part[:1].isupper()


# The problems a validation error names; the rest are counted. A request with 200,000 wrong items
# gets a short answer, computed in time proportional to the number of errors.
SHOWN_PROBLEMS = 20


def _validation_message(errors: list[dict[str, Any]]) -> str:
    """One clause per problem, `field.path: what is wrong`: locations without the body's wrapper
    and without union branch names; of errors nested in one another only the innermost (the
    actual problem); alternatives at one place joined with "or". The first SHOWN_PROBLEMS
    problems, then how many more there are."""
    located: dict[tuple[str, ...], list[str]] = {}
    enclosing: set[tuple[str, ...]] = set()
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc[:1] == ["body"]:
            loc = loc[2:]  # "body", then the operation's parameter name
        where = tuple(part for part in loc if not _is_type_tag(part))
        message = str(error.get("msg", "invalid"))
        messages = located.setdefault(where, [])
        if message not in messages:
            messages.append(message)
        enclosing.update(where[:end] for end in range(len(where)))
    innermost = [where for where in located if where not in enclosing]
    clauses = [
        f"{'.'.join(where)}: {' or '.join(located[where])}" if where else " or ".join(located[where])
        for where in innermost[:SHOWN_PROBLEMS]
    ]
    more = len(innermost) - len(clauses)
    return "; ".join(clauses) + (f" (and {more} more)" if more else "")


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, error: DomainError) -> HttpResponse:
    return _domain_error(request, error)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    # MemOS (FastAPI) answers 422 here; MemOS' own handlers and this API's contract say 400.
    return failure(request, 400, _validation_message(error.errors))


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    # ninja wraps what the body parser raised ("Cannot parse request body"); report the cause.
    cause = error.__cause__
    if isinstance(cause, RequestDataTooBig):
        return failure(request, 413, TOO_LARGE)
    if isinstance(cause, DomainError):
        return _domain_error(request, cause)
    if isinstance(error, AuthenticationError):
        return _domain_error(request, NotAuthenticated())
    return failure(request, error.status_code, str(error))


@api.exception_handler(RequestDataTooBig)
def too_large(request: HttpRequest, error: RequestDataTooBig) -> HttpResponse:
    return failure(request, 413, TOO_LARGE)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return failure(request, 404, f"No endpoint at {request.path}; see /product/docs.")


@api.exception_handler(Exception)
def unexpected(request: HttpRequest, error: Exception) -> HttpResponse:
    if is_busy(error):  # a transaction begun outside the operation runner (memos.add's)
        return _domain_error(request, StoreBusy())
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return failure(request, 500, "The server failed to handle this request.")


def _access(request: HttpRequest) -> Access:
    access = request.auth  # type: ignore[attr-defined]  # set by ApiKeyAuth
    assert isinstance(access, Access)
    return access


# --- routes ---------------------------------------------------------------------------------------


@api.post("/add", response={200: schemas.AddResponse, **ERRORS}, summary="Add memories")
def add(request: HttpRequest, payload: schemas.AddRequest) -> dict[str, Any]:
    """Store each non-empty message as a memory (tagged role:<role>, the custom_tags and
    session:<session_id>) in every writable cube, synchronously."""
    return ok("Memory added successfully", memos.add(_access(request), payload))


@api.post("/search", response={200: schemas.SearchResponse, **ERRORS}, summary="Search memories")
def search(request: HttpRequest, payload: schemas.SearchRequest) -> dict[str, Any]:
    """The memories closest to the query in meaning (and exact terms), grouped by cube."""
    return ok("Search completed successfully", memos.search(_access(request), payload))


@api.post("/chat/complete", response={200: schemas.ChatResponse, **ERRORS}, summary="Chat with memory")
def chat_complete(request: HttpRequest, payload: schemas.ChatCompleteRequest) -> dict[str, Any]:
    """An answer grounded in the cubes' memories, from the server's LLM provider
    (MEMORYHUB_LLM_*; without one, the offline extractive provider lists the memories found).
    When the exchange could not be recorded, the message says why; the answer is never lost."""
    data, not_recorded = memos.chat_complete(_access(request), payload)
    message = "Chat completed successfully"
    return ok(f"{message}; the exchange was not recorded: {not_recorded}" if not_recorded else message, data)


@api.post("/get_all", response={200: schemas.GetAllResponse, **ERRORS}, summary="List memories")
def get_all(request: HttpRequest, payload: schemas.GetAllRequest) -> dict[str, Any]:
    """The newest memories of the cubes (at most 200), or with search_query the best matches."""
    return ok("Memories retrieved successfully", memos.get_all(_access(request), payload))


@api.post("/get_memory", response={200: schemas.GetMemoryResponse, **ERRORS}, summary="Page through a cube")
def get_memories(request: HttpRequest, payload: schemas.GetMemoryRequest) -> dict[str, Any]:
    """One page of a cube's memories, newest first; total_nodes counts them all."""
    return ok("Memories retrieved successfully", memos.get_memories(_access(request), payload))


@api.get("/get_memory/{memory_id}", response={200: schemas.GetOneResponse, **ERRORS}, summary="Get one memory")
def get_memory(request: HttpRequest, memory_id: str, user_id: str | None = None) -> dict[str, Any]:
    """One memory by id; 404 when it does not exist or the key cannot read it (with ?user_id=, or
    when it is not that user's own)."""
    return ok("Memory retrieved successfully", memos.get_memory(_access(request), memory_id, user_id))


@api.post("/delete_memory", response={200: schemas.DeleteResponse, **ERRORS}, summary="Delete memories")
def delete_memory(request: HttpRequest, payload: schemas.DeleteMemoryRequest) -> dict[str, Any]:
    """Delete memories by id; data lists what was deleted and what was not."""
    return ok("Memories deleted successfully", memos.delete(_access(request), payload))


# --- everything else, in the envelope too ---------------------------------------------------------

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_ROUTES = {
    "/add": "POST",
    "/search": "POST",
    "/chat/complete": "POST",
    "/get_all": "POST",
    "/get_memory": "POST",
    "/delete_memory": "POST",
}


def _refuse(request: HttpRequest, allowed: str) -> HttpResponse:
    return failure(request, 405, f"{request.method} is not allowed here; use {allowed}.", {"Allow": allowed})


def _refusal(allowed: str) -> Any:
    def refuse(request: HttpRequest) -> HttpResponse:
        return _refuse(request, allowed)

    return refuse


# ninja answers a wrong method with a bare 405; these operations take the other methods first.
for _path, _allowed in _ROUTES.items():
    api.api_operation([m for m in _METHODS if m != _allowed], _path, auth=None, include_in_schema=False)(
        _refusal(_allowed)
    )


@api.api_operation([m for m in _METHODS if m != "GET"], "/get_memory/{memory_id}", auth=None, include_in_schema=False)
def get_memory_other_methods(request: HttpRequest, memory_id: str) -> HttpResponse:
    return _refuse(request, "GET")


@api.api_operation(_METHODS, "/", auth=None, include_in_schema=False)
def root(request: HttpRequest) -> HttpResponse:
    return not_found(request, Http404())


@api.api_operation(_METHODS, "/{path:rest}", auth=None, include_in_schema=False)
def unknown_route(request: HttpRequest, rest: str) -> HttpResponse:
    return not_found(request, Http404())
