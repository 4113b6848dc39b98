"""The embedder interface every model implements (vectors/embedders.py: the built-in and
OpenAI-compatible ones and the choice among them; vectors/minilm.py: MiniLM).

Its own module so that vectors/minilm.py, which embedders.py imports when MiniLM is chosen, does
not import embedders.py back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

DEFAULT_BATCH_SIZE = 64


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, as float32. Every row must be non-zero and finite."""
    matrix = np.asarray(matrix, dtype=np.float64)
    # Scale by the largest magnitude first so squaring cannot overflow (values near 1e200 are
    # finite but their squares are not).
    scale = np.abs(matrix).max(axis=1, keepdims=True)
    matrix = matrix / scale
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix.astype(np.float32)


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of one vector space.

    Contract of `embed`: a sequence of strings in, an array of shape (len(texts), dims) out, row i
    embedding texts[i]; empty input gives shape (0, dims). Texts are sent to the model in batches
    of at most `batch_size`. Safe to call from several threads at once.
    """

    #: Names the vector space; vectors of different ids are never compared.
    model_id: str
    batch_size: int
    #: Whether the model understands text beyond English (CJK above all). Hybrid search leads with
    #: keyword evidence for a CJK query when it does not: its vectors would only be noise there.
    multilingual: bool = True

    @property
    @abstractmethod
    def dims(self) -> int:
        """Length of every vector this embedder returns."""

    @abstractmethod
    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed 1..batch_size texts: float32 (len(texts), dims), unit rows."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            # A bare string is a Sequence[str] too; embedding it letter by letter is never meant.
            raise TypeError("embed() takes a sequence of strings, not a single string")
        items = list(texts)
        for position, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"embed() texts[{position}] is {type(text).__name__}, not str")
        if not items:
            return np.zeros((0, self.dims), dtype=np.float32)
        parts = [
            self._embed_batch(items[start : start + self.batch_size]) for start in range(0, len(items), self.batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id}>"
