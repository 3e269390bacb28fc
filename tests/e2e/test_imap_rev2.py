"""IMAP4rev2, SEARCHRES and UTF8=ACCEPT end to end with imaplib (a client
we did not write: its enable() switches to UTF-8 for UTF8=ACCEPT)."""

from __future__ import annotations

import asyncio
import imaplib
from typing import Any

import pytest
from imapclient import IMAPClient

from support import TestNode

pytestmark = pytest.mark.timeout(60)

USER = "carol@poly.edu"
PASSWORD = "secret-pw"


async def start(node_factory: Any) -> TestNode:
    node: TestNode = await node_factory(listen=("imap",))
    await node.add_user(USER, PASSWORD)
    return node


def untagged(conn: imaplib.IMAP4, name: str) -> list[bytes]:
    _typ, data = conn._untagged_response("OK", [None], name)  # type: ignore[attr-defined]
    return [d for d in data if d is not None]


async def test_imaplib_imap4rev2_session(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        with imaplib.IMAP4("127.0.0.1", node.port("imap")) as c:
            assert "IMAP4REV2" in c.capabilities and "IMAP4REV1" in c.capabilities
            c.login(USER, PASSWORD)
            for n in range(1, 5):
                c.append("INBOX", None, None, f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode())
            typ, data = c._simple_command("ENABLE", "IMAP4rev2")  # type: ignore[attr-defined]
            assert typ == "OK"
            assert untagged(c, "ENABLED") == [b"IMAP4rev2"]
            typ, data = c.select("INBOX")
            assert data == [b"4"]
            assert untagged(c, "RECENT") == []
            assert untagged(c, "LIST") == [b'() "/" "INBOX"']
            typ, data = c.fetch("1", "(FLAGS)")
            assert data == [b"1 (FLAGS ())"]
            c.search(None, "UNSEEN")
            assert untagged(c, "ESEARCH")[-1].endswith(b"ALL 1:4")
            # SEARCHRES: save, then use "$" in later commands.
            typ, _ = c.search(None, "RETURN (SAVE)", "OR", "2", "3")
            assert typ == "OK" and untagged(c, "ESEARCH") == []
            typ, _ = c.store("$", "+FLAGS", "(\\Flagged)")
            assert typ == "OK"
            c.uid("SEARCH", "FLAGGED")
            assert untagged(c, "ESEARCH")[-1].endswith(b"UID ALL 2:3")
            c.copy("$", "Archive")
            assert c.select("Archive")[1] == [b"2"]

    await asyncio.to_thread(scenario)


async def test_imaplib_utf8_accept(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        with imaplib.IMAP4("127.0.0.1", node.port("imap")) as c:
            assert "UTF8=ACCEPT" in c.capabilities
            c.login(USER, PASSWORD)
            c.enable("UTF8=ACCEPT")  # imaplib sends UTF-8 from here on
            assert c.create('"Réunions/Été"')[0] == "OK"
            typ, data = c.list('""', '"Réunions/*"')
            assert data == ['(\\HasNoChildren) "/" "Réunions/Été"'.encode()]
            assert c.select('"Réunions/Été"')[0] == "OK"

    await asyncio.to_thread(scenario)

    def rev1() -> None:
        # Without UTF8=ACCEPT the name is modified UTF-7 on the wire, which
        # imapclient decodes.
        with imaplib.IMAP4("127.0.0.1", node.port("imap")) as c:
            c.login(USER, PASSWORD)
            _typ, data = c.list('""', "R*")
            assert b'"/" "R&AOk-unions/&AMk-t&AOk-"' in data[-1]
        with IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            assert "Réunions/Été" in [f[2] for f in c.list_folders()]

    await asyncio.to_thread(rev1)


async def test_imaplib_catenate(node_factory: Any) -> None:
    node = await start(node_factory)
    original = (
        b"Subject: report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nthe text\r\n--b--\r\n"
    )

    def scenario() -> None:
        with imaplib.IMAP4("127.0.0.1", node.port("imap")) as c:
            assert "CATENATE" in c.capabilities
            c.login(USER, PASSWORD)
            c.append("INBOX", None, None, original)
            url = '"imap://mx.test/INBOX/;UID=1/;SECTION=HEADER"'
            typ, _ = c._simple_command(  # type: ignore[attr-defined]
                "APPEND", "Drafts", f'CATENATE (URL {url} URL "/INBOX/;UID=1/;SECTION=1")'
            )
            assert typ == "OK"
            c.select("Drafts")
            typ, data = c.fetch("1", "(BODY.PEEK[])")
            assert data[0][1] == original.split(b"\r\n\r\n")[0] + b"\r\n\r\nthe text"
            typ, data = c._simple_command(  # type: ignore[attr-defined]
                "APPEND", "Drafts", 'CATENATE (URL "/INBOX/;UID=7")'
            )
            assert typ == "NO" and data[0].startswith(b"[BADURL /INBOX/;UID=7]"), data

    await asyncio.to_thread(scenario)


async def test_imapclient_objectid(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        with IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            assert b"OBJECTID" in c.capabilities()
            c.append("INBOX", b"Subject: a\r\nMessage-ID: <a@x>\r\n\r\none\r\n")
            c.append("INBOX", b"Subject: Re: a\r\nReferences: <a@x>\r\n\r\ntwo\r\n")
            c.append("INBOX", b"Subject: b\r\n\r\nthree\r\n")
            c.select_folder("INBOX")
            data = c.fetch([1, 2, 3], ["EMAILID", "THREADID"])
            emails = [data[n][b"EMAILID"][0] for n in (1, 2, 3)]
            threads = [data[n][b"THREADID"][0] for n in (1, 2, 3)]
            assert len(set(emails)) == 3 and all(e.startswith(b"E") for e in emails)
            assert threads[0] == threads[1] != threads[2]
            assert c.search(["THREADID", threads[0].decode()]) == [1, 2]
            box = c.folder_status("INBOX", ["MAILBOXID"])[b"MAILBOXID"]
            assert box[0].startswith(b"M")
            c.move([3], "Archive")
            c.select_folder("Archive")
            assert c.fetch([1], ["EMAILID"])[1][b"EMAILID"][0] == emails[2]

    await asyncio.to_thread(scenario)


async def test_imaplib_rev2_rename_oldname_status_deleted_haschildren(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        with imaplib.IMAP4("127.0.0.1", node.port("imap")) as c:
            c.login(USER, PASSWORD)
            typ, _ = c._simple_command("ENABLE", "IMAP4rev2")  # type: ignore[attr-defined]
            assert typ == "OK"
            assert c.create("Summer/2026")[0] == "OK"
            assert c.rename("Summer/2026", "Hiver")[0] == "OK"
            # OLDNAME says where the renamed mailbox came from.
            assert untagged(c, "LIST") == [b'() "/" "Hiver" ("OLDNAME" ("Summer/2026"))']
            for n in range(3):
                c.append("Hiver", "(\\Deleted)" if n else None, None, b"Subject: x\r\n\r\nbody\r\n")
            typ, data = c.status("Hiver", "(MESSAGES DELETED SIZE)")
            assert typ == "OK" and data == [b'"Hiver" (MESSAGES 3 DELETED 2 SIZE 60)']
            assert c.create("Summer/a")[0] == "OK"
            assert c.delete("Summer")[0] == "OK"  # Summer/a stays; Summer is \Noselect
            typ, data = c.delete("Summer")
            assert typ == "NO" and b"[HASCHILDREN]" in data[0]

    await asyncio.to_thread(scenario)
