"""Server-side embedding of stored text: on write (the graph's observations_written signal), and
the backfill of whatever has no vector yet (`manage.py embed_missing`).

MEMORYHUB_EMBED_MODE says when a write's texts are embedded:

- `behind` (the default): the write only queues its observations (one `vectors_pending` row each,
  in its own transaction, one statement: vectors/pending.py), and the drainers (vectors/backlog.py) embed
  them in batches after the commit. Writes cost no model time; a vector search embeds its
  namespaces' pending texts first (`backlog.catch_up`), so read-your-writes holds.
- `inline`: callers that know the texts before they write (`embedded_ahead`, and the runner's
  write preparer `ahead_of_operation`) embed them before the transaction starts, and the receiver
  stores the vectors in the writing transaction: the write returns with its vectors stored.
  Embedding takes about a millisecond per text, and inside the transaction it would hold SQLite's
  one write lock that long, so a burst of concurrent writers queued past the busy timeout
  ("database is locked"); hence ahead, not inside.

In both modes, vectors someone already computed (`known_vectors`, e.g. the dedupe judge's) are
stored directly in the write's transaction instead of being embedded again.

Text longer than MAX_EMBED_CHARS is embedded by its start: the built-in model's cost grows with
length (64 KB takes about a second) while its vector is dominated by the opening sentences anyway;
keyword search still covers the whole text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.dispatch import receiver

from graph import observations
from graph.exceptions import InvalidArgument
from graph.signals import observations_written
from vectors import pending, store
from vectors.embedders import Embedder, default_embedder
from vectors.models import OwnerKind
from vectors.store import IndexKey

MAX_EMBED_CHARS = 2000


def embed_texts(texts: Sequence[str], *, embedder: Embedder | None = None) -> npt.NDArray[np.float32]:
    """Vectors for `texts` (N, dims), in batches of the embedder's batch size."""
    model = embedder or default_embedder()
    clipped = [text[:MAX_EMBED_CHARS] for text in texts]
    if not all(map(_is_unicode, clipped)):
        # A JSON string may hold a lone surrogate ("\ud800"), which no embedder can encode.
        raise InvalidArgument("the text is not valid Unicode (it contains a lone surrogate)")
    if not clipped:
        return np.empty((0, model.dims), dtype=np.float32)
    parts = [model.embed(clipped[i : i + model.batch_size]) for i in range(0, len(clipped), model.batch_size)]
    return np.concatenate(parts).astype(np.float32, copy=False)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Vectors embedded ahead of a write, by (model id, text): see `embedded_ahead`.
_ahead: ContextVar[dict[tuple[str, str], npt.NDArray[np.float32]] | None] = ContextVar("embedded_ahead", default=None)


def embeds_inline() -> bool:
    """Whether writes embed their texts in the request (MEMORYHUB_EMBED_MODE=inline)."""
    return bool(settings.MEMORYHUB_EMBED_ON_WRITE) and settings.MEMORYHUB_EMBED_MODE == "inline"


@contextlib.contextmanager
def known_vectors(vectors: Mapping[str, Any], *, model: str | None = None) -> Iterator[None]:
    """Vectors of texts the caller already has, by text, in `model`'s space (default: the server's
    embedder, the only space writes are embedded in): a write inside the block that stores one of
    these texts stores its vector directly, in the write's transaction, instead of embedding it
    again (inline) or queueing it (behind). For code that embedded the texts anyway, such as a
    dedupe judge comparing a new text with the stored ones."""
    model_id = model or default_embedder().model_id
    given = {(model_id, text): np.asarray(vector, dtype=np.float32) for text, vector in vectors.items()}
    token = _ahead.set({**(_ahead.get() or {}), **given})
    try:
        yield
    finally:
        _ahead.reset(token)


@contextlib.contextmanager
def embedded_ahead(texts: Iterable[str]) -> Iterator[None]:
    """In inline mode, embed `texts` now, before the caller opens its write transaction; writes
    inside the block store these vectors instead of embedding in the transaction. Texts not listed
    are embedded as usual. An embedding failure raises here, before anything is written. In behind
    mode (and with embedding on write off) this does nothing: the write queues its texts."""
    if not embeds_inline():
        yield
        return
    # Texts the write will refuse (a lone surrogate) are left for it to report, naming the field.
    wanted = list(dict.fromkeys(text for text in texts if isinstance(text, str) and text.strip() and _is_unicode(text)))
    if not wanted:
        yield
        return
    embedder = default_embedder()
    # Inside an enclosing block (one request writing the same texts to several namespaces), the
    # texts it embedded already are not embedded again.
    outer = _ahead.get() or {}
    wanted = [text for text in wanted if (embedder.model_id, text) not in outer]
    vectors = embed_texts(wanted, embedder=embedder)
    token = _ahead.set({**outer, **{(embedder.model_id, text): vectors[i] for i, text in enumerate(wanted)}})
    try:
        yield
    finally:
        _ahead.reset(token)


def texts_written_by(operation: str, arguments: dict[str, Any]) -> list[str]:
    """The observation texts a graph write operation is about to store (malformed arguments give
    none: the operation itself reports them)."""
    texts: list[str] = []
    if operation == "create_entities":
        for entity in arguments.get("entities") or []:
            if isinstance(entity, dict) and isinstance(entity.get("observations"), list):
                texts += [text for text in entity["observations"] if isinstance(text, str)]
    elif operation == "add_observations":
        for item in arguments.get("observations") or []:
            if isinstance(item, dict) and isinstance(item.get("contents"), list):
                texts += [text for text in item["contents"] if isinstance(text, str)]
    return texts


def ahead_of_operation(operation: str, arguments: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
    """graph.operations' write preparer: in inline mode, embed what the operation will store
    before it writes (in behind mode the write queues its texts instead)."""
    if not embeds_inline():
        return contextlib.nullcontext()
    texts = texts_written_by(operation, arguments)
    return embedded_ahead(texts) if texts else contextlib.nullcontext()


def embed_observations(namespace_id: int, observations: Sequence[tuple[int, str]]) -> int:
    """Embed and store vectors for [(observation id, body)] in the default model; return how many."""
    rows = [(owner, body) for owner, body in observations if body.strip()]
    if not rows:
        return 0
    embedder = default_embedder()
    ahead = _ahead.get() or {}
    missing = [body for _, body in rows if (embedder.model_id, body) not in ahead]
    fresh = embed_texts(missing, embedder=embedder) if missing else np.empty((0, 0), dtype=np.float32)
    vectors = {body: fresh[i] for i, body in enumerate(missing)}
    vectors.update((body, vector) for (model, body), vector in ahead.items() if model == embedder.model_id)
    key = IndexKey(namespace_id, OwnerKind.OBSERVATION, embedder.model_id)
    store.put(key, [(owner, vectors[body]) for owner, body in rows])
    return len(rows)


def _store_known(namespace_id: int, rows: Sequence[tuple[int, str]]) -> set[int]:
    """Store the vectors handed over with `known_vectors` (or embedded ahead) for these rows, in the
    caller's transaction; return the owners stored."""
    ahead = _ahead.get()
    if not ahead:
        return set()
    model_id = default_embedder().model_id
    known = [(owner, ahead[(model_id, body)]) for owner, body in rows if (model_id, body) in ahead]
    store.put(IndexKey(namespace_id, OwnerKind.OBSERVATION, model_id), known)
    return {owner for owner, _ in known}


@receiver(observations_written)
def _embed_on_write(*, namespace_id: int, observations: Sequence[tuple[int, str]], **kwargs: Any) -> None:
    """Inside the writing transaction: store the vectors (inline) or queue the texts (behind)."""
    if not settings.MEMORYHUB_EMBED_ON_WRITE:
        return
    if settings.MEMORYHUB_EMBED_MODE == "inline":
        embed_observations(namespace_id, observations)
        # A rewritten text was queued by its trigger (vectors/migrations/0005); it is done now.
        pending.forget(owner for owner, _ in observations)
        return

    rows = [(owner, body) for owner, body in observations if body.strip()]
    stored = _store_known(namespace_id, rows)
    pending.enqueue(namespace_id, [owner for owner, _ in rows if owner not in stored])


# Observations read per page when looking for those without a vector.
SCAN_PAGE = 2000


def _without_vectors(namespace_id: int | None, model_id: str, batch: int) -> Iterator[list[tuple[int, int]]]:
    """(observation id, namespace id) of the observations with no vector in `model_id`, in id
    order, `batch` at a time: the graph's observations are walked a page at a time and the pages
    checked against the stored vectors."""
    pending: list[tuple[int, int]] = []
    last_id = 0
    while True:
        page = observations.ids_after(last_id, limit=max(SCAN_PAGE, batch), namespace_id=namespace_id)
        if not page:
            break
        last_id = page[-1][0]
        embedded = store.owners_with_vectors(OwnerKind.OBSERVATION, model_id, [owner for owner, _ in page])
        pending += [(owner, ns_id) for owner, ns_id in page if owner not in embedded]
        while len(pending) >= batch:
            yield pending[:batch]
            pending = pending[batch:]
    if pending:
        yield pending


def embed_missing(
    *, namespace_id: int | None = None, batch: int = 256, progress: Callable[[int], object] | None = None
) -> int:
    """Embed every observation that has no vector in the default model; return how many.

    For text written while MEMORYHUB_EMBED_ON_WRITE was off, text edited in the admin (its vector
    is dropped by a trigger), and after switching embedders. Each batch commits on its own, so an
    interrupted run keeps what it did and a rerun continues."""
    from django.db import transaction

    model_id = default_embedder().model_id
    done = 0
    for missing in _without_vectors(namespace_id, model_id, batch):
        texts = observations.bodies([owner for owner, _ in missing])
        by_namespace: dict[int, list[tuple[int, str]]] = {}
        for owner, ns_id in missing:
            if owner in texts:  # deleted since the walk saw it
                by_namespace.setdefault(ns_id, []).append((owner, texts[owner]))
        with transaction.atomic():
            for ns_id, items in by_namespace.items():
                done += embed_observations(ns_id, items)
            # Queued ones are done too (the drainers would only embed them again).
            pending.forget(owner for owner, _ in missing)
        if progress:
            progress(len(missing))
    return done


def count_missing(*, namespace_id: int | None = None) -> int:
    """How many observations (of the namespace, when given) have no vector in the default model."""
    model_id = default_embedder().model_id
    return sum(len(missing) for missing in _without_vectors(namespace_id, model_id, SCAN_PAGE))
