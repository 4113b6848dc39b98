from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agent marketplace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Declares the marketplace operations with the runner (access.operations).
        from agents import operations  # noqa: F401
