"""Errors of the access layer. Each edge maps `code` to its own status (401, 403, 429, ...)."""

from __future__ import annotations

from kernel.errors import API_KEY_REQUIRED, DomainError


class AccessError(DomainError):
    code = "access_error"


class NotAuthenticated(AccessError):
    """Missing, unknown, malformed, expired and revoked keys all raise this with the same text,
    so a caller cannot tell them apart (no oracle for guessing keys)."""

    code = "unauthorized"

    def __init__(self) -> None:
        super().__init__(API_KEY_REQUIRED)


class InvalidToken(NotAuthenticated):
    """An OAuth access token that is unknown, expired, revoked, its user inactive, or bound to
    another resource (RFC 6750 `invalid_token`). Edges answer it like any NotAuthenticated (401),
    with `error="invalid_token"` in the Bearer challenge."""

    oauth_error = "invalid_token"
    INVALID = "The access token is invalid, expired or revoked."
    WRONG_RESOURCE = "The access token is not valid for this resource."

    def __init__(self, description: str = INVALID) -> None:
        AccessError.__init__(self, description)


class NamespaceForbidden(AccessError):
    code = "forbidden"

    def __init__(self, namespace: str, permission: str) -> None:
        super().__init__(
            f"This API key has no {permission} grant for namespace {namespace!r}.",
            namespace=namespace,
            permission=permission,
        )


class OperatorOnly(AccessError):
    code = "forbidden"

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation} affects every namespace and needs a key with a write grant on '*'.",
            operation=operation,
        )


class AccountRequired(AccessError):
    """The caller is not a user (a keyless local stdio session): accounts (credits, tokens) belong
    to users."""

    code = "forbidden"

    def __init__(self, operation: str) -> None:
        super().__init__(
            "This needs an API key that belongs to a user (credits and tokens are per user).", operation=operation
        )


class NamespaceRequired(AccessError):
    code = "namespace_required"

    def __init__(self) -> None:
        super().__init__(
            "No namespace given: pass 'namespace' in the request body or the X-Memory-Namespace header, "
            "or give the API key a default namespace."
        )


class NamespaceConflict(AccessError):
    """The body names one namespace and the X-Memory-Namespace header another: which one was meant
    is not guessed (a destructive call on the wrong one cannot be undone)."""

    code = "invalid_argument"

    def __init__(self, body: str, header: str) -> None:
        super().__init__(
            f"The body's namespace {body!r} and the X-Memory-Namespace header {header!r} differ: "
            "send one of them, or the same namespace in both.",
            field="namespace",
        )


class RateLimited(AccessError):
    code = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(f"Too many requests for this API key; retry in {seconds} s.", retry_after=seconds)
        self.retry_after = seconds


class InvalidGrant(AccessError):
    code = "invalid_argument"


class InvalidKeyRequest(AccessError):
    """A key or grant change that is not allowed (outside the user's allowances, bad expiry, ...)."""

    code = "invalid_argument"
