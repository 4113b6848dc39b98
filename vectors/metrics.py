"""The vector indexes' families in the /metrics exposition (registered with the kernel's metrics
registry by VectorsConfig.ready)."""

from __future__ import annotations

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
