"""Nothing acknowledged is lost: SIGKILL a real `mailstack serve` during a
multi-session SMTP load, then count what survived."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mailstack.mime import PARSE_CODEC
from mailstack.store.sqlite import SqliteStore

from support import mailstack_cli, start_serve

SESSIONS = 8


def start_smtp(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    proc, ports = start_serve(data_dir)
    return proc, ports["smtp"]


def body(sender: int, n: int) -> bytes:
    return (
        f"From: load{sender}@crepes.fr\r\nSubject: msg-{sender}-{n}\r\n\r\n".encode()
        + (f"line {n} of sender {sender}\r\n" * 40).encode()
    )


def load(port: int, sender: int, acked: list[tuple[int, int]], stop: threading.Event) -> None:
    n = 0
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="crepes.fr", timeout=10) as s:
            while not stop.is_set():
                s.sendmail(f"load{sender}@crepes.fr", ["bob@hamburger.edu"], body(sender, n))
                acked.append((sender, n))  # only after the 250
                n += 1
    except (smtplib.SMTPException, OSError):
        pass


@pytest.mark.timeout(120)
async def test_sigkill_mid_load_loses_nothing_acknowledged(tmp_path):
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    (data_dir / "mailstack.toml").write_text(
        '[node]\nhostname = "hamburger.edu"\n[listen]\nsmtp = "127.0.0.1:0"\n'
    )
    await asyncio.to_thread(mailstack_cli, data_dir, "domain", "add", "hamburger.edu")
    await asyncio.to_thread(
        mailstack_cli,
        data_dir,
        "user",
        "add",
        "bob@hamburger.edu",
        "--password-stdin",
        stdin="hungry-bob\n",
    )
    proc, port = await asyncio.to_thread(start_smtp, data_dir)
    acked: list[tuple[int, int]] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=load, args=(port, i, acked, stop), daemon=True)
        for i in range(SESSIONS)
    ]
    for t in threads:
        t.start()
    # Kill once the load is well under way.
    deadline = time.monotonic() + 30
    while len(acked) < 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join(10)
    acknowledged = set(acked)
    assert len(acknowledged) >= 200

    store = await SqliteStore.open(data_dir / "mailstack.db", codec=PARSE_CODEC)
    try:
        account = await store.account_get("bob@hamburger.edu")
        inbox = await store.mailbox_get(account.id, "INBOX")
        found: dict[tuple[int, int], int] = {}
        for meta in await store.messages(inbox.id):
            raw = await store.message_bytes(inbox.id, meta.uid)
            subject = raw.split(b"Subject: msg-", 1)[1].split(b"\r\n", 1)[0].decode()
            sender, n = (int(x) for x in subject.split("-"))
            assert raw.endswith(body(sender, n)), "message bytes damaged"
            found[(sender, n)] = found.get((sender, n), 0) + 1
    finally:
        await store.close()
    missing = acknowledged - found.keys()
    assert not missing, f"{len(missing)} acknowledged messages lost"
    assert all(count == 1 for count in found.values()), "a message was stored twice"

    # And the node starts again on the same data after the crash.
    proc, port = await asyncio.to_thread(start_smtp, data_dir)
    try:

        def one_more() -> None:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="crepes.fr", timeout=10) as s:
                s.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], body(99, 0))

        await asyncio.to_thread(one_more)
    finally:
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 20) == 0
