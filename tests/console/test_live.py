"""The live feed's wake-ups: a committed write wakes the open streams through the channel layer,
and a burst of writes is coalesced into a few wake-ups (console/live.py `_Waker`), so the write
path never pays for a group_send."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from channels.layers import BaseChannelLayer, get_channel_layer

from access.operations import perform
from console import live
from tests.conftest import ALICE, Persona
from tests.mcp_endpoint.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


async def _wake_ups(layer: BaseChannelLayer, channel: str, seconds: float) -> int:
    """How many wake-ups reach `channel` in `seconds`."""
    count = 0
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=left)
        except TimeoutError:
            break
        assert message == {"type": live.WAKE}
        count += 1
    return count


def test_a_burst_of_writes_wakes_the_streams_a_few_times_not_once_per_write(alice_key: Persona) -> None:
    layer = get_channel_layer()
    assert layer is not None

    async def listen() -> str:
        channel = await layer.new_channel()
        await layer.group_add(live.GROUP, channel)
        return channel

    loop = asyncio.new_event_loop()
    try:
        channel = loop.run_until_complete(listen())
        loop.run_until_complete(_wake_ups(layer, channel, 0.5))  # anything left from earlier tests
        access = alice_key.key.to_access()
        writes = 40
        for n in range(writes):
            perform(
                access,
                "create_entities",
                namespace=ALICE,
                entities=[{"name": f"E{n}", "entityType": "t", "observations": []}],
            )
        woken = loop.run_until_complete(_wake_ups(layer, channel, 1.0))
    finally:
        loop.close()
    assert 1 <= woken < writes


# A write committed while the process stops (SIGTERM, maintenance jobs on their timer) wakes the
# streams as the interpreter shuts down: the wake-up is dropped without an error in the log.
SHUTDOWN_SCRIPT = """
import atexit, os, threading, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryhub.settings")
django.setup()
from channels.layers import get_channel_layer
from console import live

def layer_once_the_process_exits():
    while threading.main_thread().is_alive():
        time.sleep(0.001)
    print("woken while exiting", flush=True)
    return get_channel_layer()

live.get_channel_layer = layer_once_the_process_exits
# Exiting takes a moment (as daphne's own shutdown does), so the wake-up happens during it.
atexit.register(time.sleep, 1)
live.wake_streams(sender=None)
"""


def test_a_wake_up_as_the_process_exits_is_dropped_quietly(tmp_path):
    env = {**os.environ, "MEMORYHUB_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SHUTDOWN_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "woken while exiting" in done.stdout
    assert "Traceback" not in done.stderr, done.stderr
