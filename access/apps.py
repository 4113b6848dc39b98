from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    label = "access"
    verbose_name = "Access: API keys and grants"
    default_auto_field = "django.db.models.BigAutoField"
