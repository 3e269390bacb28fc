"""NOTIFY (RFC 5465) end to end, with clients we did not write: an imaplib
session with one mailbox selected hears, without sending a command, of a
delivery over SMTP to another mailbox (untagged STATUS), of another
session's expunge and of its mailbox changes (LIST, OLDNAME); imapclient
reads MessageNew's fetch-att during IDLE; across two nodes on one
PostgreSQL store, a session on one node hears mail the other node took; and
one session hears another's SETMETADATA (MailboxMetadataChange,
ServerMetadataChange), on one node and across two."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from support import TestNode, postgres_nodes

pytestmark = pytest.mark.timeout(60)

USER = "bob@hamburger.edu"
PASSWORD = "hungry"


def message(n: int) -> bytes:
    return (
        f"From: Alice <alice@crepes.fr>\r\nTo: {USER}\r\nSubject: note {n}\r\n"
        f"Message-ID: <{n}@crepes.fr>\r\n\r\nbody {n}\r\n"
    ).encode()


def deliver(port: int, n: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("alice@crepes.fr", [USER], message(n))


def command(c: imaplib.IMAP4, text: str) -> list[bytes]:
    """Send one command as written; the lines up to its tagged OK."""
    tag = c._new_tag().decode()  # type: ignore[attr-defined]
    c.send(f"{tag} {text}\r\n".encode())
    lines = []
    while True:
        line = c.readline()
        lines.append(line)
        if line.startswith(tag.encode() + b" "):
            assert line.startswith(tag.encode() + b" OK"), lines
            return lines


def pushed(c: imaplib.IMAP4) -> bytes:
    """The next line the server sends of its own accord."""
    c.sock.settimeout(10)
    return c.readline()


async def test_notify_status_list_and_oldname_between_commands(node_factory: Any) -> None:
    node: TestNode = await node_factory(listen=("imap", "smtp"))
    await node.add_user(USER, PASSWORD)

    def scenario() -> None:
        a = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        assert "NOTIFY" in a.capabilities
        a.login(USER, PASSWORD)
        a.create("Lists")
        assert a.select("Lists")[0] == "OK"
        lines = command(
            a,
            "NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge))"
            " (INBOXES (MessageNew MessageExpunge)) (PERSONAL (MailboxName))",
        )
        assert lines[0].startswith(b'* STATUS "INBOX" (MESSAGES 0 UIDNEXT 1 ')
        # Mail arrives in INBOX over SMTP while Lists is selected: told at once.
        deliver(node.port("smtp"), 1)
        assert pushed(a).startswith(b'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 ')
        # Another session expunges it; then creates and renames a mailbox.
        b = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        b.login(USER, PASSWORD)
        b.select("INBOX")
        b.store("1", "+FLAGS", "(\\Deleted)")
        b.expunge()
        assert pushed(a).startswith(b'* STATUS "INBOX" (MESSAGES 0 UIDNEXT 2 ')
        b.create("Projects")
        assert pushed(a) == b'* LIST () "/" "Projects"\r\n'
        b.rename("Projects", "Done")
        assert pushed(a) == b'* LIST () "/" "Done" ("OLDNAME" ("Projects"))\r\n'
        b.logout()
        # NOTIFY NONE: the next delivery is only seen by asking.
        command(a, "NOTIFY NONE")
        deliver(node.port("smtp"), 2)
        lines = command(a, "STATUS INBOX (MESSAGES)")
        assert lines == [b'* STATUS "INBOX" (MESSAGES 1)\r\n', lines[-1]]
        a.logout()

    await asyncio.to_thread(scenario)


async def test_imapclient_message_new_fetch_att_in_idle(node_factory: Any) -> None:
    node: TestNode = await node_factory(listen=("imap", "smtp"))
    await node.add_user(USER, PASSWORD)

    def scenario() -> None:
        with IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            c.select_folder("INBOX")
            events = b"(SELECTED (MessageNew (UID ENVELOPE) MessageExpunge))"
            typ, _ = c._raw_command(b"NOTIFY", [b"SET", events], uid=False)
            assert typ == "OK"
            c.idle()
            deliver(node.port("smtp"), 7)
            seen: list[Any] = []
            for _ in range(10):
                seen += c.idle_check(timeout=2)
                if any(r[1] == b"FETCH" for r in seen):
                    break
            c.idle_done()
            assert (1, b"EXISTS") in seen
            fetch = next(r for r in seen if r[1] == b"FETCH")
            assert fetch[2][fetch[2].index(b"UID") + 1] == 1
            envelope = fetch[2][fetch[2].index(b"ENVELOPE") + 1]
            assert envelope[1] == b"note 7"
            # MessageNew's fetch-att reads without setting \Seen.
            assert b"\\Seen" not in c.get_flags([1])[1]

    await asyncio.to_thread(scenario)


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[list[TestNode]]:
    async with postgres_nodes(tmp_path, USER, PASSWORD) as started:
        yield started


async def test_notify_across_two_nodes_on_postgresql(nodes: Any) -> None:
    a, b = nodes

    def scenario() -> None:
        c = imaplib.IMAP4("127.0.0.1", b.port("imap"), timeout=10)
        c.login(USER, PASSWORD)
        c.create("Lists")
        c.select("Lists")
        command(c, "NOTIFY SET (INBOXES (MessageNew MessageExpunge)) (PERSONAL (MailboxName))")
        deliver(a.port("smtp"), 1)  # taken by the other node
        assert pushed(c).startswith(b'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 ')
        other = imaplib.IMAP4("127.0.0.1", a.port("imap"), timeout=10)
        other.login(USER, PASSWORD)
        other.create("Elsewhere")
        other.logout()
        assert pushed(c) == b'* LIST () "/" "Elsewhere"\r\n'
        c.logout()

    await asyncio.to_thread(scenario)


async def test_imaplib_hears_another_sessions_setmetadata(node_factory: Any) -> None:
    """RFC 5465 §5.7 with RFC 5464 §4.4.2: one imaplib session sets entries,
    the other, NOTIFY on, hears their names pushed and reads them."""
    node: TestNode = await node_factory(listen=("imap",))
    await node.add_user(USER, PASSWORD)

    def scenario() -> None:
        a = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        a.login(USER, PASSWORD)
        assert "METADATA" in a.capabilities
        command(a, "NOTIFY SET (PERSONAL (MailboxMetadataChange ServerMetadataChange))")
        b = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        b.login(USER, PASSWORD)
        command(b, 'SETMETADATA INBOX (/private/comment "from b" /shared/comment "all")')
        assert pushed(a) == b'* METADATA "INBOX" /private/comment /shared/comment\r\n'
        command(b, 'SETMETADATA "" (/private/vendor/motd "hi")')
        assert pushed(a) == b'* METADATA "" /private/vendor/motd\r\n'
        lines = command(a, "GETMETADATA INBOX /private/comment")
        assert lines[0] == b'* METADATA "INBOX" (/private/comment "from b")\r\n'
        b.logout()
        a.logout()

    await asyncio.to_thread(scenario)


async def test_metadata_change_across_two_nodes_on_postgresql(nodes: Any) -> None:
    a, b = nodes

    def scenario() -> None:
        c = imaplib.IMAP4("127.0.0.1", b.port("imap"), timeout=10)
        c.login(USER, PASSWORD)
        command(c, "NOTIFY SET (INBOXES (MailboxMetadataChange))")
        other = imaplib.IMAP4("127.0.0.1", a.port("imap"), timeout=10)
        other.login(USER, PASSWORD)
        command(other, 'SETMETADATA INBOX (/shared/comment "from node a")')
        other.logout()
        assert pushed(c) == b'* METADATA "INBOX" /shared/comment\r\n'
        c.logout()

    await asyncio.to_thread(scenario)
