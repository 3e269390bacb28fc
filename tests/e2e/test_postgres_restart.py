"""PostgreSQL restarted under a load of SMTP deliveries: while it is away
the MX answers `451 4.3.0` (never `250` for what it could not commit), it
gets its connections back by itself, and every message it acknowledged is
in the mailbox exactly once (read with imaplib).

The server restarted is a private throwaway cluster (initdb in a temporary
directory, its own port), never the shared one the other tests use."""

from __future__ import annotations

import asyncio
import imaplib
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import TestNode, make_config

BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
USER, PASSWORD = "bob@hamburger.edu", "hungry"


def as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class PrivateCluster:
    def __init__(self) -> None:
        assert BIN is not None
        self.dir = Path(tempfile.mkdtemp(prefix="mailstack-pg-"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        subprocess.run(
            as_postgres(str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                        "postgres", "--no-sync"),
            check=True, capture_output=True, timeout=120,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), *args),
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.pg_ctl(
            "-w", "-l", str(self.dir / "log"), "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
            " -c shared_buffers=16MB -c max_connections=30", "start",
        )

    def stop(self) -> None:
        self.pg_ctl("-w", "-m", "fast", "stop")

    def remove(self) -> None:
        try:
            self.pg_ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    if BIN is None or shutil.which("runuser") is None:
        pytest.skip("no PostgreSQL server binaries to run a private cluster")
    made = PrivateCluster()
    try:
        made.start()
        yield made
    finally:
        made.remove()


def load(port: int, tag: str, acked: list[str], refused: list[str], stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                while not stop.is_set():
                    subject = f"{tag}-{n}"
                    n += 1
                    try:
                        s.sendmail("ann@poly.edu", [USER],
                                   f"Subject: {subject}\r\n\r\nhi\r\n".encode())
                    except smtplib.SMTPRecipientsRefused as exc:
                        refused.extend(f"{code} {text.decode()[:5]}"
                                       for code, text in exc.recipients.values())
                        s.rset()
                        time.sleep(0.05)
                        continue
                    except smtplib.SMTPResponseException as exc:
                        refused.append(f"{exc.smtp_code} {exc.smtp_error.decode()[:5]}")
                        s.rset()
                        time.sleep(0.05)
                        continue
                    acked.append(subject)
        except (smtplib.SMTPException, OSError):
            time.sleep(0.1)


@pytest.mark.timeout(180)
async def test_postgresql_restarted_under_load(cluster: PrivateCluster, tmp_path: Path) -> None:
    config = make_config(
        tmp_path / "node", ("smtp", "imap"),
        table={"store": {"backend": "postgresql", "url": cluster.url, "pool_size": 4}},
    )
    node = TestNode(config)
    await node.start()
    acked: list[str] = []
    refused: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=load, args=(node.port("smtp"), f"m{i}", acked, refused, stop),
                         daemon=True)
        for i in range(3)
    ]
    try:
        await node.add_user(USER, PASSWORD)
        for t in threads:
            t.start()
        while len(acked) < 30:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(cluster.stop)
        # Each session hears of it at its next command (on a loaded machine a
        # session may still be waiting out an earlier answer).
        deadline = time.monotonic() + 30
        while not refused and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        away = len(acked)
        await asyncio.sleep(0.5)
        assert len(acked) == away  # nothing acknowledged while the store is away
        assert refused and set(refused) <= {"451 4.3.0"}, refused
        await asyncio.to_thread(cluster.start)
        deadline = time.monotonic() + 30
        while len(acked) < away + 30 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(acked) >= away + 30  # it reconnected by itself
        stop.set()
        for t in threads:
            await asyncio.to_thread(t.join, 15)

        def subjects() -> list[str]:
            c = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
            c.login(USER, PASSWORD)
            c.select("INBOX", readonly=True)
            status, data = c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            c.logout()
            assert status == "OK"
            return [p[1].decode().strip().removeprefix("Subject: ")
                    for p in data if isinstance(p, tuple)]

        found = await asyncio.to_thread(subjects)
    finally:
        stop.set()
        await node.stop()
    assert len(found) == len(set(found))  # exactly once
    assert set(acked) <= set(found)
    # A commit the server made as it went away may lack its 250: one per session at most.
    assert len(set(found) - set(acked)) <= len(threads)


