"""`serve --trace` never shows a credential: SMTP AUTH (RFC 4954), POP3 PASS
and AUTH (RFC 1939, RFC 5034), IMAP LOGIN and AUTHENTICATE (RFC 3501), in
clear and inside STARTTLS, whole or split across reads."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import poplib
import smtplib
import socket
import ssl
import time
from typing import Any

from mailstack.common.trace import CREDENTIALS_ELIDED

USER = "alice@crepes.fr"
PASSWORD = "Sup3r-secret-pw"


def secrets_of(user: str, password: str) -> list[str]:
    """The password and every base64 form a client may send it in."""
    return [
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
        base64.b64encode(f"{user}\0{user}\0{password}".encode()).decode(),
    ]


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the node's certificate is self-signed
    return context


def assert_no_secret(out: str) -> None:
    for secret in secrets_of(USER, PASSWORD):
        assert secret not in out, f"{secret!r} in the trace"


async def traced_node(node_factory: Any, listen: tuple[str, ...], **tables: Any) -> Any:
    node = await node_factory(listen=listen, hostname="crepes.fr", trace=True, **tables)
    await node.add_user(USER, PASSWORD)
    return node


async def test_smtp_auth_is_elided_in_clear_and_under_starttls(node_factory, capsys):
    node = await traced_node(
        node_factory, ("submission",), submission={"allow_plaintext_on_loopback": True}
    )
    port = node.port("submission")

    def dialogue() -> None:
        # AUTH PLAIN with its initial response, in clear (loopback allowed).
        with smtplib.SMTP("127.0.0.1", port, local_hostname="alice-pc", timeout=10) as s:
            s.login(USER, PASSWORD)
        # AUTH LOGIN: user and password each on a line after a 334.
        with smtplib.SMTP("127.0.0.1", port, local_hostname="alice-pc", timeout=10) as s:
            s.ehlo()
            s.user, s.password = USER, PASSWORD
            s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        # Both again inside STARTTLS.
        with smtplib.SMTP("127.0.0.1", port, local_hostname="alice-pc", timeout=10) as s:
            s.starttls(context=tls_context())
            s.login(USER, PASSWORD)
            s.sendmail(USER, [USER], b"From: alice@crepes.fr\r\nSubject: hi\r\n\r\nhi\r\n")
        with smtplib.SMTP("127.0.0.1", port, local_hostname="alice-pc", timeout=10) as s:
            s.starttls(context=tls_context())
            s.ehlo()
            s.user, s.password = USER, PASSWORD
            s.auth("LOGIN", s.auth_login, initial_response_ok=False)

    await asyncio.to_thread(dialogue)
    out = capsys.readouterr().out
    assert_no_secret(out)
    assert f"C: AUTH PLAIN {CREDENTIALS_ELIDED}" in out
    assert "C: AUTH LOGIN\n" in out and f"C: {CREDENTIALS_ELIDED}" in out
    assert "S: 235 2.7.0 Authentication successful" in out
    assert "C: mail FROM:<alice@crepes.fr>" in out  # the rest is still shown


async def test_smtp_auth_split_across_reads_is_elided(node_factory, capsys):
    node = await traced_node(
        node_factory, ("submission",), submission={"allow_plaintext_on_loopback": True}
    )
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())

    def dribble() -> bytes:
        with socket.create_connection(("127.0.0.1", node.port("submission")), 10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = sock.makefile("rb")
            f.readline()
            sock.sendall(b"EHLO alice-pc\r\n")
            while f.readline()[3:4] == b"-":
                pass
            # The command and its secret in three pieces, a pause between each.
            for piece in (b"AUTH PL", b"AIN " + token[:9], token[9:] + b"\r\n"):
                sock.sendall(piece)
                time.sleep(0.1)
            reply = f.readline()
            sock.sendall(b"QUIT\r\n")
            f.readline()
            return reply

    assert (await asyncio.to_thread(dribble)).startswith(b"235")
    out = capsys.readouterr().out
    assert_no_secret(out)
    assert token[:9].decode() not in out and token[9:].decode() not in out
    assert f"C: AUTH PLAIN {CREDENTIALS_ELIDED}" in out


async def test_pop3_pass_and_auth_are_elided_in_clear_and_under_stls(node_factory, capsys):
    node = await traced_node(node_factory, ("pop3",))
    port = node.port("pop3")

    def dialogue() -> None:
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        client.user(USER)
        client.pass_(PASSWORD)
        client.quit()
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        client.stls(tls_context())
        client.user(USER)
        client.pass_(PASSWORD)
        client.quit()
        # AUTH PLAIN (RFC 5034) with the response after the continuation, under STLS.
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        client.stls(tls_context())
        assert client._shortcmd("AUTH PLAIN").startswith(b"+")
        token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        assert client._shortcmd(token).startswith(b"+OK")
        client.quit()

    await asyncio.to_thread(dialogue)
    out = capsys.readouterr().out
    assert_no_secret(out)
    assert f"C: USER {USER}" in out and "C: PASS" in out
    assert "C: AUTH PLAIN\n" in out


async def test_imap_login_and_authenticate_are_elided_in_clear_and_under_starttls(
    node_factory, capsys
):
    node = await traced_node(node_factory, ("imap",))
    port = node.port("imap")

    def dialogue() -> None:
        client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        client.login(USER, PASSWORD)
        client.logout()
        client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        client.starttls(tls_context())
        client.login(USER, PASSWORD)
        client.logout()
        client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        client.starttls(tls_context())
        client.authenticate("PLAIN", lambda _challenge: f"\0{USER}\0{PASSWORD}".encode())
        client.logout()
        # The password as a literal (RFC 3501 §4.3), the way clients send odd ones.
        client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        client.literal = PASSWORD.encode()
        client._simple_command("LOGIN", USER)
        client.logout()

    await asyncio.to_thread(dialogue)
    out = capsys.readouterr().out
    assert_no_secret(out)
    assert f"LOGIN {CREDENTIALS_ELIDED}" in out
    assert f"AUTHENTICATE PLAIN {CREDENTIALS_ELIDED}" in out
