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
