"""`manage.py runserver` is daphne's (ASGI), while daphne stays out of INSTALLED_APPS so that the
other commands, the stdio server and the embedding worker do not import it at start."""

from __future__ import annotations

import os
import subprocess
import sys

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.core.management import get_commands, load_command_class

from tests.mcp_endpoint.conftest import ROOT


def test_runserver_is_daphnes():
    app = get_commands()["runserver"]
    assert app == "memoryhub"
    assert isinstance(load_command_class(app, "runserver"), DaphneRunserver)


def test_a_command_process_does_not_import_the_server(tmp_path):
    script = "import sys; print(sorted(m for m in ('daphne.server', 'twisted.internet.reactor') if m in sys.modules))"
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=ROOT,
        env={**os.environ, "MEMORYHUB_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == "[]"
