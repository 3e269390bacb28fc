"""COMPRESS=DEFLATE (RFC 4978) end to end: mbsync (isync, a client we did
not write) turns it on and syncs through it; a raw client shows the limit
on inflated octets and the refusal of a corrupt stream."""

from __future__ import annotations

import asyncio
import shutil
import socket
import zlib
from pathlib import Path
from typing import Any

import pytest

from support import TestNode, append

pytestmark = pytest.mark.timeout(90)

USER = "bob@hamburger.edu"
PASSWORD = "hungry"


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
async def test_mbsync_syncs_compressed(node_factory: Any, tmp_path: Path) -> None:
    node: TestNode = await node_factory(listen=("imap",))
    account = await node.add_user(USER, PASSWORD)
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    body = "compressible line of text\r\n" * 400
    for n in range(3):
        await append(node.store, inbox.id, f"Subject: m{n}\r\n\r\n{body}".encode())
    (tmp_path / "mail").mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"IMAPAccount t\nHost 127.0.0.1\nPort {node.port('imap')}\nUser {USER}\n"
        f"Pass {PASSWORD}\nSSLType None\nAuthMechs LOGIN\n\nIMAPStore remote\nAccount t\n\n"
        f"MaildirStore local\nPath {tmp_path}/mail/\nInbox {tmp_path}/mail/INBOX\n\n"
        "Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nSyncState *\n"
    )
    proc = await asyncio.create_subprocess_exec(
        "mbsync", "-Dn", "-c", str(rc), "-a",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "COMPRESS DEFLATE" in text and "OK DEFLATE active" in text, text
    files = sorted((tmp_path / "mail" / "INBOX" / "new").glob("*"))
    assert len(files) == 3
    lf_body = body.replace("\r\n", "\n").encode()  # maildir keeps LF line ends
    assert all(f.read_bytes().replace(b"\r\n", b"\n").endswith(lf_body) for f in files)


class RawClient:
    """Just enough of a client to speak DEFLATE at the server."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inflate: Any = None
        self.deflate: Any = None
        self.buffer = b""

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                break
            self.buffer += self.inflate.decompress(data) if self.inflate else data
        out, self.buffer = self.buffer, b""
        return out

    def send(self, data: bytes) -> None:
        if self.deflate:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def start(self) -> None:
        self.read_until(b"\r\n")
        self.send(f"a LOGIN {USER} {PASSWORD}\r\n".encode())
        assert b"a OK" in self.read_until(b"a OK")
        self.send(b"b COMPRESS DEFLATE\r\n")
        assert b"b OK DEFLATE active" in self.read_until(b"\r\n")
        self.inflate = zlib.decompressobj(-15)
        self.deflate = zlib.compressobj(9, zlib.DEFLATED, -15)


async def test_compressed_commands_and_the_inflated_limit(node_factory: Any) -> None:
    node: TestNode = await node_factory(listen=("imap",), limits={"imap_inflated": 200_000})
    await node.add_user(USER, PASSWORD)

    def scenario() -> None:
        c = RawClient(node.port("imap"))
        c.start()
        c.send(b"c SELECT INBOX\r\nd NOOP\r\n")
        assert b"d OK" in c.read_until(b"d OK")
        # 300,000 octets of commands deflate to about a kilobyte: past the
        # limit the server says BYE and closes, having held a piece at a time.
        c.send(b"e NOOP\r\n" * 37_500)
        rest = c.read_until(b"BYE")
        assert b"* BYE [LIMIT]" in rest, rest
        assert c.sock.recv(100) == b""

    await asyncio.to_thread(scenario)


async def test_corrupt_deflate_data_ends_the_session(node_factory: Any) -> None:
    node: TestNode = await node_factory(listen=("imap",))
    await node.add_user(USER, PASSWORD)

    def scenario() -> None:
        c = RawClient(node.port("imap"))
        c.start()
        c.sock.sendall(b"\xff\xff\xff\xff not deflate")
        assert b"* BYE Bad compressed data" in c.read_until(b"BYE")

    await asyncio.to_thread(scenario)
