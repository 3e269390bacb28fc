"""IMAP end to end: the compliance mistakes of issue 16, as imaplib and
imapclient meet them on a real node.

Atoms with '[' (RFC 3501 §9), MULTIAPPEND of bare literals (RFC 3502),
CONDSTORE's HIGHESTMODSEQ on a CONDSTORE-enabling FETCH (RFC 7162 §3.1) and
ESEARCH MIN/MAX MODSEQ (RFC 4731 §3.2), ENVELOPE names from comments,
LIST-EXTENDED (RFC 5258) errors and CHILDINFO, SEARCH FROM on parsed
addresses, FETCH of a message another session expunged (RFC 2180 §4.1.1);
and the small extensions: QUOTA (RFC 9208), PREVIEW (RFC 8970), BINARY
(RFC 3516).
"""

from __future__ import annotations

import asyncio
import imaplib
from typing import Any

import pytest
from imapclient import IMAPClient

from support import TestNode, append

pytestmark = pytest.mark.timeout(60)

USER = "carol@poly.edu"
PASSWORD = "secret-pw"
ODD = (
    b"From: <user-from (comment)@ (comment) domain.org>\r\n"
    b"Sender: user@domain.org (Real Name)\r\nSubject: odd\r\n\r\nodd body\r\n"
)


async def start(node_factory: Any, count: int = 3) -> TestNode:
    node: TestNode = await node_factory(listen=("imap",))
    account = await node.add_user(USER, PASSWORD)
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    for n in range(1, count + 1):
        await append(node.store, inbox.id, b"Subject: m%d\r\n\r\nbody %d\r\n" % (n, n))
    await append(node.store, inbox.id, ODD)
    return node


def connect(node: TestNode) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
    client.login(USER, PASSWORD)
    return client


async def test_imaplib_meets_the_fixed_mistakes(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        c = connect(node)
        status, data = c.select("foo[bar")
        assert status == "NO", data
        assert c.select("INBOX")[0] == "OK"
        # RFC 7162 §3.1: FETCH MODSEQ enables CONDSTORE and says HIGHESTMODSEQ.
        status, data = c.fetch("1", "(MODSEQ)")
        assert status == "OK" and b"MODSEQ" in data[0]
        assert c.untagged_responses.get("OK", [])
        assert any(b"HIGHESTMODSEQ" in x for x in c.untagged_responses.pop("OK"))
        status, data = c.search(None, "FROM", "user-from@domain.org")
        assert (status, data) == ("OK", [b"4"])
        status, data = c.fetch("4", "(ENVELOPE)")
        assert b'(("Real Name" NIL "user" "domain.org"))' in data[0]
        for args in (("(RECURSIVEMATCH REMOTE)", '""', '""'), ('""', '""', "RETURN", "(unknown)")):
            with pytest.raises(imaplib.IMAP4.error, match="LIST command error: BAD"):
                c._simple_command("LIST", *args)
        # Another session expunges message 2: this one still fetches it.
        other = connect(node)
        other.select("INBOX")
        other.store("2", "+FLAGS.SILENT", "(\\Deleted)")
        other.expunge()
        other.logout()
        status, data = c.fetch("2", "(BODY.PEEK[TEXT])")
        assert status == "OK" and data[0][1] == b"body 2\r\n", data
        assert c.noop()[0] == "OK"
        assert c.untagged_responses.get("EXPUNGE") == [b"2"]
        c.logout()

    await asyncio.to_thread(scenario)


async def test_imapclient_multiappend_list_extended_and_esearch(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        with IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            # RFC 3502: literals one after the other, no flags or dates.
            messages = [b"Subject: a\r\n\r\none\r\n", b"Subject: b\r\n\r\ntwo\r\n"]
            reply = c.multiappend("INBOX", messages)
            assert reply[0] == "OK" and b"APPENDUID" in reply[1][0]
            c.create_folder("Lists/ietf")
            c.subscribe_folder("Lists/ietf")
            typ, data = c._imap._simple_command(
                "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "Lists"
            )
            _typ, lines = c._imap._untagged_response(typ, data, "LIST")
            assert lines == [b'(\\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))']
            c.select_folder("INBOX")
            assert c.search(["ALL"]) == [1, 2, 3, 4, 5, 6]
            c.add_flags([2], [b"\\Flagged"])
            c.add_flags([5], [b"\\Flagged"])
            modseqs = {n: d[b"MODSEQ"][0] for n, d in c.fetch([2, 5], ["MODSEQ"]).items()}
            typ, data = c._imap._simple_command(
                "SEARCH", "RETURN", "(MIN)", "FLAGGED", "MODSEQ", "1"
            )
            _typ, lines = c._imap._untagged_response(typ, data, "ESEARCH")
            assert lines[0].endswith(b"MIN 2 MODSEQ %d" % modseqs[2]), lines

    await asyncio.to_thread(scenario)


async def test_imapclient_quota_preview_and_binary(node_factory: Any) -> None:
    node: TestNode = await node_factory(listen=("imap",))
    await node.store.domain_add("poly.edu")
    account = await node.store.account_add(USER, PASSWORD, quota=1024 * 1024)
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    await append(
        node.store,
        inbox.id,
        b"Subject: q\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\naGkh\r\n",
    )
    await append(node.store, inbox.id, b"Subject: p\r\n\r\nLunch\r\n  at   noon?\r\n")
    used_kib = ((await node.store.account_get(USER)).used + 1023) // 1024

    def scenario() -> None:
        with IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            caps = c.capabilities()
            assert {b"QUOTA", b"QUOTA=RES-STORAGE", b"PREVIEW", b"BINARY"} <= set(caps)
            roots, quotas = c.get_quota_root("INBOX")
            assert roots.mailbox == "INBOX" and roots.quota_roots == [""]
            assert [(q.quota_root, q.resource, q.usage, q.limit) for q in quotas] == [
                ("", "STORAGE", used_kib, 1024)
            ]
            c.select_folder("INBOX")
            data = c.fetch([2], ["PREVIEW"])
            assert data[2][b"PREVIEW"] == b"Lunch at noon?"
            # (content with NULs comes as a literal8, which imapclient cannot
            # read; the unit tests cover it)
            data = c.fetch([1], ["BINARY.PEEK[1]", "BINARY.SIZE[1]"])
            assert data[1][b"BINARY[1]"] == b"hi!"
            assert data[1][b"BINARY.SIZE[1]"] == 3
            assert b"\\Seen" not in c.get_flags([1])[1]

    await asyncio.to_thread(scenario)
