"""The Celery app: `celery -A memoryhub worker` and `celery -A memoryhub beat` (make run-workers).

Configured from Django settings (the CELERY_* names: broker, result backend, queue); tasks are
found in each app's tasks.py; the beat schedule is the job list of kernel/maintenance.py, the
one place every periodic job is declared. Without CELERY_BROKER_URL nothing here connects
anywhere: the server processes run the same jobs on a timer instead.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryhub.settings")

app = Celery("memoryhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _install_beat_schedule(sender: Celery, source: Any, **kwargs: Any) -> None:
    # Read when the configuration is first used (settings are loaded by then), not at import.
    from kernel.maintenance import beat_schedule

    source.beat_schedule = beat_schedule()
