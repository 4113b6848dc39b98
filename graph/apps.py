from django.apps import AppConfig


class GraphConfig(AppConfig):
    name = "graph"
    verbose_name = "Knowledge graph"

    def ready(self) -> None:
        # Declares the graph operations with the runner (access.operations).
        from graph import operations  # noqa: F401
