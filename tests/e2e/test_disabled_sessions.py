"""An account disabled (`mailstack user disable`, another process) or
removed loses the sessions it has open, as with Dovecot's `doveadm kick`:
IMAP hears `* BYE` and is closed, SMTP submission `421 4.7.0`, POP3
`-ERR [SYS/PERM]` and is closed without entering UPDATE (its DELE are not
applied), a JMAP EventSource stream ends, a WebSocket closes with 1008;
another account's sessions go on."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import poplib
import smtplib
import subprocess
import sys
import time

import aiohttp
import pytest

from support import append, submission_client

BOB, CAROL, PASSWORD = "bob@example.org", "carol@example.org", "hungry-hippo"
MESSAGE = b"From: ann@example.org\r\nSubject: keep me\r\n\r\nhello\r\n"


@pytest.fixture
async def node(node_factory):
    node = await node_factory(listen=("imap", "pop3", "http", "submission"))
    for user in (BOB, CAROL):
        account = await node.add_user(user, PASSWORD)
        inbox = await node.store.mailbox_get(account.id, "INBOX")
        await append(node.store, inbox.id, MESSAGE)
    return node


def disable(node, address: str) -> None:
    """`mailstack user disable`, run as an administrator would, beside the node."""
    config = node.config.data_dir / "mailstack.toml"
    if not config.exists():
        config.write_text('[node]\nhostname = "mx.test"\n[listen]\n')
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", "user", "disable", address,
         "--data-dir", str(node.config.data_dir)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def imap_session(node, user: str) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
    imap.login(user, PASSWORD)
    imap.select("INBOX")
    return imap


def pop_session(node, user: str) -> poplib.POP3:
    pop = poplib.POP3("127.0.0.1", node.port("pop3"), timeout=10)
    pop.user(user)
    pop.pass_(PASSWORD)
    assert pop.dele(1).startswith(b"+OK")
    return pop


def submission_session(node, user: str) -> smtplib.SMTP:
    return submission_client(node.port("submission"), user, PASSWORD)


async def test_a_disabled_account_loses_its_imap_pop3_smtp_and_push_sessions(node):
    imap = await asyncio.to_thread(imap_session, node, BOB)
    smtp = await asyncio.to_thread(submission_session, node, BOB)
    other = await asyncio.to_thread(imap_session, node, CAROL)
    pop = await asyncio.to_thread(pop_session, node, BOB)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{BOB}:{PASSWORD}".encode()).decode()}
    async with aiohttp.ClientSession() as client:
        async with client.get(
            f"http://127.0.0.1:{node.port('http')}/jmap/eventsource/?types=*&closeafter=no&ping=0",
            headers=auth,
        ) as stream:
            assert stream.status == 200
            assert node.authenticator.logins.held(BOB) == 4
            started = time.monotonic()
            await asyncio.to_thread(disable, node, BOB)
            # The stream ends: everything it sent is read and then EOF.
            await asyncio.wait_for(stream.content.read(), 10)
            ended = time.monotonic() - started
    bye = await asyncio.to_thread(imap.readline)
    assert bye == b"* BYE Account disabled or removed\r\n"
    assert await asyncio.to_thread(imap.readline) == b""  # closed
    farewell = await asyncio.to_thread(pop.file.readline)
    assert farewell.startswith(b"-ERR [SYS/PERM]")
    assert await asyncio.to_thread(pop.file.readline) == b""
    # RFC 5321 §3.8: 421, then the connection closes.
    closing = await asyncio.to_thread(smtp.getreply)
    assert closing[0] == 421 and closing[1].startswith(b"4.7.0"), closing
    with pytest.raises(smtplib.SMTPServerDisconnected):
        await asyncio.to_thread(smtp.noop)
    assert ended < 8
    assert node.authenticator.logins.held(BOB) == 0

    # Carol's session goes on; Bob's DELE was never applied.
    assert (await asyncio.to_thread(other.noop))[0] == "OK"
    await asyncio.to_thread(other.logout)
    account = await node.store.account_get(BOB)
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    assert len(await node.store.messages(inbox.id)) == 1
    # And Bob cannot come back.
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_session, node, BOB)


async def test_a_removed_account_loses_its_sessions(node):
    imap = await asyncio.to_thread(imap_session, node, BOB)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{BOB}:{PASSWORD}".encode()).decode()}
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(
            f"http://127.0.0.1:{node.port('http')}/jmap/ws/", protocols=("jmap",), headers=auth
        ) as ws:
            await node.store.account_remove(BOB)
            closing = await asyncio.wait_for(ws.receive(), 10)
            # RFC 6455 §7.4.1: 1008, policy violation.
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1008
    bye = await asyncio.wait_for(asyncio.to_thread(imap.readline), 10)
    assert bye == b"* BYE Account disabled or removed\r\n"
    # With no session held, nothing watches the directory.
    for _ in range(50):
        if node.authenticator.logins._watch is None:
            break
        await asyncio.sleep(0.1)
    assert node.authenticator.logins._watch is None
