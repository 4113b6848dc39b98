"""Embed every observation that has no vector in the configured model (with a progress bar)."""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from access import namespaces
from kernel.errors import DomainError
from vectors.embedders import default_embedder
from vectors.embedding import count_missing, embed_missing


class Command(BaseCommand):
    help = (
        "Embed the observations and memories that have no vector in the configured embedding model: "
        "text written with MEMORYHUB_EMBED_ON_WRITE off, text edited in the admin, or everything after "
        "switching MEMORYHUB_EMBEDDER. Safe to interrupt and rerun."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--namespace", help="only this namespace")
        parser.add_argument("--batch", type=int, default=256, help="texts per transaction (default 256)")
        parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")

    def handle(self, *args: Any, namespace: str | None, batch: int, no_progress: bool, **options: Any) -> None:
        try:
            ns_id = None
            if namespace is not None:
                ns_id = namespaces.lookup(namespace)
                if ns_id is None:
                    raise CommandError(f"namespace {namespace!r} does not exist")
            total = count_missing(namespace_id=ns_id)
            with tqdm(total=total, unit="text", disable=no_progress, file=cast(TextIO, self.stderr._out)) as bar:
                done = embed_missing(namespace_id=ns_id, batch=max(batch, 1), progress=bar.update)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Embedded {done} texts with {default_embedder().model_id}.")
