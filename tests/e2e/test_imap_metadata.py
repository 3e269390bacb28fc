"""WITHIN (RFC 5032), SAVEDATE (RFC 8514) and METADATA (RFC 5464) end to
end with imaplib and imapclient, clients we did not write."""

from __future__ import annotations

import asyncio
import datetime
import imaplib
from typing import Any

import pytest
from imapclient import IMAPClient

from support import TestNode

pytestmark = pytest.mark.timeout(60)

USER = "dora@poly.edu"
PASSWORD = "secret-pw"


async def start(node_factory: Any) -> TestNode:
    node: TestNode = await node_factory(listen=("imap",))
    await node.add_user(USER, PASSWORD)
    return node


async def test_imaplib_within(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        with imaplib.IMAP4("127.0.0.1", node.port("imap")) as c:
            c.login(USER, PASSWORD)
            assert "WITHIN" in c.capabilities
            old = imaplib.Time2Internaldate(1_000_000_000)  # 2001
            c.append("INBOX", None, old, b"Subject: old\r\n\r\nold\r\n")
            c.append("INBOX", None, None, b"Subject: new\r\n\r\nnew\r\n")
            c.select("INBOX")
            assert c.search(None, "OLDER", "86400") == ("OK", [b"1"])
            assert c.search(None, "YOUNGER", "86400") == ("OK", [b"2"])
            assert c.uid("SEARCH", "OLDER", "1", "YOUNGER", "86400")[1] == [b""]
            with pytest.raises(imaplib.IMAP4.error, match="interval"):
                c.search(None, "OLDER", "0")

    await asyncio.to_thread(scenario)


def metadata_command(c: imaplib.IMAP4, name: str, *args: str) -> tuple[str, list[Any]]:
    """imaplib knows no METADATA command: send it as its own extension commands are."""
    imaplib.Commands.setdefault(name, ("AUTH", "SELECTED"))
    typ, data = c._simple_command(name, *args)  # type: ignore[attr-defined]
    if typ != "OK":
        return typ, data
    return c._untagged_response(typ, data, "METADATA")  # type: ignore[attr-defined]


async def test_imaplib_metadata(node_factory: Any) -> None:
    node = await start(node_factory)
    await node.add_user("eve@poly.edu", PASSWORD)

    def scenario() -> None:
        with imaplib.IMAP4("127.0.0.1", node.port("imap")) as c, imaplib.IMAP4(
            "127.0.0.1", node.port("imap")
        ) as other:
            c.login(USER, PASSWORD)
            other.login("eve@poly.edu", PASSWORD)
            assert {"METADATA", "METADATA-SERVER"} <= set(c.capabilities)
            c.create("Projects")
            typ, _ = metadata_command(
                c, "SETMETADATA", "Projects",
                '(/private/comment "mine" /shared/comment {12+}\r\nfor the team)',
            )
            assert typ == "OK"
            typ, data = metadata_command(
                c, "GETMETADATA", "Projects", "(/shared/comment /private/comment)"
            )
            assert typ == "OK"
            flat = b"".join(d if isinstance(d, bytes) else b"".join(d) for d in data)
            assert b'/private/comment "mine"' in flat and b"for the team" in flat

            # The entries follow RENAME and stay with the mailbox.
            c.rename("Projects", "Archive/Projects")
            typ, data = metadata_command(c, "GETMETADATA", "Archive/Projects", "/private/comment")
            assert typ == "OK" and data == [b'"Archive/Projects" (/private/comment "mine")']

            # Server entries; another user sees none of this user's private ones.
            typ, _ = metadata_command(c, "SETMETADATA", '""', '(/private/vendor/x/theme "dark")')
            assert typ == "OK"
            typ, data = metadata_command(
                other, "GETMETADATA", '""', "(/shared/admin /private/vendor/x/theme)"
            )
            assert typ == "OK"
            assert data == [
                b'"" (/private/vendor/x/theme NIL /shared/admin "mailto:postmaster@'
                + b"mx.test" + b'")'
            ]
            typ, data = metadata_command(c, "GETMETADATA", '""', "(DEPTH infinity) /private")
            assert data == [b'"" (/private/vendor/x/theme "dark")']

            with pytest.raises(imaplib.IMAP4.error, match="Invalid entry name"):
                metadata_command(c, "GETMETADATA", "INBOX", "/private/a*")
            c.delete("Archive/Projects")
            typ, data = metadata_command(c, "GETMETADATA", "Archive/Projects", "/private/comment")
            assert typ == "NO" and b"NONEXISTENT" in data[0]

    await asyncio.to_thread(scenario)


async def test_imapclient_savedate(node_factory: Any) -> None:
    node = await start(node_factory)
    long_ago = datetime.datetime(2001, 9, 9, 1, 46, 40, tzinfo=datetime.UTC)

    def scenario() -> None:
        with IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            assert b"SAVEDATE" in c.capabilities()
            c.append("INBOX", b"Subject: old\r\n\r\nold\r\n", msg_time=long_ago)
            c.create_folder("Kept")
            c.select_folder("INBOX")
            data = c.fetch([1], ["INTERNALDATE", "SAVEDATE"])[1]
            assert data[b"INTERNALDATE"].year == 2001
            saved = datetime.datetime.strptime(
                data[b"SAVEDATE"].decode().strip(), "%d-%b-%Y %H:%M:%S %z"
            )
            assert saved.year > 2001
            c.copy([1], "Kept")
            assert c.search(["SAVEDON", saved.date()]) == [1]
            assert c.search(["SAVEDBEFORE", datetime.date(2001, 9, 10)]) == []
            assert c.search(["BEFORE", datetime.date(2001, 9, 10)]) == [1]
            assert c.search(["SAVEDATESUPPORTED"]) == [1]
            c.select_folder("Kept")
            assert c.search(["SAVEDSINCE", saved.date()]) == [1]
            assert c.fetch([1], ["SAVEDATE"])[1][b"SAVEDATE"]

    await asyncio.to_thread(scenario)
