from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agent marketplace"
    default_auto_field = "django.db.models.BigAutoField"
