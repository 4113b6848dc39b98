"""Import and export in the browser (console/transfer.py), against a real daphne server.

Alice uploads an official memory.jsonl of a few thousand lines with one relation to an entity the
file does not define: the upload's progress bar, then the import's, appear and reach the end; the
report lists the skipped relation; the official JSONL and the full dump download.
"""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.console_harness import (
    DESKTOP,
    PHONE,
    assert_accessible,
    assert_not_pwned,
    no_horizontal_scroll,
    screenshot,
    signed_in,
)
from tests.mcp_endpoint.conftest import McpServer

ENTITIES = 3000


def official_file(path: Path) -> Path:
    lines = [
        json.dumps({"type": "entity", "name": f"person {i}", "entityType": "person", "observations": [f"fact {i}"]})
        for i in range(ENTITIES)
    ]
    lines += [
        json.dumps({"type": "relation", "from": f"person {i}", "to": f"person {i + 1}", "relationType": "knows"})
        for i in range(ENTITIES - 1)
    ]
    lines.append(json.dumps({"type": "relation", "from": "person 0", "to": "<b>Nobody</b>", "relationType": "knows"}))
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_an_upload_imports_with_progress_and_downloads(console: McpServer, tmp_path: Path) -> None:
    namespace = console.namespace("alice")
    memory_file = official_file(tmp_path / "memory.jsonl")
    with signed_in(console, "alice", width=DESKTOP) as page:
        page.goto(f"{console.base_url}/console/transfer/")
        assert_accessible(page)
        page.locator("#import-new-namespace").fill(namespace)  # labelled "Namespace" or "Or a new namespace"
        page.get_by_label("File", exact=True).set_input_files(memory_file)
        page.get_by_role("button", name="Upload and import").click()

        # The upload's progress shows (bytes sent), then the job page follows the import.
        expect(page.locator("#upload-progress")).to_be_visible()
        page.wait_for_url("**/console/transfer/imports/*")
        expect(page.get_by_label("Records imported")).to_be_visible()
        expect(page.locator("#import-status")).to_contain_text("Done", timeout=60_000)
        bar = page.get_by_label("Records imported")
        total = ENTITIES * 2
        expect(bar).to_have_attribute("max", str(total))
        expect(bar).to_have_attribute("value", str(total))
        expect(page.locator(".skipped-list")).to_contain_text("<b>Nobody</b>")
        expect(page.locator(".job-counts")).to_contain_text(f"{ENTITIES}")
        assert_not_pwned(page)
        assert_accessible(page)
        screenshot(page, "console-transfer-job-1280")

        page.goto(f"{console.base_url}/console/transfer/")
        row = page.locator(".export-list li", has_text=namespace)
        with page.expect_download() as official:
            row.get_by_role("link", name="JSONL (official memory server)").click()
        download = official.value
        assert download.suggested_filename == namespace.replace(":", "_") + ".jsonl"
        lines = Path(download.path()).read_text(encoding="utf-8").split("\n")
        assert len(lines) == ENTITIES + ENTITIES - 1
        with page.expect_download() as dump:
            row.get_by_role("link", name="Full dump (with memories)").click()
        assert dump.value.suggested_filename.endswith(".full.jsonl")
        assert '"type":"entity"' in Path(dump.value.path()).read_text(encoding="utf-8")
        screenshot(page, "console-transfer-1280")

    with signed_in(console, "alice", width=PHONE) as page:
        page.goto(f"{console.base_url}/console/transfer/")
        no_horizontal_scroll(page)
        assert_accessible(page)
        screenshot(page, "console-transfer-390")
        page.locator(".transfer-jobs a").first.click()
        no_horizontal_scroll(page)
        screenshot(page, "console-transfer-job-390")
