"""Errors of the vectors app (embedders, indexes, vector search).

Messages are written for whoever made the call (often a model): they say what was expected and
what arrived. Edges map `InvalidVector` to 400, `EmbeddingUnavailable` to 502 and
`EmbeddingTimeout` to 504.
"""

from __future__ import annotations

from kernel.errors import DomainError


class VectorError(DomainError):
    code = "vector_error"


class InvalidVector(VectorError):
    """A client-supplied vector is unusable: not a list of numbers, empty, too long, the wrong
    number of dimensions, or holding a non-finite value."""

    code = "invalid_argument"


class EmbeddingUnavailable(VectorError):
    """The embedding provider failed (refused, errored, or answered something unusable), after
    the retries it deserved. The message names the provider's URL, never its key."""

    code = "embedding_unavailable"


class EmbeddingTimeout(EmbeddingUnavailable):
    """The embedding provider did not answer within the configured timeout.

    A subclass of `EmbeddingUnavailable` so callers that only care "no embedding" catch both.
    """

    code = "embedding_timeout"


class EmbeddingNotFound(VectorError):
    """No vector is stored for the owner asked about (in the model asked about)."""

    code = "not_found"
