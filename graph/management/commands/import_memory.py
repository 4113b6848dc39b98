"""Import an official MCP memory server file (memory.jsonl or the legacy memory.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from graph import services
from graph.exceptions import GraphError, InvalidArgument
from graph.importers import parse_file


class Command(BaseCommand):
    help = (
        "Import a knowledge graph from the official memory server's JSONL file (or its legacy "
        "memory.json, or a {entities, relations} JSON document) into a namespace. Re-running the "
        "same import changes nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--namespace", required=True, help="target namespace, e.g. org:team:project")
        parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")

    def handle(self, *args: Any, file: Path, namespace: str, no_progress: bool, **options: Any) -> None:
        try:
            graph = parse_file(file)
            total = len(graph.entities) + len(graph.relations) + len(graph.memories)
            with tqdm(total=total, unit="record", disable=no_progress, file=cast(TextIO, self.stderr._out)) as bar:
                result = services.import_graph(
                    namespace=namespace,
                    entities=graph.entities,
                    relations=graph.relations,
                    memories=graph.memories,
                    progress=bar.update,
                )
        except (GraphError, InvalidArgument) as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Imported {file} into {namespace}: {result['entitiesCreated']} entities created, "
            f"{result['observationsAdded']} observations added, {result['relationsCreated']} relations created, "
            f"{result['relationsUnchanged']} relations already present, {result['memoriesAdded']} memories added."
        )
        for skipped in result["skipped"]:
            relation = skipped["relation"]
            self.stderr.write(
                f"skipped relation {relation['from']} -[{relation['relationType']}]-> {relation['to']}: "
                f"{skipped['reason']}"
            )
