"""FETCH of a big message: its literals are streamed from the store in
chunks, and the client sees exactly the octets an in-memory FETCH sends."""

from __future__ import annotations

import base64

import pytest
from transcript import Client, setup_account

from mailstack.imap import fetch as fetch_module

from support import append

ATTACHMENT = bytes(range(256)) * 2000  # NULs and all: BINARY needs literal8

BIG = (
    b"From: Alice <alice@crepes.fr>\r\n"
    b"Subject: big one\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n'
    b"\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    + b"a line of text that repeats\r\n" * 20_000
    + b"--b\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    + b"--b--\r\n"
)

ITEMS = [
    "BODY.PEEK[]",
    "RFC822.SIZE BODY.PEEK[TEXT]<1000.300000>",
    "BODY.PEEK[HEADER.FIELDS (Subject From)] BODY.PEEK[1.MIME]",
    "BODY.PEEK[1] BODY.PEEK[2]<0.99>",
    "BODY.PEEK[HEADER] BODY.PEEK[TEXT]<900000.10>",
    "BINARY.PEEK[2] BINARY.PEEK[1]<5.20>",
    "RFC822.HEADER INTERNALDATE",
]


async def _fetch_all(store, inbox_uid, command: str) -> bytes:
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    c.channel.out.clear()
    await c.session.run(f"f1 UID FETCH {inbox_uid} ({command})\r\n".encode())
    out = bytes(c.channel.out)
    await c.session.close()
    return out


@pytest.mark.parametrize("items", ITEMS)
async def test_streamed_fetch_sends_what_an_in_memory_fetch_does(store, monkeypatch, items):
    _account, inbox = await setup_account(store, 1)
    uid = await append(store, inbox.id, BIG)
    assert len(BIG) > fetch_module.STREAM_AT

    read_whole: list[int] = []
    chunks: list[int] = []
    messages_bytes = store.messages_bytes
    message_chunks = store.message_chunks

    async def spy_bytes(mailbox_id, uids):
        read_whole.extend(uids)
        return await messages_bytes(mailbox_id, uids)

    def spy_chunks(*args):
        chunks.append(args[1])
        return message_chunks(*args)

    monkeypatch.setattr(store, "messages_bytes", spy_bytes)
    monkeypatch.setattr(store, "message_chunks", spy_chunks)
    streamed = await _fetch_all(store, uid, items)
    assert uid not in read_whole
    assert chunks
    monkeypatch.setattr(fetch_module, "STREAM_AT", 10 ** 9)
    in_memory = await _fetch_all(store, uid, items)
    assert uid in read_whole
    # BINARY[] of a big message is always a literal8 (RFC 3516 §4.3): the
    # streamed one cannot know beforehand that it holds no NUL.
    assert streamed == in_memory
    assert streamed.endswith(b"f1 OK FETCH completed\r\n")


async def test_binary_of_a_big_message_is_a_literal8(store):
    _account, inbox = await setup_account(store, 1)
    uid = await append(store, inbox.id, BIG)
    out = await _fetch_all(store, uid, "BINARY.PEEK[] BINARY.SIZE[2] BINARY.SIZE[]")
    assert out.startswith(b"* 2 FETCH (UID %d BINARY[] ~{%d}\r\n" % (uid, len(BIG)) + BIG[:50])
    assert BIG + b" BINARY.SIZE[2] %d BINARY.SIZE[] %d" % (len(ATTACHMENT), len(BIG)) in out


async def test_a_message_expunged_mid_literal_ends_the_connection(store, monkeypatch):
    _account, inbox = await setup_account(store, 1)
    uid = await append(store, inbox.id, BIG)
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    flushes = 0
    flush = c.channel.flush

    async def expunge_after_first_chunk():
        nonlocal flushes
        flushes += 1
        if flushes == 2:
            await store.expunge(inbox.id, [uid], require_deleted=False)
        await flush()

    c.channel.flush = expunge_after_first_chunk
    c.channel.out.clear()
    await c.session.run(f"f1 UID FETCH {uid} BODY.PEEK[]\r\n".encode())
    out = bytes(c.channel.out)
    assert c.session.closing
    assert b"f1 " not in out[-40:]
    assert len(out) < len(BIG)
