"""Drive an IMAP session through its state machine with written transcripts.

    C: a1 SELECT INBOX
    S: * 3 EXISTS
    S: a1 OK [READ-WRITE] ...

A ``S:`` line ending in ``...`` matches any line with that prefix; ``S: ~``
skips any number of lines up to the next expected one. The session runs on a
real SQLite store (the ``store`` fixture); only the socket is replaced.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mailstack.common.auth import Authenticator
from mailstack.imap.config import ImapConfig
from mailstack.imap.session import Context, Session
from mailstack.limits import Limits

from support import append

USER = "bob@hamburger.edu"
PASSWORD = "hungry"


@dataclass
class ScriptChannel:
    tls_active: bool = False
    compressing: bool = False
    out: bytearray = field(default_factory=bytearray)
    lines: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    def write(self, data: bytes) -> None:
        self.out += data

    async def flush(self) -> None:
        await asyncio.sleep(0)

    async def read_line(self) -> bytes | None:
        return await self.lines.get()

    async def start_tls(self) -> None:
        self.tls_active = True

    def start_compression(self) -> None:
        self.compressing = True

    def take(self) -> list[str]:
        text = self.out.decode("utf-8", "surrogateescape")
        self.out.clear()
        return text.split("\r\n")[:-1]


class Client:
    def __init__(self, store, limits: Limits | None = None, peer: str = "127.0.0.1") -> None:
        self.store = store
        self.channel = ScriptChannel()
        limits = limits or Limits()
        self.ctx = Context(store, limits, ImapConfig(), "mx.test", Authenticator(store, limits))
        self.session = Session(self.ctx, self.channel, peer)

    async def send(self, line: str | bytes) -> list[str]:
        raw = line.encode() if isinstance(line, str) else line
        if not raw.endswith(b"\n"):
            raw += b"\r\n"
        if self.session.selected is not None:
            # Changes other sessions made reach this one through the store's
            # writer thread; give them a moment, as a real client's round trip
            # would.
            await asyncio.sleep(0.01)
        await self.session.run(raw)
        # Let the store's change notifications reach the session.
        for _ in range(5):
            await asyncio.sleep(0)
        return self.channel.take()

    async def transcript(self, text: str) -> None:
        """Run every C: line and check the S: lines that follow it."""
        steps: list[tuple[str, list[str]]] = []
        for raw_line in text.strip().splitlines():
            line = raw_line.strip()
            if line.startswith("C: "):
                steps.append((line[3:], []))
            elif line.startswith("S: ") or line == "S:":
                steps[-1][1].append(line[3:])
            elif line:
                raise ValueError(f"transcript line without C:/S: {line!r}")
        for command, expected in steps:
            got = await self.send(command.replace("\\r\\n", "\r\n"))
            check(command, expected, got)

    async def login(self) -> None:
        got = await self.send(f"l1 LOGIN {USER} {PASSWORD}")
        assert got[-1].startswith("l1 OK"), got


def check(command: str, expected: list[str], got: list[str]) -> None:
    i = 0
    skipping = False
    for want in expected:
        if want == "~":
            skipping = True
            continue
        while True:
            if i >= len(got):
                raise AssertionError(f"{command}: expected {want!r}, got {got}")
            line = got[i]
            i += 1
            if _match(want, line):
                skipping = False
                break
            if not skipping:
                raise AssertionError(f"{command}: expected {want!r}, got {line!r} in {got}")
    if i != len(got) and not skipping:
        raise AssertionError(f"{command}: unexpected lines {got[i:]}")


def _match(want: str, line: str) -> bool:
    if want.endswith("..."):
        return line.startswith(want[:-3])
    return line.rstrip() == want


def message(n: int, subject: str | None = None, extra: str = "", body: str = "") -> bytes:
    subject = subject or f"message {n}"
    return (
        f"From: Alice <alice@crepes.fr>\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <{n}@crepes.fr>\r\n{extra}\r\n"
        f"Hello number {n}.\r\n{body}"
    ).encode()


async def setup_account(store, count: int = 3):
    await store.domain_add("hamburger.edu")
    account = await store.account_add(USER, PASSWORD)
    inbox = await store.mailbox_get(account.id, "INBOX")
    for n in range(1, count + 1):
        await append(store, inbox.id, message(n))
    return account, inbox


async def logged_in(store, count=3):
    """A logged-in client over an account with ``count`` messages in INBOX."""
    account, inbox = await setup_account(store, count)
    c = Client(store)
    await c.login()
    return c, account, inbox


async def two_sessions(store, count=3):
    """Two clients of one account (sharing a context), both with INBOX selected."""
    account, inbox = await setup_account(store, count)
    a = Client(store)
    b = Client(store)
    b.ctx = a.ctx
    b.session.ctx = a.ctx
    for c in (a, b):
        await c.login()
        await c.send("s1 SELECT INBOX")
    return a, b, inbox
