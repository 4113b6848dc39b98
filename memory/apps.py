from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"
    label = "memory"
    verbose_name = "Free-text memories"

    def ready(self) -> None:
        # Declares the memory operations with the runner (access.operations).
        # The graph asks this judge whether an entity's new observation repeats one in other words.
        from graph.dedupe import register_judge
        from memory import operations  # noqa: F401
        from memory.dedupe import judge

        register_judge(judge)
