"""A STORE, EXPUNGE or APPEND that got its OK survives a SIGKILL of
`mailstack serve` (RFC 3501 durability as the product promises it)."""

from __future__ import annotations

import asyncio
import imaplib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

USER = "bob@hamburger.edu"
PASSWORD = "hungry-bob"


def mailstack(*args: str, data_dir: Path, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "mailstack.cli", *args, "--data-dir", str(data_dir)],
        input=stdin, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def start(data_dir: Path) -> tuple[subprocess.Popen, int]:
    ports = data_dir / "ports.json"
    ports.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailstack.cli", "serve", "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not ports.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError("mailstack serve did not start")
        time.sleep(0.05)
    return proc, json.loads(ports.read_text())["imap"]


def scenario(data_dir: Path) -> None:
    proc, port = start(data_dir)
    try:
        c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        c.login(USER, PASSWORD)
        for n in range(5):
            assert (
                c.append("INBOX", None, None, f"Subject: m{n}\r\n\r\nbody\r\n".encode())[0] == "OK"
            )
        c.select("INBOX")
        assert c.store("1:2", "+FLAGS", "(\\Flagged)")[0] == "OK"
        assert c.store("5", "+FLAGS", "(\\Deleted)")[0] == "OK"
        assert c.expunge()[0] == "OK"
        # Acknowledged: kill without any chance to flush or close.
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc, port = start(data_dir)
    try:
        c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        c.login(USER, PASSWORD)
        status, data = c.select("INBOX")
        assert data == [b"4"]
        status, data = c.search(None, "FLAGGED")
        assert data == [b"1 2"]
        status, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = [item[1].strip() for item in data if isinstance(item, tuple)]
        assert subjects == [b"Subject: m0", b"Subject: m1", b"Subject: m2", b"Subject: m3"]
        c.logout()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_acknowledged_changes_survive_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    (data_dir / "mailstack.toml").write_text(
        '[node]\nhostname = "hamburger.edu"\n[listen]\nimap = "127.0.0.1:0"\n'
    )
    await asyncio.to_thread(mailstack, "domain", "add", "hamburger.edu", data_dir=data_dir)
    await asyncio.to_thread(
        mailstack, "user", "add", USER, "--password-stdin", data_dir=data_dir, stdin=PASSWORD
    )
    await asyncio.to_thread(scenario, data_dir)
