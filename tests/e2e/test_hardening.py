"""Issue 15 item 12 with real clients: submission takes AUTH lines up to
RFC 4954's 12,288 octets; an over-long IMAP AUTHENTICATE response is
answered once and never read as a command; a non-canonical modified UTF-7
mailbox name is refused."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import smtplib
import socket
import time

import pytest

USER = "alice@crepes.fr"
PASSWORD = "hungry"


@pytest.fixture
async def node(node_factory):
    node = await node_factory(
        listen=("submission", "imap"),
        hostname="crepes.fr",
        limits={"login_failures": 50},
        submission={"allow_plaintext_on_loopback": True},
    )
    await node.add_user(USER, PASSWORD)
    return node


def plain(password: str) -> str:
    return base64.b64encode(f"\0{USER}\0{password}".encode()).decode()


async def test_submission_takes_auth_lines_up_to_12288_octets(node):
    def run() -> list[int]:
        with smtplib.SMTP("127.0.0.1", node.port("submission"), timeout=10) as smtp:
            smtp.ehlo()
            codes = []
            # An initial response of 10,000 octets: over 2,048, under 12,288.
            long_guess = plain("x" * 7400)
            assert 2048 < len("AUTH PLAIN " + long_guess) + 2 < 12288
            codes.append(smtp.docmd("AUTH", "PLAIN " + long_guess)[0])
            # The same as a response line after 334.
            codes.append(smtp.docmd("AUTH", "PLAIN")[0])
            codes.append(smtp.docmd(long_guess)[0])
            # Past 12,288 octets the line is too long.
            codes.append(smtp.docmd("AUTH", "PLAIN " + plain("x" * 9300))[0])
            codes.append(smtp.docmd("AUTH", "PLAIN " + plain(PASSWORD))[0])
            return codes

    # 501: framed whole and read as SASL PLAIN, whose fields are at most
    # 255 octets (RFC 4616 §2); a line too long would be 500.
    assert await asyncio.to_thread(run) == [501, 334, 501, 500, 235]


def exchange(port: int, *chunks: bytes) -> bytes:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    with sock:
        out = sock.recv(4096)
        for chunk in chunks:
            sock.sendall(chunk)
            time.sleep(0.2)
        sock.settimeout(0.5)
        try:
            while data := sock.recv(65536):
                out += data
        except TimeoutError:
            pass
        return out


async def test_an_over_long_authenticate_response_is_not_read_as_a_command(node_factory):
    node = await node_factory(listen=("imap",), limits={"imap_line": 1024})
    response = b"Zm9v" * 400  # 1,600 octets of base64, past the 1,024 limit
    reply = await asyncio.to_thread(
        exchange,
        node.port("imap"),
        b"a AUTHENTICATE PLAIN\r\n",
        response[:1200],
        response[1200:] + b"\r\nb NOOP\r\n",
    )
    lines = reply.split(b"\r\n")[1:]
    assert lines[:3] == [b"+ ", b"a BAD [TOOBIG] Line too long", b"b OK NOOP completed"]
    assert b"Zm9v" not in reply


@pytest.mark.parametrize("command", ["create", "select", "rename", "append", "status"])
async def test_a_non_canonical_modified_utf7_name_is_refused(node, command):
    def run() -> tuple[str, list[bytes]]:
        imap = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        imap.login(USER, PASSWORD)
        try:
            if command != "create":
                assert imap.create("a")[0] == "OK"
            # RFC 3501 §5.1.3: "&AGE-" spells "a", which must spell itself.
            name = '"&AGE-"'
            try:
                if command == "create":
                    status = imap.create(name)[0]
                elif command == "select":
                    status = imap.select(name)[0]
                elif command == "rename":
                    status = imap.rename(name, "b")[0]
                elif command == "append":
                    status = imap.append(name, None, None, b"Subject: x\r\n\r\nx\r\n")[0]
                else:
                    status = imap.status(name, "(MESSAGES)")[0]
            except imaplib.IMAP4.error as refused:
                status = "BAD" if "BAD" in str(refused) else str(refused)
            names = [line.rsplit(b" ", 1)[-1] for line in imap.list()[1] if line]
            return status, names
        finally:
            imap.logout()

    status, names = await asyncio.to_thread(run)
    assert status == "BAD"
    # No "a" made by CREATE, none renamed away.
    assert (b"a" in names or b'"a"' in names) is (command != "create")
