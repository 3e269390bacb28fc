"""POP3 end to end: a real node on 127.0.0.1 driven by Python's poplib and raw sockets.

RFC 1939 download-and-delete and download-and-keep, RFC 2595 STLS and pop3s,
RFC 5034 AUTH, the RFC 2449 response codes, and the lecture's dialogue.
"""

from __future__ import annotations

import asyncio
import base64
import poplib
import socket
import ssl
import struct
from typing import Any

import pytest

from support import TestNode, append, open_fast_store

pytestmark = pytest.mark.timeout(60)

USER = "bob@crepes.fr"
PASSWORD = "hungry"


def message(number: int, size: int = 0) -> bytes:
    head = f"From: alice@crepes.fr\r\nTo: {USER}\r\nSubject: message {number}\r\n\r\n".encode()
    body = f"This is message {number}.\r\n.a line starting with a dot\r\n".encode()
    raw = head + body
    if size:
        assert size >= len(raw) + 2
        raw += b"x" * (size - len(raw) - 2) + b"\r\n"
    return raw


async def pop_node(node_factory: Any, count: int = 2, sizes: tuple[int, ...] = (), **table: Any):
    node: TestNode = await node_factory(listen=("pop3", "pop3s"), **table)
    account = await node.add_user(USER, PASSWORD)
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    for n in range(1, count + 1):
        size = sizes[n - 1] if sizes else 0
        await append(node.store, inbox.id, message(n, size))
    return node, inbox.id


def login(port: int) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    client.user(USER)
    client.pass_(PASSWORD)
    return client


def client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    """A line-level POP3 client over a plain socket, for exact bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def line(self) -> bytes:
        return self.file.readline()

    def send(self, line: bytes | str) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + b"\r\n")

    def command(self, line: bytes | str) -> bytes:
        self.send(line)
        return self.line()

    def multiline(self) -> list[bytes]:
        lines = []
        while (line := self.line()) != b".\r\n":
            assert line, "connection closed in a multi-line response"
            lines.append(line)
        return lines

    def close(self) -> None:
        self.file.close()
        self.sock.close()


async def test_download_and_delete_then_empty(node_factory):
    node, inbox = await pop_node(node_factory, count=3)
    port = node.port("pop3")

    def first_session() -> list[list[bytes]]:
        client = login(port)
        count, _ = client.stat()
        bodies = []
        for n in range(1, count + 1):
            bodies.append(client.retr(n)[1])
            client.dele(n)
        assert client.quit().startswith(b"+OK")
        return bodies

    bodies = await asyncio.to_thread(first_session)
    assert len(bodies) == 3
    assert bodies[0][2] == b"Subject: message 1"
    # poplib removes the byte-stuffing: the client sees the original line.
    assert b".a line starting with a dot" in bodies[0]

    def second_session() -> tuple[int, int]:
        client = login(port)
        stat = client.stat()
        client.quit()
        return stat

    assert await asyncio.to_thread(second_session) == (0, 0)
    assert await node.store.messages(inbox) == []


async def test_download_and_keep_uidl_stable_across_sessions_and_restart(node_factory):
    node, inbox = await pop_node(node_factory, count=2)

    def session(port: int) -> list[bytes]:
        client = login(port)
        uidl = client.uidl()[1]
        for n in range(1, len(uidl) + 1):
            client.retr(n)
        client.quit()
        return uidl

    first = await asyncio.to_thread(session, node.port("pop3"))
    second = await asyncio.to_thread(session, node.port("pop3"))
    assert first == second and len(first) == 2
    metas = await node.store.messages(inbox)
    assert all("\\Seen" in m.flags for m in metas)

    # A new message gets a new unique-id; the old ones keep theirs.
    await append(node.store, inbox, message(3))
    await node.stop()
    restarted = TestNode(node.config, store_factory=open_fast_store)
    await restarted.start()
    try:
        third = await asyncio.to_thread(session, restarted.port("pop3"))
    finally:
        await restarted.stop()
    assert third[:2] == first
    assert third[2].split()[1] not in {line.split()[1] for line in first}


async def test_rset_undoes_dele(node_factory):
    node, inbox = await pop_node(node_factory, count=2)

    def run() -> tuple[tuple[int, int], bytes]:
        client = login(node.port("pop3"))
        client.dele(1)
        client.dele(2)
        assert client.stat()[0] == 0
        rset = client.rset()
        stat = client.stat()
        client.quit()
        return stat, rset

    stat, rset = await asyncio.to_thread(run)
    assert stat[0] == 2 and rset.startswith(b"+OK maildrop has 2 messages")
    assert len(await node.store.messages(inbox)) == 2


async def test_killed_connection_deletes_nothing(node_factory):
    node, inbox = await pop_node(node_factory, count=2)

    def run() -> None:
        raw = Raw(node.port("pop3"))
        raw.line()
        raw.command(f"USER {USER}")
        assert raw.command(f"PASS {PASSWORD}").startswith(b"+OK")
        assert raw.command("DELE 1").startswith(b"+OK")
        assert raw.command("DELE 2").startswith(b"+OK")
        # Abort without QUIT: a TCP reset.
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()

    await asyncio.to_thread(run)

    def again() -> tuple[int, int]:
        client = login(node.port("pop3"))  # also shows the lock was released
        stat = client.stat()
        client.quit()
        return stat

    assert (await asyncio.to_thread(again))[0] == 2
    assert len(await node.store.messages(inbox)) == 2


async def test_lecture_dialogue_byte_for_byte(node_factory):
    """The POP3 dialogue of the lecture (seeds/000, "POP3 protocol"), replayed."""
    node, _ = await pop_node(node_factory, count=0)
    await node.add_user("bob@hamburger.edu", "hungry")
    account = await node.store.account_get("bob@hamburger.edu")
    box = await node.store.mailbox_get(account.id, "INBOX")
    first, second = message(1, 498), message(2, 912)
    await append(node.store, box.id, first)
    await append(node.store, box.id, second)

    def run() -> list[bytes]:
        raw = Raw(node.port("pop3"))
        got = [raw.line()]
        got.append(raw.command("user bob@hamburger.edu"))
        got.append(raw.command("pass hungry"))
        got.append(raw.command("list"))
        got += raw.multiline()
        got.append(raw.command("retr 1"))
        got += raw.multiline()
        got.append(raw.command("dele 1"))
        got.append(raw.command("retr 2"))
        got += raw.multiline()
        got.append(raw.command("dele 2"))
        got.append(raw.command("quit"))
        got.append(raw.line())  # EOF after the server signs off
        raw.close()
        return got

    got = await asyncio.to_thread(run)
    stuff = [b"." + line if line.startswith(b".") else line
             for line in first.splitlines(keepends=True)]
    stuff2 = [b"." + line if line.startswith(b".") else line
              for line in second.splitlines(keepends=True)]
    assert any(line.startswith(b"..") for line in stuff)
    assert got == [
        b"+OK POP3 server ready\r\n",
        b"+OK\r\n",
        b"+OK user successfully logged on\r\n",
        b"+OK 2 messages (1410 octets)\r\n",
        b"1 498\r\n",
        b"2 912\r\n",
        b"+OK 498 octets\r\n",
        *stuff,
        b"+OK message 1 deleted\r\n",
        b"+OK 912 octets\r\n",
        *stuff2,
        b"+OK message 2 deleted\r\n",
        b"+OK POP3 server signing off\r\n",
        b"",
    ]
    assert await node.store.messages(box.id) == []


async def test_second_session_gets_in_use(node_factory):
    node, _ = await pop_node(node_factory, count=1)
    port = node.port("pop3")

    def run() -> bytes:
        holder = login(port)
        other = poplib.POP3("127.0.0.1", port, timeout=10)
        other.user(USER)
        with pytest.raises(poplib.error_proto) as refused:
            other.pass_(PASSWORD)
        # Still in AUTHORIZATION: once the holder quits, the lock is free.
        holder.quit()
        other.user(USER)
        assert other.pass_(PASSWORD).startswith(b"+OK")
        other.quit()
        return refused.value.args[0]

    assert (await asyncio.to_thread(run)).startswith(b"-ERR [IN-USE]")


async def test_failed_logins_are_throttled_and_closed(node_factory):
    node, _ = await pop_node(
        node_factory, count=1, limits={"login_failures": 2, "login_failure_delay": 0.05}
    )
    port = node.port("pop3")

    def run() -> tuple[list[bytes], bytes, bytes]:
        raw = Raw(port)
        raw.line()
        replies = []
        for _ in range(2):
            raw.command(f"USER {USER}")
            replies.append(raw.command("PASS wrong"))
        closed = raw.line()
        raw.close()
        # A new connection from the same address starts where that one ended.
        raw = Raw(port)
        raw.line()
        raw.command(f"USER {USER}")
        again = raw.command("PASS wrong")
        after = raw.line()
        raw.close()
        return replies, closed, again + after

    replies, closed, again = await asyncio.to_thread(run)
    assert replies[0] == b"-ERR [AUTH] invalid user name or password\r\n"
    assert replies[1].startswith(b"-ERR [AUTH] too many failed logins")
    assert closed == b""
    assert again.startswith(b"-ERR [AUTH] too many failed logins") and again.endswith(b"\r\n")


async def test_autologout_closes_and_deletes_nothing(node_factory):
    node, inbox = await pop_node(node_factory, count=1, limits={"pop3_idle_timeout": 0.3})

    def run() -> tuple[bytes, bytes]:
        raw = Raw(node.port("pop3"))
        raw.line()
        raw.command(f"USER {USER}")
        raw.command(f"PASS {PASSWORD}")
        deleted = raw.command("DELE 1")
        eof = raw.line()  # blocks until the server gives up on us
        raw.close()
        return deleted, eof

    deleted, eof = await asyncio.to_thread(run)
    # RFC 1939 §3: closed without a response, and without entering UPDATE.
    assert deleted.startswith(b"+OK") and eof == b""
    assert len(await node.store.messages(inbox)) == 1

    def again() -> tuple[int, int]:
        client = login(node.port("pop3"))  # the lock went with the session
        stat = client.stat()
        client.quit()
        return stat

    assert (await asyncio.to_thread(again))[0] == 1


async def test_stls_required_when_plaintext_not_allowed(node_factory):
    node, _ = await pop_node(node_factory, count=1, pop3={"allow_plaintext_on_loopback": False})

    def run() -> tuple[bytes, dict, dict, tuple[int, int]]:
        client = poplib.POP3("127.0.0.1", node.port("pop3"), timeout=10)
        before = client.capa()
        with pytest.raises(poplib.error_proto) as refused:
            client.user(USER)
        client.stls(client_context())
        after = client.capa()
        client.user(USER)
        client.pass_(PASSWORD)
        stat = client.stat()
        client.quit()
        return refused.value.args[0], before, after, stat

    refused, before, after, stat = await asyncio.to_thread(run)
    assert b"TLS" in refused
    assert "STLS" in before and "USER" not in before and "SASL" not in before
    assert "STLS" not in after and "USER" in after and after["SASL"] == ["PLAIN", "LOGIN"]
    assert stat[0] == 1


async def test_stls_discards_pipelined_plaintext(node_factory):
    node, _ = await pop_node(node_factory, count=1)

    def run() -> bytes:
        raw = Raw(node.port("pop3"))
        raw.line()
        # A command injected behind STLS must not run after the handshake.
        raw.sock.sendall(b"STLS\r\nCAPA\r\n")
        assert raw.line().startswith(b"+OK")
        tls = client_context().wrap_socket(raw.sock, server_hostname="mx.test")
        tls.sendall(b"NOOP\r\n")
        reply = tls.recv(100)
        tls.close()
        return reply

    assert await asyncio.to_thread(run) == b"-ERR NOOP not valid in the AUTHORIZATION state\r\n"


async def test_pop3s_implicit_tls(node_factory):
    node, _ = await pop_node(node_factory, count=2)

    def run() -> tuple[dict, tuple[int, int], list[bytes]]:
        client = poplib.POP3_SSL("127.0.0.1", node.port("pop3s"), context=client_context(),
                                 timeout=10)
        capa = client.capa()
        client.user(USER)
        client.pass_(PASSWORD)
        stat = client.stat()
        top = client.top(1, 0)[1]
        client.quit()
        return capa, stat, top

    capa, stat, top = await asyncio.to_thread(run)
    assert "STLS" not in capa and "USER" in capa
    assert stat[0] == 2
    assert top[-1] == b"" and b"Subject: message 1" in top and b"This is message 1." not in top


async def test_auth_plain_and_login(node_factory):
    node, _ = await pop_node(node_factory, count=1)
    port = node.port("pop3")

    def run() -> list[bytes]:
        got = []
        raw = Raw(port)
        raw.line()
        token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        got.append(raw.command(f"AUTH PLAIN {token}"))
        got.append(raw.command("STAT"))
        got.append(raw.command("QUIT"))
        raw.close()
        raw = Raw(port)
        raw.line()
        got.append(raw.command("AUTH LOGIN"))
        got.append(raw.command(base64.b64encode(USER.encode())))
        got.append(raw.command(base64.b64encode(b"wrong")))
        got.append(raw.command("AUTH LOGIN"))
        got.append(raw.command("*"))
        raw.close()
        return got

    got = await asyncio.to_thread(run)
    assert got == [
        b"+OK user successfully logged on\r\n",
        b"+OK 1 " + str(len(message(1))).encode() + b"\r\n",
        b"+OK POP3 server signing off\r\n",
        b"+ VXNlcm5hbWU6\r\n",
        b"+ UGFzc3dvcmQ6\r\n",
        b"-ERR [AUTH] invalid user name or password\r\n",
        b"+ VXNlcm5hbWU6\r\n",
        b"-ERR authentication cancelled\r\n",
    ]


async def test_bad_input_gets_err_and_the_session_goes_on(node_factory):
    node, _ = await pop_node(node_factory, count=1)

    def run() -> list[bytes]:
        raw = Raw(node.port("pop3"))
        raw.line()
        got = [raw.command(b"X" * 20000)]
        got.append(raw.command("FOO"))
        got.append(raw.command("STAT"))
        raw.command(f"USER {USER}")
        raw.command(f"PASS {PASSWORD}")
        got.append(raw.command("RETR 7"))
        got.append(raw.command("RETR one"))
        got.append(raw.command("LIST 1"))
        raw.close()
        return got

    got = await asyncio.to_thread(run)
    assert got[0] == b"-ERR line too long\r\n"
    assert got[1] == b"-ERR unknown command\r\n"
    assert got[2] == b"-ERR STAT not valid in the AUTHORIZATION state\r\n"
    assert got[3] == b"-ERR no such message, only 1 messages in maildrop\r\n"
    assert got[4].startswith(b"-ERR invalid number")
    assert got[5].startswith(b"+OK 1 ")


async def test_pipelined_commands(node_factory):
    node, _ = await pop_node(node_factory, count=2)

    def run() -> list[bytes]:
        raw = Raw(node.port("pop3"))
        raw.line()
        raw.sock.sendall(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nUIDL 2\r\nQUIT\r\n".encode())
        got = [raw.line() for _ in range(5)]
        raw.close()
        return got

    got = await asyncio.to_thread(run)
    assert got[0] == b"+OK\r\n" and got[1].startswith(b"+OK user")
    assert got[2].startswith(b"+OK 2 ") and got[3].startswith(b"+OK 2 ")
    assert got[4] == b"+OK POP3 server signing off\r\n"


async def test_out_of_order_retrieval_and_vanished_message(node_factory):
    node, inbox = await pop_node(node_factory, count=4)

    def run(step) -> list[bytes]:
        raw = Raw(node.port("pop3"))
        raw.line()
        raw.command(f"USER {USER}")
        raw.command(f"PASS {PASSWORD}")
        got = step(raw)
        raw.command("QUIT")
        raw.close()
        return got

    def out_of_order(raw: Raw) -> list[bytes]:
        got = []
        for n in (3, 1, 2, 4, 1):
            assert raw.command(f"RETR {n}").startswith(b"+OK")
            got.append(b"".join(raw.multiline()))
        return got

    bodies = await asyncio.to_thread(run, out_of_order)
    for body, n in zip(bodies, (3, 1, 2, 4, 1), strict=True):
        assert f"Subject: message {n}\r\n".encode() in body

    # An IMAP client expunges message 2 while the POP3 session is open.
    session_open = asyncio.Event()
    expunged = asyncio.Event()

    def vanished(raw: Raw) -> list[bytes]:
        session_open.set()
        asyncio.run_coroutine_threadsafe(expunged.wait(), loop).result(10)
        return [raw.command("RETR 2"), raw.command("LIST 2")]

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(asyncio.to_thread(run, vanished))
    await session_open.wait()
    uids = [m.uid for m in await node.store.messages(inbox)]
    await node.store.expunge(inbox, [uids[1]], require_deleted=False)
    expunged.set()
    retr, listing = await task
    assert retr == b"-ERR message 2 is no longer available\r\n"
    assert listing.startswith(b"+OK 2 ")  # the maildrop listing is fixed for the session


async def test_login_delay(node_factory):
    node, _ = await pop_node(node_factory, count=1, pop3={"login_delay": 3600})

    def run() -> tuple[dict, bytes]:
        client = login(node.port("pop3"))
        capa = client.capa()
        client.quit()
        again = poplib.POP3("127.0.0.1", node.port("pop3"), timeout=10)
        again.user(USER)
        with pytest.raises(poplib.error_proto) as refused:
            again.pass_(PASSWORD)
        again.quit()
        return capa, refused.value.args[0]

    capa, refused = await asyncio.to_thread(run)
    assert capa["LOGIN-DELAY"] == ["3600"]
    assert refused.startswith(b"-ERR [LOGIN-DELAY]")


async def test_expire_zero_removes_what_was_retrieved(node_factory):
    node, inbox = await pop_node(node_factory, count=2, pop3={"expire": 0})

    def run() -> dict:
        client = login(node.port("pop3"))
        capa = client.capa()
        client.retr(2)
        client.quit()
        return capa

    capa = await asyncio.to_thread(run)
    assert capa["EXPIRE"] == ["0"]
    remaining = await node.store.messages(inbox)
    assert len(remaining) == 1 and "\\Seen" not in remaining[0].flags


async def test_quit_marks_seen_what_was_not_and_leaves_seen_ones_alone(node_factory):
    node, inbox = await pop_node(node_factory, count=3)
    await node.store.store_flags(inbox, [1], ("\\Seen",), "add")
    before = {m.uid: m for m in await node.store.messages(inbox)}

    def run() -> None:
        client = login(node.port("pop3"))
        for n in (1, 2):
            client.retr(n)
        client.quit()

    await asyncio.to_thread(run)
    after = {m.uid: m for m in await node.store.messages(inbox)}
    assert "\\Seen" in after[1].flags and "\\Seen" in after[2].flags
    assert "\\Seen" not in after[3].flags  # never retrieved
    assert after[1].modseq == before[1].modseq  # no write for what was already seen
    assert after[2].modseq > before[2].modseq


async def test_in_order_download_across_read_ahead_batches(node_factory):
    # More messages than one read-ahead batch holds, with TOP and DELE mixed in.
    node, inbox = await pop_node(node_factory, count=75)

    def run() -> list[tuple[int, list[bytes]]]:
        client = login(node.port("pop3"))
        got = []
        for n in range(1, 76):
            if n % 10 == 0:
                client.top(n, 0)
            got.append((n, client.retr(n)[1]))
            if n % 7 == 0:
                client.dele(n)
        client.quit()
        return got

    for n, lines in await asyncio.to_thread(run):
        assert lines[2] == f"Subject: message {n}".encode()
    assert len(await node.store.messages(inbox)) == 75 - 75 // 7


async def test_trace_prints_the_dialogue_without_secrets(node_factory, capsys):
    node = await node_factory(listen=("pop3",), trace=True)
    await node.add_user(USER, PASSWORD)
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()

    def run() -> None:
        client = login(node.port("pop3"))
        client.stat()
        client.quit()
        raw = Raw(node.port("pop3"))
        raw.line()
        raw.command(f"AUTH PLAIN {token}")
        raw.command("QUIT")
        raw.close()

    await asyncio.to_thread(run)
    await node.stop()
    out = capsys.readouterr().out
    assert "S: +OK POP3 server ready" in out
    assert f"C: USER {USER}" in out and "C: PASS ****" in out
    assert "C: AUTH PLAIN ****" in out
    assert PASSWORD not in out and token not in out
    assert "S: +OK POP3 server signing off" in out


async def test_too_many_sessions_get_sys_temp(node_factory):
    node, _ = await pop_node(node_factory, count=0, limits={"pop3_sessions": 1})

    def run() -> tuple[bytes, bytes, bytes]:
        first = Raw(node.port("pop3"))
        greeting = first.line()
        second = Raw(node.port("pop3"))
        refused, eof = second.line(), second.line()
        second.close()
        first.close()
        return greeting, refused, eof

    greeting, refused, eof = await asyncio.to_thread(run)
    assert greeting == b"+OK POP3 server ready\r\n"
    assert refused == b"-ERR [SYS/TEMP] too many sessions, try again later\r\n" and eof == b""


async def test_a_store_away_at_retr_is_sys_temp_and_the_session_goes_on(
    node_factory: Any, monkeypatch: Any
) -> None:
    """A store that cannot be reached (a shared PostgreSQL restarting) is
    `-ERR [SYS/TEMP]` (RFC 3206), not "no longer available"; the same
    session retrieves the message once it is back."""
    from mailstack.errors import StoreUnavailable

    node, _inbox = await pop_node(node_factory)
    store = node.store
    real = store.message_bytes, store.messages_bytes

    async def away(*args: Any) -> Any:
        raise StoreUnavailable("the PostgreSQL store is unavailable: 127.0.0.1:5432 refused")

    monkeypatch.setattr(store, "message_bytes", away)
    monkeypatch.setattr(store, "messages_bytes", away)

    def dialogue() -> tuple[str, bytes]:
        client = login(node.port("pop3"))
        try:
            with pytest.raises(poplib.error_proto) as refused:
                client.retr(1)
            monkeypatch.setattr(store, "message_bytes", real[0])
            monkeypatch.setattr(store, "messages_bytes", real[1])
            _resp, lines, _octets = client.retr(1)
            return str(refused.value), b"\r\n".join(lines)
        finally:
            client.quit()

    refusal, text = await asyncio.to_thread(dialogue)
    assert refusal.startswith("b'-ERR [SYS/TEMP]") and "5432" not in refusal
    assert b"This is message 1." in text


async def test_a_store_away_at_a_streamed_retr_is_sys_temp(
    node_factory: Any, monkeypatch: Any
) -> None:
    """The same for a message big enough to be sent from the store's chunks."""
    from mailstack.errors import StoreUnavailable
    from mailstack.pop3.server import STREAM_AT

    node, inbox = await pop_node(node_factory, count=0)
    store = node.store
    lines = b"a line of a big message, short enough for poplib\r\n" * (STREAM_AT // 50 + 100)
    await append(store, inbox, b"Subject: big\r\n\r\n" + lines)
    real = store.message_chunks

    async def away(*args: Any) -> Any:
        raise StoreUnavailable("the PostgreSQL store is unavailable")
        yield b""  # an async generator, as message_chunks is

    monkeypatch.setattr(store, "message_chunks", away)

    def dialogue() -> tuple[str, int]:
        client = login(node.port("pop3"))
        try:
            with pytest.raises(poplib.error_proto) as refused:
                client.retr(1)
            monkeypatch.setattr(store, "message_chunks", real)
            _resp, _lines, octets = client.retr(1)
            return str(refused.value), octets
        finally:
            client.quit()

    refusal, octets = await asyncio.to_thread(dialogue)
    assert refusal.startswith("b'-ERR [SYS/TEMP]")
    assert octets >= STREAM_AT
