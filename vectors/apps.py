from django.apps import AppConfig


class VectorsConfig(AppConfig):
    name = "vectors"
    verbose_name = "Vectors"
    default_auto_field = "django.db.models.BigAutoField"
