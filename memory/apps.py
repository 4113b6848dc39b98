from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"
    label = "memory"
    verbose_name = "Free-text memories"

    def ready(self) -> None:
        # Declares the memory operations with the runner (access.operations).
        from memory import operations  # noqa: F401
