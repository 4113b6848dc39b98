"""The embedding worker a server process starts (vectors/backlog.py, MEMORYHUB_EMBED_WORKER=process):
drains the backlog whenever a line arrives on stdin and every poll interval, until stdin closes."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Embed the texts waiting in the embedding backlog, woken by a line on stdin, until stdin closes "
        "(started by each server process; not meant to be run by hand: use embed_missing)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        from vectors import backlog

        # The embedding itself runs on threads at a lower priority (backlog._lower_priority); this
        # thread, which takes the database's write lock, keeps the server's.
        backlog.follow(sys.stdin.buffer)
