"""WITHIN (RFC 5032), SAVEDATE (RFC 8514) and METADATA (RFC 5464) end to
end with imaplib and imapclient, clients we did not write."""

from __future__ import annotations

import asyncio
import imaplib
from typing import Any

import pytest

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
