"""`mailstack migrate` and `mailstack cluster status` (see the package)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from mailstack.cluster.migrate import Report, migrate
from mailstack.commands import load_config
from mailstack.config import CONFIG_NAME, Config, postgres_url
from mailstack.errors import ConfigError, StoreError
from mailstack.mime import PARSE_CODEC
from mailstack.store.postgres import PostgresStore
from mailstack.store.sqlite import SqliteStore


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "migrate", help="move a node's SQLite store into an empty PostgreSQL database"
    )
    p.add_argument("--from", dest="source", required=True, metavar="DATA_DIR",
                   help="the data directory of the node (stopped) whose store moves")
    p.add_argument("--to", dest="target", required=True, metavar="URL",
                   help="postgresql://USER@HOST:PORT/DATABASE, an empty database")
    p.add_argument("--password-file", metavar="FILE",
                   help="a file holding the database password (else trust, peer or ~/.pgpass)")
    p.set_defaults(func=cmd_migrate)
    cluster = subparsers.add_parser("cluster", help="the nodes sharing a PostgreSQL store")
    actions = cluster.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    p = actions.add_parser(
        "status", parents=[common], help="the nodes, when each was last seen, its queue leases"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)


def _source_store(data_dir: Path) -> Path:
    """The SQLite file of the node at ``data_dir`` (its config's, else the
    default name), refused while the node runs."""
    from mailstack.app import PID_FILE

    path = data_dir / "mailstack.db"
    if (data_dir / CONFIG_NAME).exists():
        config = Config.load(data_dir / CONFIG_NAME)
        if config.store.backend != "sqlite":
            raise ConfigError(f"{data_dir / CONFIG_NAME}: the store is not SQLite")
        path = config.database_path
    try:
        pid = int((data_dir / PID_FILE).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return path
    raise ConfigError(f"the node of {data_dir} runs (pid {pid}): stop it first")


def _print(report: Report) -> None:
    print(f"{'table':<20} {'sqlite':>8} {'postgresql':>10}  checksum (both sides)")
    for t in report.tables:
        mark = "" if t.same else "  DIFFERS"
        print(f"{t.name:<20} {t.source_rows:>8} {t.target_rows:>10}  {t.source_sum[:16]}"
              f" {t.target_sum[:16]}{mark}")
    print(f"sqlite     {report.checksum('source')}")
    print(f"postgresql {report.checksum('target')}")


def cmd_migrate(args: argparse.Namespace) -> int:
    data_dir = Path(args.source).expanduser().resolve()
    path = _source_store(data_dir)
    try:
        url = postgres_url(args.target)
    except ValueError as exc:
        raise ConfigError(f"--to: {exc}") from None
    password = None
    if args.password_file:
        try:
            password = Path(args.password_file).read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise ConfigError(f"--password-file: cannot read {args.password_file}: {exc}") from None

    async def go() -> Report:
        # The store at this mailstack's schema version first.
        store = await SqliteStore.open(path, codec=PARSE_CODEC)
        await store.close()
        return await migrate(path, url, password=password)

    report = asyncio.run(go())
    _print(report)
    print(f"moved {sum(t.target_rows for t in report.tables)} rows; now set in"
          f" {data_dir / CONFIG_NAME}: [store] backend = \"postgresql\", url = \"{url}\"")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config(args)
    if config.store.backend != "postgresql":
        raise StoreError("cluster status: the store is SQLite, one node (no cluster)")

    async def go() -> list[Any]:
        store = await PostgresStore.open(
            config.store.url, codec=PARSE_CODEC, password=config.store_password(),
            pool_size=2,
        )
        try:
            return await store.cluster_nodes()
        finally:
            await store.close()

    nodes = asyncio.run(go())
    now = time.time()
    gone_after = config.store.lease
    rows = [
        {
            "name": n.name, "host": n.host, "pid": n.pid, "started": n.started,
            "last_seen": n.last_seen, "seconds_since_seen": round(now - n.last_seen, 1),
            "alive": now - n.last_seen < gone_after, "queue_leases": n.leases,
        }
        for n in nodes
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no node serves this store")
        return 0
    print(f"{'node':<28} {'pid':>7} {'started':<20} {'last seen':>10} {'leases':>6}  state")
    for r in rows:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["started"]))
        state = "up" if r["alive"] else "gone (leases pass to the others)"
        print(f"{r['name']:<28} {r['pid']:>7} {started:<20} {r['seconds_since_seen']:>9}s"
              f" {r['queue_leases']:>6}  {state}")
    return 0
