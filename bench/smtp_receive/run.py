"""SMTP receive benchmark: messages/second into mailstack (durable: every 250
is committed and fsynced) beside aiosmtpd with an fsync-per-message handler and
aiosmtpd storing nothing, all measured in this one run with the same load.

    python -m bench.smtp_receive.run                 # the issue's matrix, 10,000 messages
    python -m bench.smtp_receive.run --messages 2000 --sessions 50 --sizes 2048

Postfix itself (a private instance delivering durably to a Maildir, see
postfix_peer.py) is a fourth peer when it is installed and we run as root.

The load generator is Postfix's `smtp-source` when it is installed (Debian
package `postfix`; `-d`: the sessions stay connected), as in the issue's
reference figures; else ours (`--generator python`): N concurrent sessions on
127.0.0.1, each EHLO once and then MAIL/RCPT/DATA pipelined (RFC 2920, all
three servers offer PIPELINING) for its share of the messages. Every server
runs in its own process with uvloop. On 2 cores the generator competes with
the server for CPU, the same way for every server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.smtp_receive import postfix_peer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen | None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def start_mailstack(workdir: Path, store_url: str = "") -> tuple[subprocess.Popen, int]:
    """A node on SQLite, or on the (empty) PostgreSQL database at store_url."""
    port = free_port()
    data = workdir / "mailstack"
    data.mkdir()
    store = f'[store]\nbackend = "postgresql"\nurl = "{store_url}"\n' if store_url else ""
    (data / "mailstack.toml").write_text(
        f'[node]\nhostname = "hamburger.edu"\n[listen]\nsmtp = "127.0.0.1:{port}"\n'
        "[limits]\nsmtp_sessions = 1000\nmessage_size = 209715200\n"
        # Every client is on 127.0.0.1: the per-client caps are the node's.
        "smtp_sessions_per_address = 1000\nsmtp_sessions_per_prefix = 1000\n" + store
    )
    cli = [sys.executable, "-m", "mailstack.cli"]
    subprocess.run(
        [*cli, "domain", "add", "hamburger.edu", "--data-dir", str(data)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*cli, "user", "add", "bob@hamburger.edu", "--password-stdin", "--data-dir", str(data)],
        input=b"bench-password\n",
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [*cli, "serve", "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc)
    return proc, port


def start_aiosmtpd(workdir: Path, mode: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    spool = workdir / f"aiosmtpd-{mode}"
    spool.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "aiosmtpd_peer.py"),
            "--port",
            str(port),
            "--mode",
            mode,
            "--dir",
            str(spool),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc)
    return proc, port


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


async def session(port: int, count: int, message: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    await read_reply(reader)
    writer.write(b"EHLO crepes.fr\r\n")
    await read_reply(reader)
    envelope = b"MAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\nDATA\r\n"
    payload = message + b".\r\n"
    done = 0
    for _ in range(count):
        writer.write(envelope)
        for _ in range(3):
            reply = await read_reply(reader)
        if not reply.startswith(b"354"):
            raise RuntimeError(f"refused: {reply!r}")
        writer.write(payload)
        reply = await read_reply(reader)
        if not reply.startswith(b"250"):
            raise RuntimeError(f"not accepted: {reply!r}")
        done += 1
    writer.write(b"QUIT\r\n")
    await read_reply(reader)
    writer.close()
    return done


def make_message(size: int) -> bytes:
    head = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: bench\r\n\r\n"
    line = b"Do you like ketchup? How about pickles? " * 2 + b"\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head) - 2)]
    body = body[: body.rfind(b"\r\n") + 2] if b"\r\n" in body else b""
    return head + body


async def load(port: int, sessions: int, messages: int, size: int) -> float:
    message = make_message(size)
    share = [messages // sessions + (1 if i < messages % sessions else 0) for i in range(sessions)]
    start = time.perf_counter()
    done = await asyncio.gather(*(session(port, n, message) for n in share if n))
    elapsed = time.perf_counter() - start
    assert sum(done) == messages
    return messages / elapsed


def smtp_source(port: int, sessions: int, messages: int, size: int) -> float:
    """Postfix's load generator; messages/second over its whole run."""
    start = time.perf_counter()
    subprocess.run(
        [
            "smtp-source",
            "-d",
            "-s",
            str(sessions),
            "-m",
            str(messages),
            "-l",
            str(size),
            "-M",
            "crepes.fr",
            "-f",
            "alice@crepes.fr",
            "-t",
            "bob@hamburger.edu",
            f"127.0.0.1:{port}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return messages / (time.perf_counter() - start)


# --postgres: the server on which "mailstack-pg" gets a fresh database per run.
POSTGRES = ""


def fresh_database(server: str) -> str:
    """An empty database on ``server`` (postgresql://USER@HOST:PORT), made with psql."""
    name = f"bench_{os.getpid()}_{time.monotonic_ns()}"
    subprocess.run(
        ["psql", f"{server}/postgres", "-qc", f'CREATE DATABASE "{name}"'],
        check=True, capture_output=True,
    )
    return f"{server}/{name}"


def drop_database(url: str) -> None:
    server, _, name = url.rpartition("/")
    subprocess.run(
        ["psql", f"{server}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}"'],
        check=True, capture_output=True,
    )


def measure(kind: str, sessions: int, messages: int, size: int, generator: str) -> float:
    """One run against a freshly started server; messages/second."""
    with tempfile.TemporaryDirectory(prefix="bench-smtp-") as tmp:
        workdir = Path(tmp)
        if kind == "postfix":
            port = free_port()
            etc = postfix_peer.start(workdir, port)
            try:
                wait_port(port, None)
                if generator == "smtp-source":
                    return smtp_source(port, sessions, messages, size)
                return asyncio.run(load(port, sessions, messages, size))
            finally:
                postfix_peer.stop(etc)
        database = ""
        if kind == "mailstack":
            proc, port = start_mailstack(workdir)
        elif kind == "mailstack-pg":
            database = fresh_database(POSTGRES)
            proc, port = start_mailstack(workdir, database)
        else:
            proc, port = start_aiosmtpd(workdir, kind.split("-", 1)[1])
        try:
            if generator == "smtp-source":
                return smtp_source(port, sessions, messages, size)
            return asyncio.run(load(port, sessions, messages, size))
        finally:
            proc.terminate()
            proc.wait(30)
            if database:
                drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 102400])
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds per figure (medians over the rounds)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument(
        "--no-postfix", action="store_true", help="leave Postfix out even when it is installed"
    )
    parser.add_argument(
        "--generator",
        choices=("smtp-source", "python"),
        default="smtp-source" if shutil.which("smtp-source") else "python",
    )
    parser.add_argument(
        "--postgres", default="", metavar="URL",
        help="also measure a node on PostgreSQL (postgresql://postgres@127.0.0.1:5432)",
    )
    args = parser.parse_args()
    global POSTGRES
    POSTGRES = args.postgres
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    peers = ["mailstack", "aiosmtpd-fsync", "aiosmtpd-none"]
    if args.postgres:
        peers.insert(1, "mailstack-pg")
    if postfix_peer.available() and not args.no_postfix:
        peers.append("postfix")
    results = []
    print(
        f"{'sessions':>8} {'size':>7} "
        + " ".join(f"{p:>15}" for p in peers)
        + f" {'vs fsync':>9} {'vs none':>8}"
        + (f" {'vs postfix':>10}" if "postfix" in peers else "")
        + f"   (messages/second, {args.messages} messages, {args.generator})"
    )
    for sessions in args.sessions:
        for size in args.sizes:
            # Rounds interleave the servers, so that a slower spell of a
            # shared machine weighs on all of them alike; each figure is the
            # median over the rounds, each ratio the median of the rounds' ratios.
            rounds = [
                {p: measure(p, sessions, args.messages, size, args.generator) for p in peers}
                for _ in range(args.repeat)
            ]
            row = {p: statistics.median(r[p] for r in rounds) for p in peers}
            vs_fsync = statistics.median(r["mailstack"] / r["aiosmtpd-fsync"] for r in rounds)
            vs_none = statistics.median(r["mailstack"] / r["aiosmtpd-none"] for r in rounds)
            results.append({"sessions": sessions, "size": size, **row, "rounds": rounds})
            vs_postfix = ""
            if "postfix" in peers:
                ratio = statistics.median(r["mailstack"] / r["postfix"] for r in rounds)
                vs_postfix = f" {ratio:>9.2f}x"
            print(
                f"{sessions:>8} {size:>7} "
                + " ".join(f"{row[p]:>15.0f}" for p in peers)
                + f" {vs_fsync:>8.2f}x {vs_none:>7.2f}x{vs_postfix}",
                flush=True,
            )
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
