"""What extraction costs per message with the rule-based stand-in model (bench/llm_standin.py):
calls, tokens and decisions, and messages extracted per second in one process (the stand-in
answers at once, so this is the server's own share: search, prompts, writes).

    MEMORYHUB_DATA_DIR=/tmp/x MEMORYHUB_DB_PATH=/tmp/x/hub.sqlite3 python manage.py migrate
    MEMORYHUB_DATA_DIR=/tmp/x MEMORYHUB_DB_PATH=/tmp/x/hub.sqlite3 python -m bench.extraction_cost [people]

Each person gets a fact ("PersonN lives in <city>"), then its change: the second round is all
updates (the first is all adds).
"""

from __future__ import annotations

import os
import sys
import time

import django

from bench.llm_standin import serve

CITIES = ["Rome", "Oslo", "Paris", "Lima"]


def main(people: int) -> None:
    with serve() as url:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryhub.settings")
        os.environ.update(MEMORYHUB_LLM_URL=url, MEMORYHUB_LLM_MODEL="standin", MEMORYHUB_EXTRACTION_WORKER="off")
        django.setup()
        from access.changes import changing
        from kernel import metrics
        from memory import extraction, services
        from memory.services import NewMemory

        namespace = f"bench:extraction:{int(time.time())}"
        with changing("bench"):
            for turn in range(2):
                for index in range(people):
                    text = f"Person{index} lives in {CITIES[(index + turn) % len(CITIES)]}."
                    services.write_memories(namespace=namespace, memories=[NewMemory(text=text)], infer=True)
        started = time.perf_counter()
        done = extraction.drain()
        took = time.perf_counter() - started
        print(f"{done} messages extracted in {took:.1f} s: {done / took:.1f} messages/s")
        for line in metrics.render().splitlines():
            if line.startswith(("memoryhub_llm_calls", "memoryhub_llm_tokens", "memoryhub_extraction_decisions")):
                print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
