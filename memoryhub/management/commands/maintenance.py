"""List the maintenance jobs, or run some now (kernel/maintenance.py declares them)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from kernel import maintenance
from kernel.maintenance import JOBS, JOBS_BY_NAME, Job


class Command(BaseCommand):
    help = (
        "List the background maintenance jobs with their schedule and last run (--list, the default), "
        "or run jobs now in this process (--job NAME, repeatable, or --all). A job another process is "
        "running is skipped. --enqueue sends them to the Celery workers instead (CELERY_BROKER_URL)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--list", action="store_true", help="list the jobs (the default)")
        parser.add_argument(
            "--job", action="append", default=[], choices=list(JOBS_BY_NAME), metavar="NAME", help="run this job"
        )
        parser.add_argument("--all", action="store_true", help="run every job")
        parser.add_argument(
            "--namespace", help="only this namespace (ivf_retrain, hnsw_compact, reembed; others ignore it)"
        )
        parser.add_argument("--enqueue", action="store_true", help="send the jobs to the Celery workers")
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = list(JOBS) if options["all"] else [JOBS_BY_NAME[name] for name in dict.fromkeys(options["job"])]
        if not jobs:
            self._list(as_json=options["json"])
            return
        if options["enqueue"]:
            self._enqueue(jobs, options["namespace"])
            return
        failed = []
        for job in jobs:
            namespace = options["namespace"] if job.takes_namespace else None
            outcome = maintenance.run_job(job, runner=f"command {_where()}", namespace=namespace)
            if options["json"]:
                self.stdout.write(
                    json.dumps(
                        {
                            "job": job.name,
                            "status": outcome.status,
                            "ms": outcome.duration_ms,
                            "result": outcome.result,
                            "error": outcome.error or None,
                        },
                        ensure_ascii=False,
                        default=str,
                    )
                )
            elif outcome.status == "skipped":
                self.stdout.write(f"{job.name}: skipped, running in another process")
            elif outcome.status == "failed":
                self.stdout.write(f"{job.name}: FAILED after {outcome.duration_ms} ms: {outcome.error}")
            else:
                result = json.dumps(outcome.result, ensure_ascii=False, default=str)
                self.stdout.write(f"{job.name}: ok in {outcome.duration_ms} ms: {result}")
            if outcome.status == "failed":
                failed.append(job.name)
        if failed:
            raise CommandError(f"failed: {', '.join(failed)} (the log above has the traceback)")

    def _enqueue(self, jobs: list[Job], namespace: str | None) -> None:
        if not settings.CELERY_BROKER_URL:
            raise CommandError("--enqueue needs CELERY_BROKER_URL (without it, run the jobs here: drop --enqueue)")
        from django.utils.module_loading import import_string

        for job in jobs:
            kwargs = {"namespace": namespace} if job.takes_namespace and namespace is not None else {}
            result = import_string(job.task).apply_async(kwargs=kwargs)
            self.stdout.write(f"{job.name}: sent as task {result.id}")

    def _list(self, *, as_json: bool) -> None:
        from kernel.models import MaintenanceJob

        rows = {row.name: row for row in MaintenanceJob.objects.all()}
        now = timezone.now()
        listing: list[dict[str, Any]] = []
        for job in JOBS:
            row = rows.get(job.name)
            running = bool(row and row.lease_owner and row.lease_until and row.lease_until > now)
            listing.append(
                {
                    "job": job.name,
                    "task": job.task,
                    "interval": job.interval,
                    "setting": job.interval_setting,
                    "summary": job.summary,
                    "running": running,
                    "lastStarted": row.last_started_at.isoformat() if row and row.last_started_at else None,
                    "lastStatus": (row.last_status or None) if row else None,
                    "lastMs": row.last_duration_ms if row else None,
                    "lastRunner": (row.last_runner or None) if row else None,
                    "lastResult": row.last_result if row else None,
                    "lastError": (row.last_error or None) if row else None,
                    "runs": row.runs if row else 0,
                    "failures": row.failures if row else 0,
                }
            )
        if as_json:
            self.stdout.write(json.dumps(listing, ensure_ascii=False, indent=2, default=str))
            return
        mode = (
            "Celery workers (CELERY_BROKER_URL is set)"
            if settings.CELERY_BROKER_URL
            else "a timer in each server process"
            if settings.MEMORYHUB_MAINTENANCE
            else "nothing (MEMORYHUB_MAINTENANCE is off and there is no CELERY_BROKER_URL)"
        )
        self.stdout.write(f"Scheduled jobs are run by {mode}.\n")
        for item in listing:
            every = f"every {_duration(item['interval'])}" if item["interval"] > 0 else "not scheduled"
            self.stdout.write(f"{item['job']:<16} {every:<16} {item['setting']}")
            self.stdout.write(f"{'':<16} {item['summary']}")
            if item["running"]:
                self.stdout.write(f"{'':<16} running now")
            if item["lastStarted"]:
                outcome = item["lastStatus"] or "running"
                detail = item["lastError"] if item["lastError"] else json.dumps(item["lastResult"], default=str)
                self.stdout.write(
                    f"{'':<16} last: {item['lastStarted']} {outcome} in {item['lastMs']} ms by {item['lastRunner']}; "
                    f"{item['runs']} runs, {item['failures']} failed"
                )
                self.stdout.write(f"{'':<16} {detail[:200]}")
            else:
                self.stdout.write(f"{'':<16} never ran")


def _duration(seconds: float) -> str:
    value = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{seconds:g} s"


def _where() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
