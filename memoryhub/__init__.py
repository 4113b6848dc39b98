# Celery's Django recipe: the app is loaded with Django, so `@shared_task` tasks bind to it and
# `.delay()` from a server process reaches the configured broker.
from memoryhub.celery import app as celery_app

__all__ = ("celery_app",)
