from django.apps import AppConfig


class McpEndpointConfig(AppConfig):
    name = "mcp_endpoint"
    label = "mcp_endpoint"
    verbose_name = "MCP endpoint"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Tool modules register themselves on import; signal receivers connect here.
        from mcp_endpoint import notifications, tools  # noqa: F401
