"""The SMTP receiver end to end: a real node, driven by smtplib, aiosmtplib,
raw sockets and swaks."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import socket
import ssl
import subprocess

import aiosmtplib
import pytest

from mailstack.limits import Limits
from mailstack.store import DeliveryTarget

from support import deliver

MESSAGE = (
    b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: ketchup\r\n\r\n"
    b"Do you like ketchup?\r\nHow about pickles?\r\n"
)


@pytest.fixture
async def mx(node_factory):
    node = await node_factory(listen=("smtp",), hostname="hamburger.edu")
    await node.add_user("bob@hamburger.edu")
    await node.store.alias_add("postmaster@hamburger.edu", "bob@hamburger.edu")
    return node


async def inbox(node, address="bob@hamburger.edu"):
    account = await node.store.account_get(address)
    mailbox = await node.store.mailbox_get(account.id, "INBOX")
    return [
        await node.store.message_bytes(mailbox.id, m.uid)
        for m in await node.store.messages(mailbox.id)
    ]


def smtp(node) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", node.port("smtp"), local_hostname="crepes.fr", timeout=10)


class Raw:
    """A plain socket client, for dialogues no library would send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> bytes:
        """One whole (possibly multi-line) reply."""
        while True:
            lines = self.buf.split(b"\r\n")
            for i, line in enumerate(lines[:-1]):
                if len(line) >= 4 and line[3:4] == b" ":
                    whole = b"\r\n".join(lines[: i + 1]) + b"\r\n"
                    self.buf = self.buf[len(whole) :]
                    return whole
            chunk = self.sock.recv(65536)
            if not chunk:
                whole, self.buf = self.buf, b""
                return whole
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def closed_by_peer(r: Raw) -> bool:
    try:
        return r.sock.recv(100) == b""
    except ConnectionResetError:
        return True


def raw(node) -> Raw:
    r = Raw(node.port("smtp"))
    assert r.reply().startswith(b"220 hamburger.edu")
    return r


async def test_lecture_dialogue_with_helo(mx):
    def dialogue():
        with smtp(mx) as s:
            assert s.helo("crepes.fr")[0] == 250
            assert s.mail("alice@crepes.fr") == (250, b"2.1.0 alice@crepes.fr... Sender ok")
            assert s.rcpt("bob@hamburger.edu") == (250, b"2.1.5 bob@hamburger.edu... Recipient ok")
            code, text = s.data(b"Do you like ketchup?\r\nHow about pickles?\r\n")
            assert code == 250 and text.startswith(b"2.0.0 Message accepted for delivery")

    await asyncio.to_thread(dialogue)
    [message] = await inbox(mx)
    assert message.startswith(
        b"Return-Path: <alice@crepes.fr>\r\nDelivered-To: bob@hamburger.edu\r\n"
        b"Received: from crepes.fr ([127.0.0.1])\r\n\tby hamburger.edu (mailstack) with SMTP id "
    )
    assert message.endswith(b"\r\nDo you like ketchup?\r\nHow about pickles?\r\n")


async def test_ehlo_advertises_the_extensions(mx):
    def ehlo():
        with smtp(mx) as s:
            s.ehlo("crepes.fr")
            return s.esmtp_features

    features = await asyncio.to_thread(ehlo)
    for ext in (
        "pipelining",
        "8bitmime",
        "smtputf8",
        "chunking",
        "enhancedstatuscodes",
        "starttls",
        "dsn",
    ):
        assert ext in features
    assert features["size"] == str(Limits().message_size)


async def test_starttls_then_delivery_records_esmtps(mx):
    def send():
        with smtp(mx) as s:
            s.starttls(context=ssl._create_unverified_context())
            s.ehlo("crepes.fr")
            assert "starttls" not in s.esmtp_features
            s.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], MESSAGE)

    await asyncio.to_thread(send)
    [message] = await inbox(mx)
    assert b"with ESMTPS id" in message


async def test_aiosmtplib_pipelined_transactions_and_multiple_recipients(mx):
    await mx.add_user("alice@hamburger.edu")
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=mx.port("smtp"), local_hostname="crepes.fr", start_tls=False
    )
    await client.connect()
    for i in range(3):
        errors, _ = await client.sendmail(
            "carol@crepes.fr",
            ["bob@hamburger.edu", "alice@hamburger.edu", "postmaster@hamburger.edu"],
            MESSAGE.replace(b"ketchup", b"ketchup %d" % i),
        )
        assert errors == {}
    await client.quit()
    bob = await inbox(mx)
    # postmaster is an alias of bob: one copy per mailbox, not per address.
    assert len(bob) == 3 and len(await inbox(mx, "alice@hamburger.edu")) == 3
    blobs = await mx.store._read(lambda c: c.execute("SELECT count(*) FROM blobs").fetchone()[0])
    assert blobs == 3  # the bytes are stored once for both recipients


async def test_pipelined_commands_in_one_write(mx):
    def dialogue():
        r = raw(mx)
        r.send(b"EHLO crepes.fr\r\n")
        r.reply()
        r.send(
            b"MAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\n"
            b"RCPT TO:<nobody@hamburger.edu>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\n"
        )
        assert r.reply().startswith(b"250 2.1.0")
        assert r.reply().startswith(b"250 2.1.5")
        assert r.reply().startswith(b"550 5.1.1")
        assert r.reply().startswith(b"550 5.7.1")
        assert r.reply().startswith(b"354")
        r.send(b"Subject: pipelined\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        assert r.reply().startswith(b"250 2.0.0")
        assert r.reply().startswith(b"221")
        r.close()

    await asyncio.to_thread(dialogue)
    assert len(await inbox(mx)) == 1


async def test_bdat_chunks_binary_safe(mx):
    body = b"Subject: chunked\r\n\r\nline one\r\n.\r\nnot the end\r\n"

    def dialogue():
        r = raw(mx)
        r.send(b"EHLO crepes.fr\r\n")
        r.reply()
        r.send(b"MAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\n")
        r.reply(), r.reply()
        r.send(b"BDAT %d\r\n" % 20 + body[:20])
        assert r.reply().startswith(b"250")
        r.send(b"BDAT %d LAST\r\n" % len(body[20:]) + body[20:])
        assert r.reply().startswith(b"250 2.0.0")
        r.send(b"QUIT\r\n")
        r.close()

    await asyncio.to_thread(dialogue)
    [message] = await inbox(mx)
    assert message.endswith(body)


async def test_8bitmime_and_smtputf8(mx):
    await mx.store.alias_add("jos\u00e9@hamburger.edu", "bob@hamburger.edu")
    utf8 = "From: jos\u00e9@crepes.fr\r\nSubject: cr\u00eapes\r\n\r\nd\u00e9j\u00e0 vu\r\n".encode()

    def send():
        with smtp(mx) as s:
            s.ehlo("crepes.fr")
            s.sendmail(
                "alice@crepes.fr", ["bob@hamburger.edu"], utf8, mail_options=["BODY=8BITMIME"]
            )
            s.sendmail(
                "jos\u00e9@crepes.fr",
                ["jos\u00e9@hamburger.edu"],
                utf8,
                mail_options=["SMTPUTF8", "BODY=8BITMIME"],
            )

    await asyncio.to_thread(send)
    messages = await inbox(mx)
    assert len(messages) == 2 and all(m.endswith(utf8) for m in messages)
    assert "Delivered-To: jos\u00e9@hamburger.edu".encode() in messages[1]


async def test_unknown_user_and_relay_are_refused(mx):
    def send(rcpt):
        with smtp(mx) as s:
            s.ehlo("crepes.fr")
            s.mail("alice@crepes.fr")
            return s.rcpt(rcpt)

    assert (await asyncio.to_thread(send, "nobody@hamburger.edu"))[0] == 550
    code, text = await asyncio.to_thread(send, "victim@gmail.example")
    assert code == 550 and text.startswith(b"5.7.1")
    code, _ = await asyncio.to_thread(send, "bob+tag@hamburger.edu")
    assert code == 250


async def test_catch_all_alias(mx):
    await mx.store.alias_add("@hamburger.edu", "bob@hamburger.edu")

    def send():
        with smtp(mx) as s:
            s.sendmail("alice@crepes.fr", ["whoever@hamburger.edu"], MESSAGE)

    await asyncio.to_thread(send)
    assert len(await inbox(mx)) == 1


async def test_mail_loop_is_refused(mx):
    looped = (
        b"".join(
            b"Received: from hop%d by x; Sat, 21 Nov 2026 12:00:00 +0000\r\n" % i for i in range(60)
        )
        + MESSAGE
    )

    def send():
        with smtp(mx) as s:
            s.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], looped)

    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(send)
    assert info.value.smtp_code == 554 and info.value.smtp_error.startswith(b"5.4.6")
    assert await inbox(mx) == []


@pytest.mark.parametrize(
    "smuggled",
    [b"\n.\n", b"\r.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"],
    ids=["LF.LF", "CR.LF", "LF.CRLF", "CRLF.LF", "CR.CRLF"],
)
async def test_smtp_smuggling_never_splits_a_message(mx, smuggled):
    def dialogue():
        r = raw(mx)
        r.send(b"EHLO crepes.fr\r\n")
        r.reply()
        r.send(b"MAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\nDATA\r\n")
        r.reply(), r.reply(), r.reply()
        r.send(
            b"Subject: outer\r\n\r\nhello"
            + smuggled
            + b"MAIL FROM:<admin@hamburger.edu>\r\nRCPT TO:<bob@hamburger.edu>\r\nDATA\r\n"
            + b"Subject: smuggled\r\n\r\nevil\r\n.\r\n"
        )
        reply = r.reply()
        assert reply.startswith(b"5"), reply
        r.send(b"NOOP\r\n")
        assert r.reply().startswith(b"250")
        r.close()

    await asyncio.to_thread(dialogue)
    assert await inbox(mx) == []


async def test_limits_are_crossed_with_the_right_codes(node_factory):
    limits = {
        "recipients": 2,
        "message_size": 2000,
        "smtp_command_line": 512,
        "errors_per_session": 5,
    }
    node = await node_factory(listen=("smtp",), hostname="hamburger.edu", limits=limits)
    await node.add_user("bob@hamburger.edu")

    def dialogue():
        r = raw(node)
        r.send(b"EHLO crepes.fr\r\n")
        assert b"SIZE 2000" in r.reply()
        r.send(b"MAIL FROM:<alice@crepes.fr> SIZE=5000\r\n")
        assert r.reply().startswith(b"552 5.3.4")
        r.send(b"MAIL FROM:<alice@crepes.fr>\r\n")
        r.reply()
        for _ in range(2):
            r.send(b"RCPT TO:<bob@hamburger.edu>\r\n")
            assert r.reply().startswith(b"250")
        r.send(b"RCPT TO:<bob@hamburger.edu>\r\n")
        assert r.reply().startswith(b"452 4.5.3")
        r.send(b"DATA\r\n")
        r.reply()
        r.send(
            b"Subject: big\r\n\r\n"
            + b"x" * 70
            + b"\r\n" * 1
            + (b"y" * 998 + b"\r\n") * 5
            + b".\r\n"
        )
        assert r.reply().startswith(b"552 5.3.4")
        r.send(b"NOOP " + b"z" * 600 + b"\r\n")
        assert r.reply().startswith(b"500 5.5.2")
        # errors_per_session: unknown commands until the server gives up.
        replies = []
        for _ in range(5):
            r.send(b"BOGUS\r\n")
            replies.append(r.reply())
            if replies[-1].startswith(b"421"):
                break
        assert replies[-1].startswith(b"421 4.7.0"), replies
        assert all(reply.startswith(b"500 5.5.1") for reply in replies[:-1])
        assert closed_by_peer(r)
        r.close()

    await asyncio.to_thread(dialogue)
    assert await inbox(node) == []


async def test_commands_before_mail_limit(node_factory):
    node = await node_factory(
        listen=("smtp",), hostname="hamburger.edu", limits={"commands_before_mail": 3}
    )

    def dialogue():
        r = raw(node)
        replies = []
        for _ in range(5):
            r.send(b"NOOP\r\n")
            replies.append(r.reply())
            if replies[-1].startswith(b"421"):
                break
        assert replies[-1].startswith(b"421 4.7.0")
        r.close()

    await asyncio.to_thread(dialogue)


async def test_idle_timeout_closes_with_421(node_factory):
    node = await node_factory(
        listen=("smtp",), hostname="hamburger.edu", limits={"smtp_idle_timeout": 0.3}
    )

    def dialogue():
        r = raw(node)
        assert r.reply().startswith(b"421 4.4.2")
        r.close()

    await asyncio.to_thread(dialogue)


async def test_concurrent_session_limit(node_factory):
    node = await node_factory(
        listen=("smtp",), hostname="hamburger.edu", limits={"smtp_sessions": 2}
    )

    def dialogue():
        first, second = raw(node), raw(node)
        third = Raw(node.port("smtp"))
        assert third.reply().startswith(b"421 4.3.2")
        for r in (first, second, third):
            r.close()

    await asyncio.to_thread(dialogue)


async def test_quota_full_mailbox_gets_552(mx):
    """A message that overflows the mailbox only at its end (no SIZE declared)."""
    await mx.store.account_add("tiny@hamburger.edu", "x", quota=100)

    def send():
        with smtp(mx) as s:
            s.ehlo()
            s.mail("alice@crepes.fr")
            assert s.rcpt("tiny@hamburger.edu")[0] == 250
            assert s.data(MESSAGE * 3)[:2] == (552, b"5.2.2 Mailbox full")

    await asyncio.to_thread(send)


async def test_full_mailbox_is_refused_at_rcpt_and_the_others_still_get_the_message(mx):
    """RFC 1870 §6, RFC 3463 X.2.2: refused at RCPT when the mailbox is full
    already, or too full for the SIZE that MAIL FROM declared."""
    tiny = await mx.store.account_add("tiny@hamburger.edu", "x", quota=500)
    await mx.store.account_add("small@hamburger.edu", "x", quota=10_000)
    head = b"Subject: filler\r\n\r\n"
    filler = head + b"x" * (500 - len(head))
    await deliver(mx.store, filler, [DeliveryTarget(tiny.id)])  # exactly full now

    def dialogue():
        with smtp(mx) as s:
            s.ehlo()
            s.mail("alice@crepes.fr")
            assert s.rcpt("tiny@hamburger.edu") == (552, b"5.2.2 Mailbox full")
            assert s.rcpt("bob@hamburger.edu")[0] == 250
            assert s.data(MESSAGE)[0] == 250
            s.mail("alice@crepes.fr", ["SIZE=20000"])
            assert s.rcpt("small@hamburger.edu") == (552, b"5.2.2 Mailbox full")
            s.rset()
            s.mail("alice@crepes.fr", ["SIZE=2000"])
            assert s.rcpt("small@hamburger.edu")[0] == 250

    await asyncio.to_thread(dialogue)
    bob = await mx.store.account_get("bob@hamburger.edu")
    inbox = await mx.store.mailbox_get(bob.id, "INBOX")
    assert len(await mx.store.messages(inbox.id)) == 1


async def test_a_mailbox_that_overflows_at_data_gets_a_dsn_and_the_others_the_message(mx):
    """RCPT found room; the message itself is too big for it. The others get
    the message, and the sender a "failed" DSN (RFC 3461) for this recipient."""
    await mx.store.account_add("tiny@hamburger.edu", "x", quota=100)

    def send():
        with smtp(mx) as s:
            s.ehlo()
            s.mail("alice@crepes.fr", ["ENVID=k1", "RET=HDRS"])
            assert s.rcpt("tiny@hamburger.edu")[0] == 250
            assert s.rcpt("bob@hamburger.edu")[0] == 250
            assert s.data(MESSAGE * 3)[0] == 250

    await asyncio.to_thread(send)
    bob = await mx.store.account_get("bob@hamburger.edu")
    assert len(await mx.store.messages((await mx.store.mailbox_get(bob.id, "INBOX")).id)) == 1
    tiny = await mx.store.account_get("tiny@hamburger.edu")
    assert await mx.store.messages((await mx.store.mailbox_get(tiny.id, "INBOX")).id) == []
    [dsn] = await mx.store.queue_list()
    assert dsn.mail_from == "" and [r.address for r in dsn.recipients] == ["alice@crepes.fr"]
    report = await mx.store.queue_data(dsn.id)
    assert b"Final-Recipient: rfc822; tiny@hamburger.edu" in report
    assert b"Action: failed" in report and b"Status: 5.2.2" in report
    assert b"Original-Envelope-Id: k1" in report
    assert b"bob@hamburger.edu;" not in report


async def test_overflow_at_data_for_a_null_sender_is_refused_whole(mx):
    """A null sender cannot be sent a DSN, so it is all or nothing: no
    recipient silently misses a message. NOTIFY=NEVER asks for no DSN, and
    gets none (RFC 3461 §4.1)."""
    await mx.store.account_add("tiny@hamburger.edu", "x", quota=100)

    def send():
        with smtp(mx) as s:
            s.ehlo()
            s.mail("")
            s.rcpt("tiny@hamburger.edu"), s.rcpt("bob@hamburger.edu")
            assert s.data(MESSAGE * 3)[:2] == (552, b"5.2.2 Mailbox full")
            s.mail("alice@crepes.fr")
            assert s.rcpt("tiny@hamburger.edu", ["NOTIFY=NEVER"])[0] == 250
            assert s.rcpt("bob@hamburger.edu")[0] == 250
            assert s.data(MESSAGE * 3)[0] == 250

    await asyncio.to_thread(send)
    bob = await mx.store.account_get("bob@hamburger.edu")
    assert len(await mx.store.messages((await mx.store.mailbox_get(bob.id, "INBOX")).id)) == 1
    assert await mx.store.queue_list() == []  # the sender asked not to hear of it


async def test_postmaster_without_domain_is_accepted(mx):
    def dialogue():
        r = raw(mx)
        r.send(b"HELO crepes.fr\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n")
        r.reply(), r.reply()
        assert r.reply().startswith(b"250")
        r.close()

    await asyncio.to_thread(dialogue)


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is installed by .ci/run")
async def test_swaks_delivers(mx):
    result = await asyncio.to_thread(
        subprocess.run,
        [
            "swaks",
            "--server",
            f"127.0.0.1:{mx.port('smtp')}",
            "--helo",
            "crepes.fr",
            "--from",
            "alice@crepes.fr",
            "--to",
            "bob@hamburger.edu",
            "--header",
            "Subject: from swaks",
            "--body",
            "Do you like ketchup?",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Message accepted" in result.stdout
    [message] = await inbox(mx)
    assert b"Subject: from swaks" in message


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is installed by .ci/run")
async def test_swaks_starttls_and_pipelining(mx):
    result = await asyncio.to_thread(
        subprocess.run,
        [
            "swaks",
            "--server",
            f"127.0.0.1:{mx.port('smtp')}",
            "--helo",
            "crepes.fr",
            "--tls",
            "--pipeline",
            "--from",
            "alice@crepes.fr",
            "--to",
            "bob@hamburger.edu",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(await inbox(mx)) == 1


async def test_stopping_the_node_says_421_to_open_sessions(mx):
    r = await asyncio.to_thread(raw, mx)
    await mx.stop()
    reply = await asyncio.to_thread(r.reply)
    assert reply.startswith(b"421 4.3.2")
    r.close()


async def test_notify_success_from_an_unproved_sender_queues_no_dsn(mx):
    """Backscatter (issue 15 item 6): this MX checks no SPF or DKIM, so no
    sender is proved and none is sent a "delivered" DSN; tests/e2e/
    test_backscatter.py has the proved sender that gets one."""

    def send():
        with smtp(mx) as s:
            s.ehlo("crepes.fr")
            s.sendmail(
                "alice@crepes.fr",
                ["bob@hamburger.edu"],
                MESSAGE,
                mail_options=["ENVID=ketchup-1"],
                rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;bob@hamburger.edu"],
            )

    await asyncio.to_thread(send)
    assert len(await inbox(mx)) == 1
    assert await mx.store.queue_list() == []


async def test_plaintext_sent_behind_starttls_is_never_read_as_tls(mx):
    """CVE-2011-0411: a command injected after STARTTLS, in the same packet or
    in a later one before the handshake, must not run inside TLS."""

    def dialogue(together: bool):
        r = raw(mx)
        r.send(b"EHLO crepes.fr\r\n")
        r.reply()
        injected = b"MAIL FROM:<evil@crepes.fr>\r\n"
        if together:
            r.send(b"STARTTLS\r\n" + injected)
        else:
            r.send(b"STARTTLS\r\n")
            r.send(injected)
        assert r.reply().startswith(b"220 2.0.0")
        try:
            tls = ssl._create_unverified_context().wrap_socket(
                r.sock, server_hostname="hamburger.edu"
            )
        except (ssl.SSLError, ConnectionError):
            # The plaintext reached the server after it began the handshake:
            # read as a TLS record, it ends the connection. Nothing ran.
            assert not together
            return None
        tls.sendall(b"EHLO crepes.fr\r\n")
        buf = b""
        while not any(line[3:4] == b" " for line in buf.split(b"\r\n")[:-1]):
            buf += tls.recv(65536)
        tls.sendall(b"MAIL FROM:<alice@crepes.fr>\r\n")
        reply = tls.recv(65536)
        tls.close()
        return buf, reply

    for together in (True, False):
        outcome = await asyncio.to_thread(dialogue, together)
        if outcome is None:
            continue
        ehlo, mail = outcome
        assert ehlo.startswith(b"250-hamburger.edu"), ehlo
        # Had the injected MAIL run, this second MAIL would be "nested".
        assert mail.startswith(b"250 2.1.0 alice@crepes.fr"), mail


async def test_auth_is_not_offered_on_the_mx_port(mx):
    def dialogue():
        r = raw(mx)
        r.send(b"EHLO crepes.fr\r\n")
        assert b"AUTH" not in r.reply()
        r.send(b"AUTH PLAIN AGJvYgBodW5ncnk=\r\n")
        reply = r.reply()
        r.close()
        return reply

    assert (await asyncio.to_thread(dialogue)).startswith(b"502 5.5.1")


async def test_a_store_failure_is_a_temporary_451_and_nothing_is_acknowledged(mx, monkeypatch):
    from mailstack.errors import StoreError

    async def broken(raw, parsed, targets):
        raise StoreError("disk on fire")

    monkeypatch.setattr(mx.store, "deliver", broken)
    monkeypatch.setattr(mx.store, "deliver_some", broken)

    def send():
        with smtp(mx) as s:
            s.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], MESSAGE)

    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(send)
    assert info.value.smtp_code == 451 and info.value.smtp_error.startswith(b"4.3.0")
    assert b"disk on fire" not in info.value.smtp_error  # no exception text to the peer


async def test_a_store_away_at_rcpt_is_451_and_the_session_goes_on(mx, monkeypatch):
    """A store that cannot be reached while RCPT looks the address up (a
    shared PostgreSQL restarting) is 451 4.3.0 for that command, not a
    dropped connection; the same session delivers once it is back."""
    from mailstack.errors import StoreUnavailable

    real = mx.store.resolve_local

    async def away(address):
        raise StoreUnavailable("the PostgreSQL store is unavailable: connection refused")

    monkeypatch.setattr(mx.store, "resolve_local", away)

    def dialogue():
        with smtp(mx) as s:
            s.ehlo("crepes.fr")
            s.mail("alice@crepes.fr")
            code, text = s.rcpt("bob@hamburger.edu")
            s.rset()
            monkeypatch.setattr(mx.store, "resolve_local", real)
            s.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], MESSAGE)
            return code, text

    code, text = await asyncio.to_thread(dialogue)
    assert (code, text[:5]) == (451, b"4.3.0")
    assert b"connection refused" not in text
    assert len(await inbox(mx)) == 1
