"""Each table is read and written only by the app that owns it (DESIGN.md "Layout": writes go
through the owner's services, reads through its selectors). An app that needs another app's rows
calls that app's functions; SQL naming another app's table couples the two through a schema only
one of them may change.

Tables are mapped to their owners from the models (`db_table`, owned by the package that defines
the model: `graph_namespace` is the access app's `Namespace`) and from the tables apps' migrations
create with raw SQL (the FTS5 indexes and their vocabularies). Every string in an app's source
(migrations aside, docstrings aside) that names another app's table is a finding.
"""

from __future__ import annotations

import ast
import configparser
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import migrations
from django.db.migrations.loader import MigrationLoader

ROOT = Path(__file__).resolve().parents[2]
_CREATED = re.compile(r"\bCREATE\s+(?:VIRTUAL\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.I)


def project_apps() -> list[str]:
    """The project's top-level packages: the layers of .importlinter."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config["importlinter"]["root_packages"].split()


def _flattened(operations: list[Any]) -> Iterator[Any]:
    """Operations, with those wrapped for one backend (kernel.migration_tools.OnVendor) or for the
    database alone (SeparateDatabaseAndState) taken out of their wrappers."""
    for operation in operations:
        yield operation
        yield from _flattened(getattr(operation, "operations", None) or [])
        yield from _flattened(getattr(operation, "database_operations", None) or [])


def table_owners() -> dict[str, str]:
    """{table: the package that owns it}; tables of Django's own apps are owned by "django"."""
    ours = set(project_apps())
    owners: dict[str, str] = {}
    for model in apps.get_models(include_auto_created=True):
        package = model.__module__.split(".")[0]
        owners[model._meta.db_table] = package if package in ours else "django"
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for (_, _), migration in loader.disk_migrations.items():
        package = type(migration).__module__.split(".")[0]
        if package not in ours:
            continue
        for operation in _flattened(migration.operations):
            if isinstance(operation, migrations.RunSQL):
                statements = operation.sql if isinstance(operation.sql, list | tuple) else [operation.sql]
                for statement in statements:
                    for table in _CREATED.findall(str(statement)):
                        owners.setdefault(table, package)
    return owners


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    table: str
    owner: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} names {self.table} (owned by {self.owner})"


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of every string of the module but docstrings; an f-string is one string (its
    placeholders blanked)."""
    skipped = _docstrings(tree)
    inside_fstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                inside_fstrings.add(id(value))
                parts.append(value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else " ")
            yield node.lineno, "".join(parts)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skipped
            and id(node) not in inside_fstrings
        ):
            yield node.lineno, node.value


def _pattern(owners: dict[str, str]) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(sorted(map(re.escape, owners), key=len, reverse=True)) + r")\b")


def findings_in(app: str, source: str, path: str, owners: dict[str, str]) -> list[Finding]:
    """The strings of one module of `app` naming a table another app owns (one finding each)."""
    pattern = _pattern(owners)
    findings = []
    for line, text in _strings(ast.parse(source, filename=path)):
        foreign = sorted({table for table in pattern.findall(text) if owners[table] != app})
        if foreign:
            findings.append(Finding(path, line, foreign[0], owners[foreign[0]]))
    return findings


def foreign_tables() -> list[Finding]:
    """Every string (statement) in an app's non-migration source naming another app's table."""
    owners = table_owners()
    findings: list[Finding] = []
    for app in project_apps():
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" not in relative.parts:
                findings += findings_in(app, path.read_text(encoding="utf-8"), str(relative), owners)
    return findings


def test_tables_are_mapped_to_their_owners() -> None:
    owners = table_owners()
    assert owners["graph_observation"] == "graph"
    assert owners["graph_namespace"] == "access"  # access.models.Namespace, table name kept
    assert owners["obs_fts"] == owners["name_fts_terms"] == "graph"
    assert owners["vectors_embedding"] == "vectors"


def test_a_string_naming_another_apps_table_is_found() -> None:
    owners = table_owners()
    source = '''"""Docstrings may name graph_observation."""
def count(ns_id):
    """So may this one: graph_entity."""
    own = "SELECT count(*) FROM vectors_embedding WHERE namespace_id = ?"
    return db().execute(f"SELECT count(*) FROM graph_observation o WHERE o.namespace_id = {ns_id}")
'''
    found = findings_in("vectors", source, "vectors/example.py", owners)
    assert [(finding.line, finding.table, finding.owner) for finding in found] == [(5, "graph_observation", "graph")]
    assert findings_in("graph", source, "graph/example.py", owners) == [
        Finding("graph/example.py", 4, "vectors_embedding", "vectors")
    ]


def test_no_app_runs_sql_against_another_apps_tables() -> None:
    findings = foreign_tables()
    assert not findings, "SQL against another app's tables:\n" + "\n".join(map(str, findings))
