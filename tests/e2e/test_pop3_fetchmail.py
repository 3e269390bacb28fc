"""POP3 with fetchmail (Debian package `fetchmail`), a client we did not write.

Download-and-delete over plaintext on loopback, and download-and-keep over
STLS with fetchmail's own UIDL bookkeeping: a second run finds nothing new.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from support import append

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed"),
]

USER = "bob@crepes.fr"
PASSWORD = "hungry"


async def fetchmail(
    home: Path, port: int, options: str, server_options: str = ""
) -> tuple[int, str]:
    """Run fetchmail once; exit status 0 = mail fetched, 1 = no mail (fetchmail(1))."""
    out = home / "delivered.mbox"
    rc = home / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll 127.0.0.1 service {port} protocol POP3 auth password {server_options}\n"
        f'  user "{USER}" there with password "{PASSWORD}" is "bob" here\n'
        f"  options {options} mda \"/bin/sh -c 'cat >> {out}'\"\n"
    )
    rc.chmod(0o600)
    env = dict(os.environ, FETCHMAILHOME=str(home), HOME=str(home))
    proc = await asyncio.create_subprocess_exec(
        "fetchmail", "-f", str(rc), "-v", "--nodetach", "--nosyslog",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, output.decode(errors="replace")


async def setup(node_factory, tmp_path: Path, count: int):
    node = await node_factory(listen=("pop3",))
    account = await node.add_user(USER, PASSWORD)
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    for n in range(count):
        raw = f"From: alice@crepes.fr\r\nSubject: note {n}\r\n\r\nbody {n}\r\n.dot line\r\n"
        await append(node.store, inbox.id, raw.encode())
    home = tmp_path / "fetchmail"
    home.mkdir()
    return node, inbox.id, home


async def test_fetchmail_download_and_delete(node_factory, tmp_path):
    node, inbox, home = await setup(node_factory, tmp_path, 3)
    status, log = await fetchmail(home, node.port("pop3"), 'fetchall sslproto ""')
    assert status == 0, log
    delivered = (home / "delivered.mbox").read_bytes()
    for n in range(3):
        assert f"Subject: note {n}".encode() in delivered
    assert b"\n.dot line\n" in delivered  # byte-stuffing undone by the client
    assert "POP3> DELE 3" in log
    assert await node.store.messages(inbox) == []

    status, log = await fetchmail(home, node.port("pop3"), 'fetchall sslproto ""')
    assert status == 1, log  # 1: no mail
    assert "No mail" in log or "no mail" in log


async def test_fetchmail_download_and_keep_over_stls(node_factory, tmp_path):
    node, inbox, home = await setup(node_factory, tmp_path, 2)
    cert = node.config.cert_path
    options = f'keep sslproto "auto" sslcertck sslcertfile "{cert}" sslcommonname "mx.test"'
    status, log = await fetchmail(home, node.port("pop3"), options, "uidl")
    assert status == 0, log
    assert "POP3> STLS" in log and "DELE" not in log
    assert (home / "delivered.mbox").read_bytes().count(b"Subject: note") == 2
    assert len(await node.store.messages(inbox)) == 2

    # fetchmail remembers the unique-ids it has seen; a second run finds nothing
    # new only if the server's UIDL values did not change.
    status, log = await fetchmail(home, node.port("pop3"), options, "uidl")
    assert status == 1, log
    assert (home / "delivered.mbox").read_bytes().count(b"Subject: note") == 2
    assert len(await node.store.messages(inbox)) == 2
