from django.apps import AppConfig


class VectorsConfig(AppConfig):
    name = "vectors"
    verbose_name = "Vectors"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Signal receivers: embedding on write, and index resets when settings change in tests.
        from vectors import embedding, indexes  # noqa: F401
