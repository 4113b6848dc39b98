"""The browser code committed in static/vendor/ is exactly the package package-lock.json pins.

`make vendor-static` copies it from node_modules (installed by `npm ci` from the lockfile); a
copy edited by hand, or a lockfile bumped without re-vendoring, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()
VENDORED = re.search(r"^VENDORED := (.+)$", MAKEFILE, re.MULTILINE)


def vendored_files() -> list[str]:
    assert VENDORED, "the Makefile lists what it vendors in VENDORED"
    return VENDORED.group(1).split()


@pytest.mark.parametrize("file", vendored_files())
def test_the_committed_copy_is_the_locked_package(file: str) -> None:
    source = ROOT / "node_modules" / file
    package = file.split("/", 1)[0]
    copy = ROOT / "static" / "vendor" / package / Path(file).name
    assert source.exists(), f"{source} is missing: run `make node_modules/.installed`"
    assert copy.read_bytes() == source.read_bytes(), f"{copy} differs from {source}: run `make vendor-static`"


def test_no_page_loads_anything_from_another_origin() -> None:
    """No template or script names a CDN: everything a page loads is served by the app itself."""
    pattern = re.compile(r"""(src|href)\s*=\s*["']\s*(https?:)?//""", re.IGNORECASE)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("templates", "static/memoryhub", "static/console")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".html", ".js", ".css"} and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders
