from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"
    label = "memory"
    verbose_name = "Free-text memories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Declares the memory operations with the runner (access.operations).
        # The graph asks this judge whether an entity's new observation repeats one in other words.
        from graph.dedupe import register_judge
        from kernel.health import add_check
        from kernel.metrics import add_scrape_collector
        from kernel.startup import on_server_start
        from memory import extraction, operations, tasks  # noqa: F401
        from memory.dedupe import judge

        register_judge(judge)
        # Extraction (memory/extraction.py): the queue in /healthz and /metrics, a worker thread per
        # server process, woken (and a Celery drain queued) by every commit that queued jobs.
        add_check("extraction_backlog", extraction.health)
        add_scrape_collector(extraction.scrape)
        on_server_start(extraction.start_in_background)
        extraction.after_queued(extraction.wake)
        extraction.after_queued(tasks.queue_drain)
