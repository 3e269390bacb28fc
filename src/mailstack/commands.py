"""What the subcommands of `mailstack` share, here so that each package's own
`cli.py` uses it without importing the command line (`mailstack.cli`), which
imports them: the configuration file a command acts on (``--config``,
``--data-dir``, $MAILSTACK_CONFIG, else the default data directory) and the
node's store, opened around an action.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mailstack.config import CONFIG_NAME, Config, default_data_dir
from mailstack.mime import PARSE_CODEC, ParsedMessage
from mailstack.store.sqlite import SqliteStore

__all__ = ["config_path", "load_config", "open_store", "with_store"]


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


async def open_store(config: Config) -> SqliteStore[ParsedMessage]:
    limits = config.limits
    return await SqliteStore.open(
        config.database_path,
        codec=PARSE_CODEC,
        wal_bound=limits.wal_size,
        checkpoint_wait=limits.wal_checkpoint_wait,
    )


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
