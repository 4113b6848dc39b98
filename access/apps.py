from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    label = "access"
    verbose_name = "Access: API keys and grants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kernel import backups

        # The kernel's backup check knows the keys and namespaces tables only through this.
        backups.register_tables(required=["access_apikey"], counted={"namespaces": "graph_namespace"})
