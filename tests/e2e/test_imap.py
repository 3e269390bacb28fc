"""IMAP end to end: a real node on 127.0.0.1 driven by Python's imaplib.

RFC 3501 core (LOGIN, SELECT, FETCH, STORE, SEARCH, COPY, EXPUNGE, APPEND,
LIST, STATUS), UIDPLUS/MOVE, IDLE wake-ups from SMTP delivery and from other
sessions, STARTTLS and imaps, limits.
"""

from __future__ import annotations

import asyncio
import imaplib
import re
import smtplib
import socket
import ssl
import time
from typing import Any

import pytest

from support import TestNode, append

pytestmark = pytest.mark.timeout(60)

USER = "bob@hamburger.edu"
PASSWORD = "hungry"


def message(n: int, subject: str | None = None, body: str = "") -> bytes:
    subject = subject or f"message {n}"
    return (
        f"From: Alice <alice@crepes.fr>\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <{n}@crepes.fr>\r\n\r\n"
        f"Hello number {n}.\r\n{body}"
    ).encode()


async def imap_node(node_factory: Any, count: int = 3, **table: Any) -> TestNode:
    node: TestNode = await node_factory(listen=("imap", "imaps", "smtp"), **table)
    account = await node.add_user(USER, PASSWORD)
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    for n in range(1, count + 1):
        await append(node.store, inbox.id, message(n))
    return node


def connect(node: TestNode) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
    client.login(USER, PASSWORD)
    return client


def ok(result: tuple[str, list[Any]]) -> list[Any]:
    status, data = result
    assert status == "OK", data
    return data


async def run(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def test_login_select_fetch_store_expunge(node_factory: Any) -> None:
    node = await imap_node(node_factory)

    def scenario() -> None:
        c = connect(node)
        assert "IDLE" in c.capabilities and "UIDPLUS" in c.capabilities
        assert ok(c.select("INBOX")) == [b"3"]
        data = ok(c.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE)"))
        assert len(data) == 3
        assert b'"message 1"' in data[0]
        assert b'(("Alice" NIL "alice" "crepes.fr"))' in data[0]
        body = ok(c.fetch("2", "(BODY.PEEK[HEADER.FIELDS (Subject)] BODY[TEXT])"))
        assert body[0][1] == b"Subject: message 2\r\n\r\n"
        assert body[1][1] == b"Hello number 2.\r\n"
        flags = ok(c.fetch("2", "FLAGS"))
        assert b"\\Seen" in flags[0]  # BODY[TEXT] set \Seen
        ok(c.store("1", "+FLAGS", "(\\Deleted)"))
        assert ok(c.search(None, "DELETED")) == [b"1"]
        assert ok(c.search(None, "UNSEEN", "NOT", "DELETED")) == [b"3"]
        assert ok(c.search(None, 'SUBJECT "message 3"')) == [b"3"]
        assert ok(c.search(None, "BODY", "number 2")) == [b"2"]
        assert ok(c.expunge()) == [b"1"]
        assert ok(c.fetch("1:*", "(UID)")) == [b"1 (UID 2)", b"2 (UID 3)"]
        c.logout()

    await run(scenario)


async def test_append_copy_move_uidplus(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=1)

    def scenario() -> None:
        c = connect(node)
        typ, data = c.append("Drafts", "(\\Draft)", None, message(9))
        assert typ == "OK" and re.search(rb"APPENDUID \d+ 1", data[0])
        ok(c.create("Work/Projects"))
        names = b" ".join(ok(c.list()))
        assert b'"Work/Projects"' in names and b"\\HasChildren" in names
        ok(c.select("INBOX"))
        typ, data = c.copy("1", "Work/Projects")
        assert typ == "OK" and b"COPYUID" in data[0]
        typ, data = c.copy("1", "Nowhere")
        assert typ == "NO" and b"TRYCREATE" in data[0]
        typ, data = c._simple_command("MOVE", "1", "Archive")
        assert typ == "OK"
        assert ok(c.status("Archive", "(MESSAGES UIDNEXT)"))[0].endswith(b"(MESSAGES 1 UIDNEXT 2)")
        assert ok(c.status("INBOX", "(MESSAGES)"))[0].endswith(b"(MESSAGES 0)")
        c.logout()

    await run(scenario)


def noop_until(client: imaplib.IMAP4, kind: str) -> list[bytes]:
    """NOOP until an untagged response of this kind arrives (the change
    notification crosses the store's writer thread; a busy machine delays it)."""
    for _ in range(50):
        ok(client.noop())
        if client.untagged_responses.get(kind):
            return client.untagged_responses.pop(kind)
        time.sleep(0.02)
    raise AssertionError(f"no {kind} response")


async def test_two_sessions_see_each_others_changes(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=2)

    def scenario() -> None:
        a = connect(node)
        b = connect(node)
        ok(a.select("INBOX"))
        ok(b.select("INBOX"))
        b.untagged_responses.clear()
        ok(a.store("1", "+FLAGS", "(\\Flagged)"))
        ok(a.append("INBOX", None, None, message(3)))
        assert noop_until(b, "EXISTS")[-1] == b"3"
        fetches = b.untagged_responses.get("FETCH", [])
        assert any(b"\\Flagged" in f for f in fetches)
        ok(a.store("2", "+FLAGS", "(\\Deleted)"))
        ok(a.expunge())
        assert noop_until(b, "EXPUNGE") == [b"2"]
        a.logout()
        b.logout()

    await run(scenario)


async def test_idle_wakes_on_smtp_delivery(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=0)

    def scenario() -> None:
        c = connect(node)
        ok(c.select("INBOX"))
        tag = c._new_tag().decode()
        c.send(f"{tag} IDLE\r\n".encode())
        assert c.readline().startswith(b"+")
        with smtplib.SMTP("127.0.0.1", node.port("smtp"), timeout=10) as smtp:
            smtp.sendmail("alice@crepes.fr", [USER], message(1))
        c.sock.settimeout(5)
        assert c.readline() == b"* 1 EXISTS\r\n"
        c.send(b"DONE\r\n")
        lines = [c.readline() for _ in range(2)]
        assert lines[-1].startswith(tag.encode() + b" OK")
        c.logout()

    await run(scenario)


async def test_starttls_and_imaps(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def scenario() -> None:
        c = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        assert "STARTTLS" in c.capabilities
        ok(c.starttls(ssl_context=ctx))
        c.login(USER, PASSWORD)
        assert ok(c.select("INBOX")) == [b"1"]
        c.logout()
        s = imaplib.IMAP4_SSL("127.0.0.1", node.port("imaps"), ssl_context=ctx, timeout=10)
        assert "STARTTLS" not in s.capabilities
        s.login(USER, PASSWORD)
        s.logout()

    await run(scenario)


async def test_bad_login_and_state_errors(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=0)

    def scenario() -> None:
        c = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            c.login(USER, "wrong")
        c.state = "AUTH"  # let imaplib send SELECT before LOGIN
        with pytest.raises(imaplib.IMAP4.error, match="BAD"):
            c._simple_command("SELECT", "INBOX")
        c.state = "NONAUTH"
        c.login(USER, PASSWORD)
        typ, data = c.select("NoSuchBox")
        assert typ == "NO" and b"NONEXISTENT" in data[0]
        c.logout()

    await run(scenario)


async def test_a_literal_past_appendlimit_is_refused_before_it_is_read(node_factory: Any) -> None:
    """RFC 7889: APPENDLIMIT is the smaller of the literal and message limits;
    a synchronizing literal above it gets no continuation."""
    node = await imap_node(node_factory, count=0, limits={"message_size": 1000})

    def scenario() -> None:
        with socket.create_connection(("127.0.0.1", node.port("imap")), timeout=10) as sock:
            f = sock.makefile("rwb")
            assert f.readline().startswith(b"* OK")
            f.write(b"a1 CAPABILITY\r\n")
            f.flush()
            assert b"APPENDLIMIT=1000" in f.readline()
            assert f.readline().startswith(b"a1 OK")
            f.write(b"a2 LOGIN bob@hamburger.edu hungry\r\n")
            f.flush()
            assert f.readline().startswith(b"a2 OK")
            f.write(b"a3 APPEND INBOX {5000}\r\n")
            f.flush()
            line = f.readline()
            assert line.startswith(b"a3 ") and b"TOOBIG" in line

    await run(scenario)


async def test_a_line_too_long_during_idle_is_bad_not_a_logout(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=0, limits={"imap_line": 200})

    def scenario() -> None:
        with socket.create_connection(("127.0.0.1", node.port("imap")), timeout=10) as sock:
            f = sock.makefile("rwb")
            assert f.readline().startswith(b"* OK")
            f.write(b"a1 LOGIN bob@hamburger.edu hungry\r\n")
            f.flush()
            assert f.readline().startswith(b"a1 OK")
            f.write(b"a2 SELECT INBOX\r\n")
            f.flush()
            while not f.readline().startswith(b"a2 "):
                pass
            f.write(b"a3 IDLE\r\n")
            f.flush()
            assert f.readline().startswith(b"+ ")
            f.write(b"x" * 500 + b"\r\n")
            f.flush()
            line = f.readline()
            assert line.startswith(b"a3 BAD") and b"TOOBIG" in line, line

    await run(scenario)


async def test_oversize_literal_refused_without_continuation(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=0, limits={"imap_literal": 1000})

    def scenario() -> None:
        with socket.create_connection(("127.0.0.1", node.port("imap")), timeout=10) as sock:
            f = sock.makefile("rwb")
            assert f.readline().startswith(b"* OK")
            f.write(b"a1 LOGIN bob@hamburger.edu hungry\r\n")
            f.flush()
            assert f.readline().startswith(b"a1 OK")
            f.write(b"a2 APPEND INBOX {5000}\r\n")
            f.flush()
            line = f.readline()
            assert line.startswith(b"a2 ") and b"TOOBIG" in line
            f.write(b"a3 NOOP\r\n")
            f.flush()
            assert f.readline().startswith(b"a3 OK")
            f.write(b"a4 APPEND INBOX {5000+}\r\n")
            f.flush()
            assert f.readline().startswith(b"a4 BAD")
            assert f.readline().startswith(b"* BYE")
            assert f.readline() == b""

    await run(scenario)


async def test_idle_timeout_says_bye(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=0, limits={"imap_idle_timeout": 0.3})

    def scenario() -> None:
        with socket.create_connection(("127.0.0.1", node.port("imap")), timeout=10) as sock:
            f = sock.makefile("rwb")
            assert f.readline().startswith(b"* OK")
            assert f.readline().startswith(b"* BYE")
            assert f.readline() == b""

    await run(scenario)


async def test_starttls_discards_pipelined_plaintext(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=0)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def scenario() -> None:
        with socket.create_connection(("127.0.0.1", node.port("imap")), timeout=10) as sock:
            f = sock.makefile("rb")
            assert f.readline().startswith(b"* OK")
            sock.sendall(b"a1 STARTTLS\r\na2 LOGIN bob@hamburger.edu hungry\r\n")
            assert f.readline().startswith(b"a1 OK")
            tls = ctx.wrap_socket(sock, server_hostname="mx.test")
            tf = tls.makefile("rwb")
            tf.write(b"a3 NOOP\r\n")
            tf.flush()
            # a2 was injected before the handshake: it must never run.
            assert tf.readline().startswith(b"a3 OK")
            tf.write(b"a4 SELECT INBOX\r\n")
            tf.flush()
            assert tf.readline().startswith(b"a4 BAD")

    await run(scenario)


async def test_trace_shows_the_dialogue_without_passwords(node_factory: Any, capsys: Any) -> None:
    node: TestNode = await node_factory(listen=("imap",), trace=True)
    await node.add_user(USER, PASSWORD)

    def scenario() -> None:
        c = connect(node)
        c.append("INBOX", None, None, message(1, body="".join(f"line {n}\r\n" for n in range(20))))
        c.select("INBOX")
        c.fetch("1", "BODY.PEEK[]")
        c.logout()

    await run(scenario)
    out = capsys.readouterr().out
    assert "S: * OK [CAPABILITY IMAP4rev1" in out
    assert "LOGIN [credentials elided]" in out and PASSWORD not in out
    assert re.search(r"C: \w+ APPEND INBOX \{\d+\}\n.*S: \+ Ready", out)
    assert "S: * 1 EXISTS" in out
    assert "more lines" in out and "line 19" not in out


async def test_line_and_nesting_limits(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=1, limits={"imap_line": 2000, "imap_nesting": 8})

    def scenario() -> None:
        with socket.create_connection(("127.0.0.1", node.port("imap")), timeout=10) as sock:
            f = sock.makefile("rwb")
            assert f.readline().startswith(b"* OK")
            f.write(b"a1 LOGIN bob@hamburger.edu hungry\r\na2 SELECT INBOX\r\n")
            f.flush()
            while not f.readline().startswith(b"a2 OK"):
                pass
            f.write(b"a3 SEARCH " + b"(" * 20 + b"ALL" + b")" * 20 + b"\r\n")
            f.flush()
            assert f.readline() == b"a3 BAD Too deeply nested\r\n"
            f.write(b"a4 NOOP\r\n")
            f.flush()
            assert f.readline().startswith(b"a4 OK")
            f.write(b"a5 SEARCH SUBJECT " + b"x" * 5000 + b"\r\n")
            f.flush()
            assert f.readline().startswith(b"a5 BAD [TOOBIG]")
            assert f.readline().startswith(b"* BYE")
            assert f.readline() == b""

    await run(scenario)


async def test_node_stop_says_bye_to_idle_clients(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=0)
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port("imap"))
    assert (await reader.readline()).startswith(b"* OK")
    writer.write(b"a1 LOGIN bob@hamburger.edu hungry\r\na2 SELECT INBOX\r\na3 IDLE\r\n")
    while not (await reader.readline()).startswith(b"+"):
        pass
    await node.stop()
    rest = await asyncio.wait_for(reader.read(), 10)
    assert b"* BYE" in rest
    writer.close()


async def test_session_limit_refuses_with_bye(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=0, limits={"imap_sessions": 1})

    def scenario() -> None:
        first = connect(node)
        with socket.create_connection(("127.0.0.1", node.port("imap")), timeout=10) as sock:
            f = sock.makefile("rb")
            assert f.readline().startswith(b"* BYE [UNAVAILABLE]")
            assert f.readline() == b""
        first.logout()

    await run(scenario)


async def test_concurrent_writers_and_an_idler_agree(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=0)
    writers, each = 4, 10

    def write(w: int) -> None:
        c = connect(node)
        c.select("INBOX")
        for n in range(each):
            ok(c.append("INBOX", None, None, message(100 * w + n)))
            ok(c.store("1", "+FLAGS", f"($w{w})"))
        c.logout()

    def idle() -> int:
        c = connect(node)
        c.select("INBOX")
        tag = c._new_tag().decode()
        c.send(f"{tag} IDLE\r\n".encode())
        assert c.readline().startswith(b"+")
        c.sock.settimeout(10)
        seen = 0
        while seen < writers * each:
            line = c.readline()
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                seen = int(m.group(1))
        c.send(b"DONE\r\n")
        while not c.readline().startswith(tag.encode()):
            pass
        c.logout()
        return seen

    idler = asyncio.create_task(run(idle))
    await asyncio.sleep(0.3)
    await asyncio.gather(*(run(write, w) for w in range(writers)))
    assert await asyncio.wait_for(idler, 30) == writers * each

    def check() -> None:
        c = connect(node)
        assert ok(c.select("INBOX")) == [str(writers * each).encode()]
        flags = ok(c.fetch("1", "FLAGS"))[0]
        assert all(f"$w{w}".encode() in flags for w in range(writers))
        uids = ok(c.uid("SEARCH", None, "ALL"))[0].split()
        assert len(uids) == len(set(uids)) == writers * each
        c.logout()

    await run(check)


async def test_starttls_discards_plaintext_that_arrived_while_it_ran(
    node_factory: Any, monkeypatch: Any
) -> None:
    from mailstack.imap import session as imap_session

    node = await imap_node(node_factory, count=0)
    original = imap_session.HANDLERS["STARTTLS"]

    async def slow_starttls(s: Any, cmd: Any) -> Any:
        await asyncio.sleep(0.3)  # the injected line reaches asyncio's buffer meanwhile
        return await original(s, cmd)

    monkeypatch.setitem(imap_session.HANDLERS, "STARTTLS", slow_starttls)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def scenario() -> None:
        with socket.create_connection(("127.0.0.1", node.port("imap")), timeout=10) as sock:
            f = sock.makefile("rb")
            assert f.readline().startswith(b"* OK")
            sock.sendall(b"a1 STARTTLS\r\n")
            time.sleep(0.1)  # the server is in STARTTLS now, not reading
            sock.sendall(b"a2 LOGIN bob@hamburger.edu hungry\r\n")
            assert f.readline().startswith(b"a1 OK")
            tf = ctx.wrap_socket(sock, server_hostname="mx.test").makefile("rwb")
            tf.write(b"a3 SELECT INBOX\r\n")
            tf.flush()
            assert tf.readline().startswith(b"a3 BAD")  # a2 never ran

    await run(scenario)


async def test_authenticate_plain_with_imaplib(node_factory: Any) -> None:
    node = await imap_node(node_factory, count=1)

    def scenario() -> None:
        c = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        typ, _ = c.authenticate("PLAIN", lambda _challenge: f"\0{USER}\0{PASSWORD}".encode())
        assert typ == "OK" and c.state == "AUTH"
        assert ok(c.select("INBOX")) == [b"1"]
        c.logout()

    await run(scenario)


async def test_uidbatches(node_factory: Any) -> None:
    """RFC 10022 UIDBATCHES through imaplib's xatom: the batch newest UID
    first, an empty answer past the last batch, NO [TOOFEW] under 500."""
    node = await imap_node(node_factory)

    def scenario() -> None:
        c = connect(node)
        assert "UIDBATCHES" in c.capabilities
        ok(c.select("INBOX"))
        ok(c.xatom("UIDBATCHES", "500"))
        [line] = c.response("UIDBATCHES")[1]
        assert re.fullmatch(rb'\(TAG "[^"]+"\) 3:1', line), line
        ok(c.xatom("UIDBATCHES", "500", "2:5"))
        [line] = c.response("UIDBATCHES")[1]
        assert re.fullmatch(rb'\(TAG "[^"]+"\)', line), line
        status, data = c.xatom("UIDBATCHES", "499")
        assert status == "NO" and data[0].startswith(b"[TOOFEW]")
        with pytest.raises(imaplib.IMAP4.error, match="reversed"):
            c.xatom("UIDBATCHES", "500", "2:1")
        c.logout()

    await run(scenario)
