"""The vector indexes' families in the /metrics exposition (registered with the kernel's metrics
registry by VectorsConfig.ready)."""

from __future__ import annotations

from typing import Any

from kernel.metrics import PER_PROCESS, Exposition
from vectors.indexes import registry


def vector_indexes(out: Exposition) -> None:
    loaded = registry().stats()
    out.sample(
        out.family("vector_indexes_loaded", "gauge", f"Vector indexes loaded in memory. {PER_PROCESS}"), len(loaded)
    )
    name = out.family(
        "vector_index_vectors",
        "gauge",
        f"Vectors in each loaded index, by namespace id, owner kind, model and index kind. {PER_PROCESS}",
    )
    for entry in loaded:
        labels = (
            ("namespace_id", str(entry["namespace_id"])),
            ("owner", str(entry["owner"])),
            ("model", str(entry["model"])),
        )
        out.sample(name, int(entry.get("size", 0)), labels)


def embedding_backlog(out: Exposition) -> None:
    from vectors import backlog

    try:
        state = backlog.state()
    except Exception:  # a locked or missing table is a scrape without these families, not a failure
        return
    out.sample(
        out.family("embedding_backlog_texts", "gauge", "Texts committed and waiting to be embedded (all processes)."),
        state.size,
    )
    out.sample(
        out.family(
            "embedding_backlog_oldest_seconds", "gauge", "Age of the oldest text waiting to be embedded (0: none)."
        ),
        state.oldest_age_seconds,
    )
    out.sample(
        out.family("embedding_backlog_failing_texts", "gauge", "Waiting texts whose last embedding attempt failed."),
        state.failing,
    )
    embedded, failed = backlog.counts()
    out.sample(
        out.family("embedded_texts_total", "counter", f"Texts embedded from the backlog. {PER_PROCESS}"), embedded
    )
    out.sample(
        out.family(
            "embedding_failures_total",
            "counter",
            f"Texts of failed embedding attempts from the backlog (each is retried). {PER_PROCESS}",
        ),
        failed,
    )


def health_of_backlog() -> dict[str, Any]:
    """The /healthz report of the embedding backlog: its size, the age of its oldest text, and the
    texts whose last attempt failed. Always `ok`: a backlog, even a failing embedder, is not an
    outage (writes and keyword search work, and taking every server out of a load balancer would
    make it one); alert on memoryhub_embedding_backlog_oldest_seconds instead. The embedder's error
    is shown in the admin, not here (/healthz is public and the error names the provider)."""
    from vectors import backlog

    state = backlog.state()
    return {"ok": True, "pending": state.size, "oldest_seconds": state.oldest_age_seconds, "failing": state.failing}
