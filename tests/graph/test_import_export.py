"""import_memory / export_memory and the export formats."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from graph import selectors, services

DATA = Path(__file__).parent / "data"
OFFICIAL = DATA / "official-memory.jsonl"


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    extra = ["--no-progress"] if command == "import_memory" else []
    call_command(command, *args, *extra, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_an_official_jsonl_file_round_trips_byte_for_byte(alice, tmp_path):
    run("import_memory", str(OFFICIAL), "--namespace", alice)
    exported = tmp_path / "out.jsonl"
    run("export_memory", "--namespace", alice, "--format", "jsonl", "--output", str(exported))
    assert exported.read_bytes() == OFFICIAL.read_bytes()
    # And to stdout, the same bytes (no trailing newline, like the official server writes).
    assert run("export_memory", "--namespace", alice).encode() == OFFICIAL.read_bytes()


def test_import_is_idempotent(alice):
    first = run("import_memory", str(OFFICIAL), "--namespace", alice)
    assert "4 entities created, 7 observations added, 3 relations created" in first
    second = run("import_memory", str(OFFICIAL), "--namespace", alice)
    assert "0 entities created, 0 observations added, 0 relations created, 3 relations already present" in second
    assert selectors.graph_stats(namespace=alice)["observations"] == 7


def test_legacy_memory_json_and_graph_documents_import(alice, bob, tmp_path):
    legacy = tmp_path / "memory.json"
    legacy.write_text(OFFICIAL.read_text(encoding="utf-8"), encoding="utf-8")
    run("import_memory", str(legacy), "--namespace", alice)
    document = tmp_path / "graph.json"
    document.write_text(json.dumps(selectors.read_graph(namespace=alice)), encoding="utf-8")
    run("import_memory", str(document), "--namespace", bob)
    assert selectors.read_graph(namespace=bob)["entities"] == selectors.read_graph(namespace=alice)["entities"]


def test_dangling_relations_are_reported_not_stored(alice, tmp_path):
    source = tmp_path / "dangling.jsonl"
    source.write_text(
        '{"type":"entity","name":"A","entityType":"t","observations":[]}\n'
        '{"type":"relation","from":"A","to":"Ghost","relationType":"r"}',
        encoding="utf-8",
    )
    err = io.StringIO()
    call_command("import_memory", str(source), "--namespace", alice, "--no-progress", stdout=io.StringIO(), stderr=err)
    assert "skipped relation A -[r]-> Ghost: entity 'Ghost' does not exist" in err.getvalue()
    assert selectors.graph_stats(namespace=alice)["relations"] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type":"entity","name":"A","entityType":"t"}\nnot json', "line 2: not valid JSON"),
        ('{"type":"widget"}', "line 1: 'type' must be 'entity', 'relation' or 'memory'"),
        ('{"type":"entity","name":5,"entityType":"t"}', "line 1: an entity needs string 'name'"),
        ('{"type":"entity","name":"A","entityType":"t","observations":[""]}', "must not be empty"),
    ],
)
def test_a_bad_file_is_an_error_and_imports_nothing(alice, tmp_path, content, message):
    source = tmp_path / "bad.jsonl"
    source.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=message):
        run("import_memory", str(source), "--namespace", alice)
    assert selectors.graph_stats(namespace=alice)["entities"] == 0


def test_a_missing_file_is_a_clear_error(alice, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run("import_memory", str(tmp_path / "nope.jsonl"), "--namespace", alice)


def test_entities_with_more_observations_than_one_request_allows_import_whole(alice, tmp_path):
    source = tmp_path / "big.jsonl"
    observations = [f"fact {i}" for i in range(2500)]
    source.write_text(json.dumps({"type": "entity", "name": "Big", "entityType": "t", "observations": observations}))
    run("import_memory", str(source), "--namespace", alice)
    assert selectors.get_entity(namespace=alice, name="Big")["observations"] == observations


def test_export_formats(alice):
    services.create_entities(
        namespace=alice,
        entities=[
            {"name": 'Quote "Q"', "entityType": "t", "observations": ["x"]},
            {"name": "Back\\slash", "entityType": "t", "observations": []},
        ],
    )
    services.create_relations(
        namespace=alice, relations=[{"from": 'Quote "Q"', "to": "Back\\slash", "relationType": "r"}]
    )
    as_json = json.loads(selectors.export_graph(namespace=alice, format="json")["content"])
    assert as_json == {
        "entities": [
            {"name": 'Quote "Q"', "entityType": "t", "observations": ["x"]},
            {"name": "Back\\slash", "entityType": "t", "observations": []},
        ],
        "relations": [{"from": 'Quote "Q"', "to": "Back\\slash", "relationType": "r"}],
    }
    mermaid = selectors.export_graph(namespace=alice, format="mermaid")["content"]
    assert mermaid.startswith("graph LR\n")
    assert "Quote #quot;Q#quot;<br/>(t)" in mermaid
    assert '-->|"r"|' in mermaid
    dot = selectors.export_graph(namespace=alice, format="dot")["content"]
    assert dot.startswith("digraph memory {")
    assert '"Quote \\"Q\\"" -> "Back\\\\slash" [label="r"];' in dot
    assert selectors.export_graph(namespace="org:empty", format="json")["content"] == '{"entities":[],"relations":[]}'
    with pytest.raises(Exception, match="format must be one of"):
        selectors.export_graph(namespace=alice, format="xml")
