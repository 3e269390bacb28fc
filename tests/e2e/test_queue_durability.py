"""The queue survives kill -9: submit to a real `mailstack serve` whose queue
delivers to a remote server (aiosmtpd), SIGKILL it in mid-flow, start it again,
and check that every acknowledged message reached the remote server, and
that a message went twice only if it was in flight at the kill (RFC 5321 §6.1:
the window between the remote's 250 and our commit cannot be closed)."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from mailstack.mime import PARSE_CODEC
from mailstack.store.sqlite import SqliteStore

from support import POLY_ZONE, SubjectRecorder, mailstack_cli, start_serve

SENDERS = 4
PER_DOMAIN = 3


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    proc, ports = start_serve(data_dir)
    return proc, ports["submission"]


def load(port: int, sender: int, acked: list[str], stop: threading.Event) -> None:
    n = 0
    try:
        with smtplib.SMTP("127.0.0.2", port, timeout=10) as s:
            s.login("alice@crepes.fr", "hungry-alice")
            while not stop.is_set():
                subject = f"msg-{sender}-{n}"
                s.sendmail(
                    "alice@crepes.fr",
                    ["ann@poly.edu"],
                    f"From: alice@crepes.fr\r\nSubject: {subject}\r\n\r\nbody {n}\r\n".encode(),
                )
                acked.append(subject)  # only after the 250
                n += 1
    except (smtplib.SMTPException, OSError):
        pass


@pytest.mark.timeout(120)
async def test_sigkill_loses_no_queued_message(node_factory, tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "poly.edu.zone").write_text(POLY_ZONE)
    dns_node = await node_factory(
        listen=("dns",), hostname="ns.test", host="127.0.0.4", dns={"zones_dir": str(zones)}
    )
    recorder = SubjectRecorder()
    controller = Controller(recorder, hostname="127.0.0.5", port=free_port("127.0.0.5"))
    controller.start()
    data_dir = tmp_path / "crepes"
    data_dir.mkdir()
    (data_dir / "mailstack.toml").write_text(
        '[node]\nhostname = "mail.crepes.fr"\n'
        '[listen]\nsubmission = "127.0.0.2:0"\n'
        "[submission]\nallow_plaintext_on_loopback = true\n"
        f"[queue]\nport = {controller.port}\nretry_first = 0.2\npoll = 0.5\n"
        f"connections_per_domain = {PER_DOMAIN}\n"
        f'[dns.resolver]\nforwarders = ["127.0.0.4:{dns_node.port("dns")}"]\n'
    )
    await asyncio.to_thread(mailstack_cli, data_dir, "domain", "add", "crepes.fr")
    await asyncio.to_thread(
        mailstack_cli,
        data_dir,
        "user",
        "add",
        "alice@crepes.fr",
        "--password-stdin",
        stdin="hungry-alice\n",
    )
    proc, port = await asyncio.to_thread(start_server, data_dir)
    acked: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=load, args=(port, i, acked, stop), daemon=True)
        for i in range(SENDERS)
    ]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 150 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join(10)
        acknowledged = set(acked)
        assert len(acknowledged) >= 150

        # Start again: the queue picks up where it was killed.
        proc, port = await asyncio.to_thread(start_server, data_dir)
        deadline = time.monotonic() + 60
        while not acknowledged <= set(recorder.subjects) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        controller.stop()

    delivered = recorder.subjects
    missing = acknowledged - set(delivered)
    assert not missing, f"{len(missing)} acknowledged messages never delivered"
    twice = len(delivered) - len(set(delivered))
    assert twice <= PER_DOMAIN, f"{twice} messages delivered twice"
    store = await SqliteStore.open(data_dir / "mailstack.db", codec=PARSE_CODEC)
    try:
        assert await store.queue_list() == []
    finally:
        await store.close()
