"""Issue 15 items 8 and 9: what a big message costs the node.

Readers that ask for a big message and then read nothing (IMAP FETCH
BODY[], POP3 RETR) must cost their socket buffers, not the message; SMTP
sessions sending big messages without their end must cost a bounded amount
of memory however many there are (their data is spooled to disk). Every
figure is the node's RSS, read from /proc (the node runs in this process);
real clients (imaplib, poplib, smtplib) check what a reader gets.
"""

from __future__ import annotations

import asyncio
import gc
import imaplib
import poplib
import smtplib
import time
from pathlib import Path
from typing import Any

import pytest

from mailstack.store import DeliveryTarget

from support import TestNode, deliver

pytestmark = pytest.mark.timeout(120)

SIZE = 16 * 1024 * 1024
READERS = 3
PASSWORD = "hungry"


def rss() -> int:
    """The node's (this process's) resident set, in octets."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def big_message(size: int = SIZE) -> bytes:
    head = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: big\r\n\r\n"
    line = b".a line of a big message, starting with a dot for POP3 to stuff\r\n"
    return head + line * ((size - len(head)) // len(line))


async def settled_rss() -> int:
    gc.collect()
    await asyncio.sleep(0.2)
    return rss()


async def stalled_readers(port: int, commands: list[bytes], count: int) -> list[Any]:
    """``count`` clients that send their commands and then read nothing."""
    writers = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()  # the greeting
        for command in commands:
            writer.write(command)
            await writer.drain()
            await asyncio.sleep(0.05)
        writers.append(writer)
    # The node writes until each socket's buffers are full, then waits.
    await asyncio.sleep(2.0)
    return writers


async def test_imap_readers_of_a_big_message_that_read_nothing(node_factory):
    node: TestNode = await node_factory(listen=("imap",))
    accounts = [await node.add_user("bob@hamburger.edu", PASSWORD)]
    raw = big_message()
    await deliver(node.store, raw, [DeliveryTarget(a.id) for a in accounts])
    before = await settled_rss()
    writers = await stalled_readers(
        node.port("imap"),
        [b"a LOGIN bob@hamburger.edu hungry\r\n", b"b SELECT INBOX\r\n",
         b"c FETCH 1:* (BODY[])\r\n"],
        READERS,
    )
    grown = rss() - before
    for writer in writers:
        writer.close()
    # Before streaming, each reader held the message two or three times over.
    assert grown < SIZE, f"{READERS} stalled FETCH BODY[] readers cost {grown >> 20} MB"

    def fetch() -> bytes:
        client = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=30)
        client.login("bob@hamburger.edu", PASSWORD)
        client.select("INBOX")
        status, data = client.fetch("1", "(BODY.PEEK[] BODY.PEEK[TEXT]<3.20>)")
        client.logout()
        assert status == "OK"
        return data[0][1], data[1][1]

    whole, part = await asyncio.to_thread(fetch)
    assert whole == raw
    body = raw[raw.index(b"\r\n\r\n") + 4 :]
    assert part == body[3:23]


async def test_pop3_readers_of_a_big_message_that_read_nothing(node_factory):
    node: TestNode = await node_factory(listen=("pop3",))
    accounts = [await node.add_user(f"u{n}@hamburger.edu", PASSWORD) for n in range(READERS + 1)]
    raw = big_message()
    await deliver(node.store, raw, [DeliveryTarget(a.id) for a in accounts])
    before = await settled_rss()
    writers = []
    for n in range(READERS):
        writers += await stalled_readers(
            node.port("pop3"),
            [f"USER u{n}@hamburger.edu\r\n".encode(), b"PASS hungry\r\n", b"RETR 1\r\n"],
            1,
        )
    grown = rss() - before
    for writer in writers:
        writer.close()
    assert grown < SIZE, f"{READERS} stalled RETR readers cost {grown >> 20} MB"

    def retrieve() -> tuple[list[bytes], list[bytes]]:
        client = poplib.POP3("127.0.0.1", node.port("pop3"), timeout=30)
        client.user(f"u{READERS}@hamburger.edu")
        client.pass_(PASSWORD)
        _resp, lines, _octets = client.retr(1)
        _resp, top, _octets = client.top(1, 2)
        client.quit()
        return lines, top

    started = time.monotonic()
    lines, top = await asyncio.to_thread(retrieve)
    assert time.monotonic() - started < 30
    # poplib undoes the byte-stuffing and splits the lines.
    delivered = b"\r\n".join(lines) + b"\r\n"
    assert delivered.endswith(raw)
    assert top[-3:] == [b"", raw.split(b"\r\n")[4], raw.split(b"\r\n")[5]]


async def send_without_end(port: int, data: bytes) -> asyncio.StreamWriter:
    """An SMTP client that sends a message's data and never its final dot."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"EHLO crepes.fr\r\nMAIL FROM:<alice@crepes.fr>\r\n"
                 b"RCPT TO:<bob@hamburger.edu>\r\nDATA\r\n")
    for _ in range(4):
        while not (await reader.readline()).startswith((b"250 ", b"354 ")):
            pass
    view = memoryview(data)
    for start in range(0, len(view), 256 * 1024):
        writer.write(view[start : start + 256 * 1024])
        await writer.drain()
    return writer


async def test_smtp_sessions_sending_big_messages_without_their_end(node_factory):
    node: TestNode = await node_factory(listen=("smtp",))
    await node.add_user("bob@hamburger.edu", PASSWORD)
    spool = node.config.data_dir / "spool"
    data = big_message()
    before = await settled_rss()
    writers = await asyncio.gather(
        *(send_without_end(node.port("smtp"), data) for _ in range(READERS))
    )
    await asyncio.sleep(1.0)  # the node has read everything that was sent
    grown = rss() - before
    files = sorted(spool.glob("*"))
    modes = {f.stat().st_mode & 0o777 for f in files}
    sizes = sum(f.stat().st_size for f in files)
    for writer in writers:
        writer.close()
    # Before spooling, each session held its message (and more) in memory.
    assert grown < SIZE, f"{READERS} unfinished 16 MB messages cost {grown >> 20} MB"
    assert len(files) == READERS and modes == {0o600}
    assert sizes > READERS * (SIZE - 2 * node.limits.smtp_spool_threshold)
    for _ in range(50):
        if not any(spool.iterdir()):
            break
        await asyncio.sleep(0.1)
    assert not any(spool.iterdir()), "the spool files outlived their sessions"

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", node.port("smtp"), timeout=60) as client:
            client.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], data)

    await asyncio.to_thread(send)
    account = await node.store.account_get("bob@hamburger.edu")
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    [meta] = await node.store.messages(inbox.id)
    stored = await node.store.message_bytes(inbox.id, meta.uid)
    assert stored.endswith(b"\r\n\r\n" + data[data.index(b"\r\n\r\n") + 4 :])
    assert b"Subject: big\r\n" in stored
    assert not any(spool.iterdir())
