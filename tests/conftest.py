"""Shared fixtures: a store on a temporary SQLite file, and real nodes.

`node_factory(listen=("smtp", "pop3"), **tables)` writes a config into a
temporary data directory with port 0 for each named service, starts a real
node on 127.0.0.1 in the test's event loop, and stops it afterwards. Helpers
live in tests/support.py.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mailstack import logs
from mailstack.common.netguard import ENV as LOOPBACK_ONLY
from mailstack.mime import PARSE_CODEC
from mailstack.store.sqlite import SqliteStore

# No test may send a packet outside loopback: the resolver and the queue refuse
# (and so do the nodes the tests start as subprocesses, which inherit this).
os.environ[LOOPBACK_ONLY] = "1"
from support import FAST_HASHER, TestNode, make_config, open_fast_store


@pytest.fixture(autouse=True)
def _node_logging_ends_with_the_test():
    """A test that runs the command line sets up the node's log (`logs.setup`);
    undo it afterwards, so later tests (and aiosmtpd's threads) do not write
    through it into the run's output."""
    root = logging.getLogger()
    level = root.level
    yield
    installed = [h for h in root.handlers if isinstance(h, logs._Handoff)]
    if installed:
        logs.flush()
        for handler in installed:
            root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore[Any]]:
    s = await SqliteStore.open(
        tmp_path / "store.db", codec=PARSE_CODEC, password_hasher=FAST_HASHER
    )
    yield s
    await s.close()


@pytest.fixture
async def other_store(store: SqliteStore[Any]) -> AsyncIterator[SqliteStore[Any]]:
    """A second store on the same data, as another process would open it."""
    s = await SqliteStore.open(store.path, codec=PARSE_CODEC, password_hasher=FAST_HASHER)
    yield s
    await s.close()


@pytest.fixture
async def node_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[TestNode]]]:
    nodes: list[TestNode] = []

    async def start(
        listen: tuple[str, ...] = ("smtp",),
        hostname: str = "mx.test",
        host: str = "127.0.0.1",
        trace: bool = False,
        **table: Any,
    ) -> TestNode:
        data_dir = tmp_path / f"node{len(nodes)}"
        config = make_config(data_dir, listen, hostname, host, table)
        node = TestNode(config, trace=trace, store_factory=open_fast_store)
        await node.start()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        await node.stop()
