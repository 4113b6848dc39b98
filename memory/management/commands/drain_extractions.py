"""Extract the facts of the messages waiting in the extraction queue, now (memory/extraction.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from memory import extraction, llm


class Command(BaseCommand):
    help = (
        "Work on the messages waiting for extraction (written with infer: true) until none is due, then "
        "print the queue. The server processes do this in the background; this is for operators, cron "
        "and deployments that set MEMORYHUB_EXTRACTION_WORKER=off."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--now", action="store_true", help="also take jobs waiting out a backoff")
        parser.add_argument(
            "--retry-failed", action="store_true", help="first give the jobs kept as failed their attempts back"
        )
        parser.add_argument("--limit", type=int, default=None, help="work on at most this many jobs")

    def handle(self, *args: Any, now: bool, retry_failed: bool, limit: int | None, **options: Any) -> None:
        if not llm.enabled():
            raise CommandError("no model is configured: set MEMORYHUB_LLM_URL and MEMORYHUB_LLM_MODEL")
        if retry_failed:
            extraction.retry(failed=True)
        done = extraction.drain(ignore_backoff=now, limit=limit)
        queue = extraction.state()
        self.stdout.write(
            f"Worked on {done} messages; {queue.pending} waiting ({queue.failing} after a failed attempt), "
            f"{queue.failed} failed."
        )
        if queue.last_error:
            self.stdout.write(f"Last error: {queue.last_error}")
