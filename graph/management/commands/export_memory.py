"""Export a namespace's knowledge graph as JSONL (official format), JSON, Mermaid or DOT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access import namespaces
from graph.exceptions import GraphError, InvalidArgument
from graph.exporters import FORMATS, export_chunks


class Command(BaseCommand):
    help = "Export a namespace's knowledge graph to stdout or --output FILE."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--namespace", required=True)
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument("--output", type=Path, help="write here instead of stdout")

    def handle(self, *args: Any, namespace: str, format: str, output: Path | None, **options: Any) -> None:
        try:
            chunks = export_chunks(namespaces.lookup(namespace), format)
            if output is None:
                for chunk in chunks:
                    self.stdout.write(chunk, ending="")
                return
            # Write beside the target and rename, so a failed export never leaves half a file.
            partial = output.with_name(output.name + ".partial")
            with partial.open("w", encoding="utf-8") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            partial.replace(output)
        except (GraphError, InvalidArgument) as exc:
            raise CommandError(exc.message) from exc
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror}") from exc
