from django.apps import AppConfig


class VectorsConfig(AppConfig):
    name = "vectors"
    verbose_name = "Vectors"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Signal receivers: embedding on write, and index resets when settings change in tests.
        from access.operations import prepare_writes_with
        from kernel import backups
        from kernel.health import add_check
        from kernel.metrics import add_scrape_collector
        from kernel.startup import on_server_start
        from vectors import backlog, embedding, indexes, operations, pending, tasks  # noqa: F401  (declares the vector operations)
        from vectors.metrics import embedding_backlog, health_of_backlog, vector_indexes

        prepare_writes_with(embedding.ahead_of_operation)
        # The kernel's metrics, health, process start and backup check know the vectors only
        # through these.
        add_scrape_collector(vector_indexes)
        add_scrape_collector(embedding_backlog)
        add_check("embedding_backlog", health_of_backlog)
        backups.register_tables(counted={"embeddings": "vectors_embedding"})
        on_server_start(indexes.warm_up_in_background)
        # Every server process drains the embedding backlog (vectors/backlog.py).
        on_server_start(backlog.start_in_background)
        # A commit that queued texts wakes this process's drainer and, with a broker, a worker.
        pending.after_queued(backlog.wake)
        pending.after_queued(tasks.queue_drain)
        limit_blas_threads()


def limit_blas_threads() -> None:
    """One BLAS thread per call, process-wide. A server gets its parallelism from concurrent
    requests; multi-threaded OpenBLAS calls (embedding, exact search, k-means) spin-wait for each
    other whenever another thread or process holds a core, which made an embedding many times
    slower on a 2-core machine under load (bench/RESULTS.md, "Design measurements")."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
