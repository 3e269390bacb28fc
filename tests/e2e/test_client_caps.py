"""Sessions per client (issue 15 item 10, and the login cap of item 7):
every listener caps the sessions of one client address and of one client
network, and the listeners that take passwords cap an address's sessions
not yet logged in; each refusal has the protocol's reply and a log line.
Driven with smtplib, poplib and imaplib, each connection bound to its own
127.0.0.x source address."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import poplib
import smtplib
import socket

import pytest

USER = "alice@crepes.fr"
PASSWORD = "hungry"


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("session refused")]


def raw_greeting(port: int, source: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return sock, sock.recv(4096)


async def test_smtp_caps_per_address_and_per_network(node_factory, caplog):
    caplog.set_level(logging.WARNING, logger="mailstack.common.server")
    node = await node_factory(
        limits={"smtp_sessions_per_address": 2, "smtp_sessions_per_prefix": 3}
    )
    port = node.port("smtp")

    def run() -> list[bytes]:
        with contextlib.ExitStack() as held:
            greetings = []
            for source in ("127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.3"):
                sock, greeting = raw_greeting(port, source)
                held.callback(sock.close)
                greetings.append(greeting)
            # A client of another network still gets in.
            with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.1.1", 0)) as other:
                assert other.noop()[0] == 250
            return greetings

    greetings = await asyncio.to_thread(run)
    assert [g[:3] for g in greetings] == [b"220", b"220", b"421", b"220", b"421"]
    assert greetings[2] == b"421 4.7.0 Too many connections from your address, try again later\r\n"
    assert greetings[4] == b"421 4.7.0 Too many connections from your network, try again later\r\n"
    assert refusals(caplog) == [
        "session refused protocol=smtp listener=smtp client=127.0.0.1 cap=address",
        "session refused protocol=smtp listener=smtp client=127.0.0.3 cap=prefix",
    ]
    # Closed sessions give their places back.
    await asyncio.sleep(0.2)

    def again() -> int:
        with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.3", 0)) as smtp:
            return smtp.noop()[0]

    assert await asyncio.to_thread(again) == 250


async def test_smtplib_sees_the_421(node_factory):
    node = await node_factory(limits={"smtp_sessions_per_address": 1})
    port = node.port("smtp")

    def run() -> smtplib.SMTPConnectError:
        with smtplib.SMTP("127.0.0.1", port, timeout=10):
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP("127.0.0.1", port, timeout=10)
            return refused.value

    refused = await asyncio.to_thread(run)
    assert refused.smtp_code == 421


async def test_pop3_and_imap_caps_per_address(node_factory, caplog):
    caplog.set_level(logging.WARNING, logger="mailstack.common.server")
    node = await node_factory(
        listen=("pop3", "imap"),
        limits={"pop3_sessions_per_address": 1, "imap_sessions_per_address": 1},
    )

    def run() -> tuple[bytes, bytes]:
        with contextlib.ExitStack() as held:
            held.callback(poplib.POP3("127.0.0.1", node.port("pop3"), timeout=10).close)
            held.callback(imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10).shutdown)
            with pytest.raises(poplib.error_proto) as pop_refused:
                poplib.POP3("127.0.0.1", node.port("pop3"), timeout=10)
            sock, imap_greeting = raw_greeting(node.port("imap"), "127.0.0.1")
            sock.close()
            with pytest.raises(imaplib.IMAP4.error) as imap_refused:
                imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
            assert b"UNAVAILABLE" in imap_refused.value.args[0]
            return pop_refused.value.args[0], imap_greeting

    pop_reply, imap_greeting = await asyncio.to_thread(run)
    assert pop_reply == b"-ERR [SYS/TEMP] too many sessions from your address, try again later"
    assert imap_greeting == b"* BYE [UNAVAILABLE] Too many connections from your address\r\n"
    assert refusals(caplog)[:2] == [
        "session refused protocol=pop3 listener=pop3 client=127.0.0.1 cap=address",
        "session refused protocol=imap listener=imap client=127.0.0.1 cap=address",
    ]


async def test_sessions_not_logged_in_are_capped_per_address_across_listeners(
    node_factory, caplog
):
    caplog.set_level(logging.WARNING, logger="mailstack.common.server")
    node = await node_factory(
        listen=("pop3", "imap", "submission"),
        hostname="crepes.fr",
        limits={"login_sessions_per_address": 2},
        submission={"allow_plaintext_on_loopback": True},
    )
    await node.add_user(USER, PASSWORD)

    def run() -> tuple[bytes, bytes, bytes]:
        with contextlib.ExitStack() as held:
            imap = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
            held.callback(imap.shutdown)
            pop = poplib.POP3("127.0.0.1", node.port("pop3"), timeout=10)
            held.callback(pop.close)
            # Two sessions of 127.0.0.1 not logged in, whatever the listener.
            sock, smtp_refused = raw_greeting(node.port("submission"), "127.0.0.1")
            sock.close()
            # Another address has its own share.
            sock, other = raw_greeting(node.port("submission"), "127.0.0.2")
            sock.close()
            # Logging in frees a place.
            imap.login(USER, PASSWORD)
            sock, after_login = raw_greeting(node.port("submission"), "127.0.0.1")
            sock.close()
            return smtp_refused, other, after_login

    smtp_refused, other, after_login = await asyncio.to_thread(run)
    assert smtp_refused.startswith(b"421 4.7.0 Too many connections not logged in")
    assert other.startswith(b"220 ")
    assert after_login.startswith(b"220 ")
    assert refusals(caplog) == [
        "session refused protocol=submission listener=submission client=127.0.0.1 "
        "cap=unauthenticated",
    ]
