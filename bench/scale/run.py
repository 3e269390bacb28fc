"""Scale-out benchmark (issue 14): SMTP durable receive (every 250 after
COMMIT) into 1 node on SQLite, 1 node on PostgreSQL, and 2 and 3 nodes on
one PostgreSQL database, beside aiosmtpd with an fsync per message (the
peer, measured in the same run with the same load), with the ratios.

    python -m bench.scale.run --postgres postgresql://postgres@127.0.0.1:5432
    python -m bench.scale.run --postgres URL --messages 2000 --sessions 50 --size 2048

The sessions are spread evenly over the nodes (as DNS would spread
clients); every node is its own `mailstack serve` process. On a machine of
two cores the nodes, PostgreSQL and the load generator share the same CPUs,
so more nodes cannot add capacity here: the figures say what the
coordination costs (leases, row locks, NOTIFY), not what more machines buy.
The IMAP mixed load of the issue is not part of this run yet.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.smtp_receive.run import (
    ROOT,
    drop_database,
    free_port,
    fresh_database,
    load,
    make_message,
    session,
    start_aiosmtpd,
    wait_port,
)

CLI = [sys.executable, "-m", "mailstack.cli"]


def start_nodes(workdir: Path, count: int, url: str) -> list[tuple[subprocess.Popen, int]]:
    """``count`` nodes sharing the store at ``url`` (SQLite when empty: one node)."""
    started = []
    for n in range(count):
        port = free_port()
        data = workdir / f"node{n}"
        data.mkdir()
        store = (
            f'[store]\nbackend = "postgresql"\nurl = "{url}"\nnode = "n{n}"\n' if url else ""
        )
        (data / "mailstack.toml").write_text(
            f'[node]\nhostname = "hamburger.edu"\n[listen]\nsmtp = "127.0.0.1:{port}"\n'
            "[limits]\nsmtp_sessions = 1000\n"
            "smtp_sessions_per_address = 1000\nsmtp_sessions_per_prefix = 1000\n" + store
        )
        if n == 0:
            subprocess.run([*CLI, "domain", "add", "hamburger.edu", "--data-dir", str(data)],
                           check=True, capture_output=True)
            subprocess.run(
                [*CLI, "user", "add", "bob@hamburger.edu", "--password-stdin",
                 "--data-dir", str(data)],
                input=b"bench-password\n", check=True, capture_output=True,
            )
        proc = subprocess.Popen([*CLI, "serve", "--data-dir", str(data)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, proc)
        started.append((proc, port))
    return started


async def spread(ports: list[int], sessions: int, messages: int, size: int) -> float:
    """Messages/second with the sessions dealt over the nodes in turn."""
    import time

    message = make_message(size)
    share = [messages // sessions + (1 if i < messages % sessions else 0) for i in range(sessions)]
    start = time.perf_counter()
    done = await asyncio.gather(
        *(session(ports[i % len(ports)], n, message) for i, n in enumerate(share) if n)
    )
    elapsed = time.perf_counter() - start
    assert sum(done) == messages
    return messages / elapsed


def measure(kind: str, postgres: str, sessions: int, messages: int, size: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = Path(tmp)
        if kind == "aiosmtpd-fsync":
            proc, port = start_aiosmtpd(workdir, "fsync")
            try:
                return asyncio.run(load(port, sessions, messages, size))
            finally:
                proc.terminate()
                proc.wait(30)
        count = int(kind.rsplit("-", 1)[1])
        url = fresh_database(postgres) if kind.startswith("pg") else ""
        nodes = start_nodes(workdir, count, url)
        try:
            return asyncio.run(spread([port for _p, port in nodes], sessions, messages, size))
        finally:
            for proc, _port in nodes:
                proc.terminate()
            for proc, _port in nodes:
                proc.wait(30)
            if url:
                drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, metavar="URL",
                        help="the server on which each run gets a fresh database")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=1, help="rounds (medians over them)")
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    kinds = ["sqlite-1", "pg-1", "pg-2", "pg-3", "aiosmtpd-fsync"]
    rounds = [
        {k: measure(k, args.postgres, args.sessions, args.messages, args.size) for k in kinds}
        for _ in range(args.repeat)
    ]
    print(f"SMTP durable receive, {args.sessions} sessions, {args.size} octets,"
          f" {args.messages} messages (messages/second; median of {args.repeat})")
    for k in kinds:
        figure = statistics.median(r[k] for r in rounds)
        vs_sqlite = statistics.median(r[k] / r["sqlite-1"] for r in rounds)
        vs_pg = statistics.median(r[k] / r["pg-1"] for r in rounds)
        print(f"{k:>15} {figure:>8.0f}   {vs_sqlite:>5.2f}x 1 SQLite node"
              f"   {vs_pg:>5.2f}x 1 PostgreSQL node")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
