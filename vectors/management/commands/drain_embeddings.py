"""The embedding worker a server process starts (vectors/backlog.py, MEMORYHUB_EMBED_WORKER=process):
drains the backlog whenever a line arrives on stdin and every poll interval, until stdin closes."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand

# Added to the worker's niceness (19 is the lowest priority).
NICENESS = 10


class Command(BaseCommand):
    help = (
        "Embed the texts waiting in the embedding backlog, woken by a line on stdin, until stdin closes "
        "(started by each server process; not meant to be run by hand: use embed_missing)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        from vectors import backlog

        # Background work: when the cores are busy, the server's requests go first (on an idle
        # core this changes nothing).
        os.nice(NICENESS)
        backlog.follow(sys.stdin.buffer)
