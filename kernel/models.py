"""Project-wide bookkeeping tables (the apps keep their own data in their own models).

kernel/ is a plain package, not a Django app: its models keep the app label "memoryhub" (the
project app registers them from memoryhub/models.py), so their migrations stay in
memoryhub/migrations and their tables keep their names (memoryhub_maintenancejob)."""

from __future__ import annotations

from django.db import models


class MaintenanceJob(models.Model):
    """One row per maintenance job (kernel/maintenance.py): who runs it now, and its last run.

    The lease is what keeps two processes (server processes with the embedded timer, Celery
    workers, `manage.py maintenance`) from running one job at once: a process takes it in a
    BEGIN IMMEDIATE transaction, so the check and the take are one step, and a lease whose
    holder died simply expires."""

    class Status(models.TextChoices):
        OK = "ok", "ok"
        FAILED = "failed", "failed"

    name = models.CharField(max_length=64, primary_key=True)
    # host:pid:random of the process running the job now ("" when nobody is).
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=8, choices=Status.choices, blank=True, default="")
    # The job's small JSON summary (what it did), or "" and `last_error` when it failed.
    last_result = models.JSONField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # "timer host:pid", "celery worker@host", "command host:pid".
    last_runner = models.CharField(max_length=160, blank=True, default="")
    runs = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = "memoryhub"

    def __str__(self) -> str:
        return self.name
