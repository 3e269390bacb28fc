"""Scale-out benchmark (issue 14): SMTP durable receive (every 250 after
COMMIT) and the IMAP mixed load of bench/imap on 1 node on SQLite, 1 node
on PostgreSQL, and 2 and 3 nodes on one PostgreSQL database, with the
ratios to the SQLite node measured in the same run; SMTP also beside
aiosmtpd with an fsync per message (the peer, same load, same run).

    python -m bench.scale.run --postgres postgresql://postgres@127.0.0.1:5432
    python -m bench.scale.run --postgres URL --messages 2000 --sessions 50 --size 2048 \
        --imap-clients 10 --imap-duration 10 --repeat 3

The SMTP sessions and the IMAP clients are spread evenly over the nodes (as
DNS would spread them); every node is its own `mailstack serve` process.
The IMAP load is bench/imap's: each client its own account of
``--imap-messages`` messages, rounds of FETCH FLAGS, FETCH ENVELOPE, FETCH
BODY[], STORE, APPEND, STORE \\Deleted, EXPUNGE, a new session every ten
rounds (LOGIN hits the login cache after the first on each node).

What bounds each figure on a machine of two cores: the nodes, PostgreSQL
and the load generators share the same two CPUs, so more nodes cannot add
capacity here; the 2- and 3-node figures say what the coordination costs
(row locks, NOTIFY, more PostgreSQL backends, more processes to schedule),
not what more machines buy. SMTP receive is bound by the commit: on
SQLite an fsync in the node's writer thread, on PostgreSQL the round trips
of each group of deliveries and the COMMIT's WAL flush, with the node's
CPU between them. The IMAP mixed load is bound by the node's CPU (parsing
commands, building FETCH responses, Argon2id on the first LOGIN) plus, on
PostgreSQL, one round trip or more per command that reads or writes the
store. ``node CPU/op`` is the CPU time of the node processes per message
(SMTP) or operation (IMAP): steadier than the rates when other work shares
the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.machinery
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

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
IMAP_BENCH = ROOT / "bench" / "imap" / "run"


def imap_bench() -> ModuleType:
    """bench/imap/run (a script, not a module): its message maker, user names
    and client."""
    loader = importlib.machinery.SourceFileLoader("bench_imap_run", str(IMAP_BENCH))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def node_cpu(pid: int) -> float:
    """Seconds of CPU the process has used (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_nodes(
    workdir: Path, count: int, url: str, service: str = "smtp", fill: tuple[int, int] = (0, 0)
) -> list[tuple[subprocess.Popen, int]]:
    """``count`` nodes sharing the store at ``url`` (SQLite when empty: one
    node), each listening for ``service``; ``fill``: (accounts, messages
    each) of the IMAP load, made before the nodes start."""
    started = []
    for n in range(count):
        port = free_port()
        data = workdir / f"node{n}"
        data.mkdir()
        store = (
            f'[store]\nbackend = "postgresql"\nurl = "{url}"\nnode = "n{n}"\n' if url else ""
        )
        (data / "mailstack.toml").write_text(
            f'[node]\nhostname = "hamburger.edu"\n[listen]\n{service} = "127.0.0.1:{port}"\n'
            "[limits]\nsmtp_sessions = 1000\n"
            "smtp_sessions_per_address = 1000\nsmtp_sessions_per_prefix = 1000\n"
            # Every client is on 127.0.0.1: the per-client caps are the node's.
            "imap_sessions = 5000\nimap_sessions_per_user = 5000\n"
            "imap_sessions_per_address = 5000\nimap_sessions_per_prefix = 5000\n"
            "login_sessions_per_address = 5000\n" + store
        )
        if n == 0 and fill[0]:
            subprocess.run(
                [sys.executable, "-m", "bench.scale.run", "--fill", str(data),
                 str(fill[0]), str(fill[1])],
                check=True, cwd=ROOT,
            )
        elif n == 0:
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


def fill_main(data: Path, accounts: int, messages: int) -> None:
    """Child process: the IMAP load's accounts and messages, through the
    store the node's configuration names (as bench/imap fills its node)."""
    from mailstack.commands import open_store
    from mailstack.config import Config
    from mailstack.mime import parse_for_store

    imap = imap_bench()
    config = Config.load(data / "mailstack.toml")

    async def fill() -> None:
        store = await open_store(config)
        try:
            await store.domain_add("bench.test")
            for user in imap.user_names(accounts):
                account = await store.account_add(user, imap.PASSWORD)
                inbox = await store.mailbox_get(account.id, "INBOX")
                assert inbox is not None

                async def put(n: int, mailbox_id: int = inbox.id) -> int:
                    raw = imap.make_message(n)
                    return int(await store.append(mailbox_id, raw, await parse_for_store(raw)))

                for start in range(1, messages + 1, 50):
                    await asyncio.gather(
                        *(put(n) for n in range(start, min(start + 50, messages + 1)))
                    )
        finally:
            await store.close()

    asyncio.run(fill())


def imap_load(ports: list[int], clients: int, duration: float) -> float:
    """Operations/second of bench/imap's mixed load, the clients dealt over
    the nodes in turn (one client process per node, run at once)."""
    users = imap_bench().user_names(clients)
    procs = [
        subprocess.Popen(
            [sys.executable, str(IMAP_BENCH), "--client", "run", str(port), str(duration),
             "10", *users[i::len(ports)]],
            stdout=subprocess.PIPE, text=True,
        )
        for i, port in enumerate(ports)
    ]
    elapsed, ops = 0.0, 0
    for proc in procs:
        out, _ = proc.communicate(timeout=duration * 10 + 600)
        if proc.returncode:
            raise RuntimeError("the IMAP load failed")
        took, done = out.split()
        elapsed, ops = max(elapsed, float(took)), ops + int(done)
    return ops / elapsed


def measure(
    kind: str, postgres: str, args: argparse.Namespace, load_kind: str = "smtp"
) -> tuple[float, float]:
    """(rate, node CPU seconds per message or operation) of one setup."""
    sessions, messages, size = args.sessions, args.messages, args.size
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = Path(tmp)
        if kind == "aiosmtpd-fsync":
            proc, port = start_aiosmtpd(workdir, "fsync")
            try:
                before = node_cpu(proc.pid)
                rate = asyncio.run(load(port, sessions, messages, size))
                return rate, (node_cpu(proc.pid) - before) / messages
            finally:
                proc.terminate()
                proc.wait(30)
        count = int(kind.rsplit("-", 1)[1])
        url = fresh_database(postgres) if kind.startswith("pg") else ""
        fill = (args.imap_clients, args.imap_messages) if load_kind == "imap" else (0, 0)
        nodes = start_nodes(workdir, count, url, load_kind, fill)
        ports = [port for _p, port in nodes]
        try:
            before = sum(node_cpu(p.pid) for p, _port in nodes)
            if load_kind == "imap":
                started = time.perf_counter()
                rate = imap_load(ports, args.imap_clients, args.imap_duration)
                done = rate * (time.perf_counter() - started)
            else:
                rate = asyncio.run(spread(ports, sessions, messages, size))
                done = messages
            return rate, (sum(node_cpu(p.pid) for p, _port in nodes) - before) / done
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
    parser.add_argument("--imap-clients", type=int, default=10)
    parser.add_argument("--imap-duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--imap-messages", type=int, default=200, help="messages per account")
    parser.add_argument("--skip-imap", action="store_true")
    parser.add_argument("--skip-smtp", action="store_true")
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    nodes = ["sqlite-1", "pg-1", "pg-2", "pg-3"]
    loads = [("smtp", [*nodes, "aiosmtpd-fsync"])] if not args.skip_smtp else []
    loads += [("imap", nodes)] if not args.skip_imap else []
    for load_kind, kinds in loads:
        rounds = []
        for _ in range(args.repeat):
            # Every setup of a round measured one after the other, so that
            # the machine's other work weighs on all of them alike.
            rounds.append({k: measure(k, args.postgres, args, load_kind) for k in kinds})
            print(json.dumps({load_kind: rounds[-1]}), file=sys.stderr, flush=True)
        if load_kind == "smtp":
            print(f"SMTP durable receive, {args.sessions} sessions, {args.size} octets,"
                  f" {args.messages} messages (messages/second)")
        else:
            print(f"IMAP mixed load (bench/imap), {args.imap_clients} clients,"
                  f" {args.imap_messages} messages each, {args.imap_duration:g} s"
                  " (operations/second)")
        print(f"{'':>15} {'median':>8} {'spread':>13}   {'vs 1 SQLite node':>22}"
              f"   {'vs 1 PG node':>6}   node CPU/op")
        for k in kinds:
            rates = [r[k][0] for r in rounds]
            ratios = sorted(r[k][0] / r["sqlite-1"][0] for r in rounds)
            vs_pg = statistics.median(r[k][0] / r["pg-1"][0] for r in rounds)
            cpu = statistics.median(r[k][1] for r in rounds) * 1e6
            print(f"{k:>15} {statistics.median(rates):>8.0f} {min(rates):>6.0f}-{max(rates):<6.0f}"
                  f"   {statistics.median(ratios):>5.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})"
                  f"   {vs_pg:>5.2f}x   {cpu:>7.0f} us")


if __name__ == "__main__":
    os.chdir(ROOT)
    if len(sys.argv) > 1 and sys.argv[1] == "--fill":
        fill_main(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
