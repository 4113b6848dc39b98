"""The cross-process tests of tests/cluster, run across hosts: MCP sessions, streams (resumption,
takeover), subscriptions, tool-list changes and search move between nodes on machines of their
own as they do between processes on one machine. Process A is node 0, process B node 1."""

from __future__ import annotations

import inspect

import pytest

from tests.cluster import test_across_processes as across
from tests.cluster.conftest import Cluster
from tests.multinode.conftest import Machines

pytestmark = pytest.mark.postgres_only(reason="several hosts share the store only through PostgreSQL")

http = across.http

# Every test there that takes the two-process cluster, collected here again with the fixture below,
# but for the check of that cluster's own Redis settings (test_nodes.py checks the nodes').
for _name, _test in vars(across).items():
    if (
        _name.startswith("test_")
        and "cluster" in inspect.signature(_test).parameters
        and _name != "test_both_processes_use_one_redis_database_for_the_cache_and_the_channel_layer"
    ):
        globals()[_name] = _test


@pytest.fixture(scope="package")
def cluster(machines: Machines) -> Cluster:
    return Cluster(machines.servers[0], machines.servers[1])
