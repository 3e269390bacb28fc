"""What the subcommands of `mailstack` share, here so that each package's own
`cli.py` uses it without importing the command line (`mailstack.cli`), which
imports them: the configuration file a command acts on (``--config``,
``--data-dir``, $MAILSTACK_CONFIG, else the default data directory) and the
node's store, opened around an action.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mailstack.config import CONFIG_NAME, Config, default_data_dir
from mailstack.mime import PARSE_CODEC, ParsedMessage
from mailstack.store import Store
from mailstack.store.postgres import PostgresStore, node_name
from mailstack.store.sqlite import SqliteStore

__all__ = [
    "config_path", "load_config", "node_dns_address", "open_node_store", "open_store",
    "with_store",
]


def config_path(args: argparse.Namespace) -> Path:
    if getattr(args, "config", None):
        return Path(args.config)
    if getattr(args, "data_dir", None):
        return Path(args.data_dir) / CONFIG_NAME
    if env := os.environ.get("MAILSTACK_CONFIG"):
        return Path(env)
    return default_data_dir() / CONFIG_NAME


def load_config(args: argparse.Namespace) -> Config:
    return Config.load(config_path(args))


def node_dns_address(config: Config) -> tuple[str, int] | None:
    """Where the node's own DNS listener answers: the port a running node
    bound (its ports.json, which port 0 needs), else the configured one;
    None when the node has no `dns` listener."""
    if "dns" not in config.listen:
        return None
    host, port = config.listen["dns"]
    try:
        port = int(json.loads((config.data_dir / "ports.json").read_text())["dns"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port


async def open_store(config: Config, *, serving: bool = False) -> Store[ParsedMessage]:
    """The configured backend's store, its schema migrated. ``serving``: the
    store of `mailstack serve`, a node among those sharing a PostgreSQL store
    (it heartbeats and leases the queue entries it works on)."""
    if config.store.backend == "postgresql":
        return await PostgresStore.open(
            config.store.url,
            codec=PARSE_CODEC,
            password=config.store_password(),
            pool_size=config.store.pool_size,
            node=(config.store.node or node_name()) if serving else None,
            lease=config.store.lease,
            claim_queued=config.queue.enabled,
        )
    limits = config.limits
    return await SqliteStore.open(
        config.database_path,
        codec=PARSE_CODEC,
        wal_bound=limits.wal_size,
        checkpoint_wait=limits.wal_checkpoint_wait,
    )


async def open_node_store(config: Config) -> Store[ParsedMessage]:
    """The store as `mailstack serve` opens it (see ``open_store``)."""
    return await open_store(config, serving=True)


def with_store(
    action: Callable[[Any, argparse.Namespace], Awaitable[int | None]],
) -> Callable[[argparse.Namespace], int]:
    """Run an async action against the configured node's store."""

    def run(args: argparse.Namespace) -> int:
        config = load_config(args)

        async def go() -> int:
            store = await open_store(config)
            try:
                return await action(store, args) or 0
            finally:
                await store.close()

        return asyncio.run(go())

    return run
