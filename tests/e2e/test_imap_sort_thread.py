"""SORT, THREAD, ESORT, PARTIAL and CONTEXT=SEARCH end to end, driven by
imapclient and imaplib (clients we did not write) over a real node."""

from __future__ import annotations

import asyncio
import imaplib
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from imapclient import IMAPClient

from support import TestNode

pytestmark = pytest.mark.timeout(60)

USER = "carol@poly.edu"
PASSWORD = "secret-pw"


def mail(n: int, subject: str, sender: str, day: int, refs: str = "") -> bytes:
    extra = f"References: {refs}\r\n" if refs else ""
    return (
        f"From: {sender}\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Date: {day} Jan 2022 10:00:00 +0000\r\nMessage-ID: <{n}@poly.edu>\r\n{extra}"
        f"\r\nbody {n}\r\n"
    ).encode()


MESSAGES = [
    mail(1, "Plans", "Zoe <zoe@z.example>", 3),
    mail(2, "Re: Plans", "amy@a.example", 5, "<1@poly.edu>"),
    mail(3, "Budget", "Bob <bob@b.example>", 1),
    mail(4, "Re: Re: plans", "Carl <carl@c.example>", 6, "<1@poly.edu> <2@poly.edu>"),
    mail(5, "Fwd: Budget", "amy@a.example", 2),
]


async def start(node_factory: Any) -> TestNode:
    node: TestNode = await node_factory(listen=("imap",))
    await node.add_user(USER, PASSWORD)
    return node


async def test_imapclient_sort_and_thread(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        with IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            caps = c.capabilities()
            for cap in (b"SORT", b"SORT=DISPLAY", b"THREAD=REFERENCES", b"ESORT"):
                assert cap in caps
            for raw in MESSAGES:
                c.append("INBOX", raw)
            c.select_folder("INBOX")
            assert c.sort(["DATE"]) == [3, 5, 1, 2, 4]
            assert c.sort(["SUBJECT", "REVERSE DATE"]) == [5, 3, 4, 2, 1]
            assert c.sort(["FROM"], ["NOT", "FROM", "zoe"]) == [2, 5, 3, 4]
            assert c.sort(["DISPLAYFROM"]) == [2, 5, 3, 4, 1]
            assert c.thread("REFERENCES") == ((3, 5), (1, 2, 4))
            assert c.thread("ORDEREDSUBJECT") == ((3, 5), (1, (2,), (4,)))
            assert c.thread("REFERENCES", ["SUBJECT", "budget"]) == ((3, 5),)

    await asyncio.to_thread(scenario)


def untagged(conn: imaplib.IMAP4, name: str) -> list[bytes]:
    typ, data = conn._untagged_response("OK", [None], name)  # type: ignore[attr-defined]
    return [d for d in data if d is not None]


def noop_until(conn: imaplib.IMAP4, name: str, wanted: Callable[[bytes], bool]) -> list[bytes]:
    """NOOP until an untagged ``name`` response that ``wanted`` accepts has
    come (another session's change reaches this one a moment after that
    session's tagged OK); every such response, in order."""
    seen: list[bytes] = []
    deadline = time.monotonic() + 10
    while not any(wanted(r) for r in seen) and time.monotonic() < deadline:
        conn.noop()
        seen += untagged(conn, name)
        time.sleep(0.05)
    return seen


async def test_imaplib_esort_partial_and_context(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        port = node.port("imap")
        with imaplib.IMAP4("127.0.0.1", port) as a, imaplib.IMAP4("127.0.0.1", port) as b:
            a.login(USER, PASSWORD)
            b.login(USER, PASSWORD)
            for raw in MESSAGES:
                a.append("INBOX", None, None, raw)
            a.select("INBOX")
            b.select("INBOX")
            typ, data = a.uid(
                "SORT", "RETURN (MIN MAX COUNT ALL)", "(REVERSE DATE)", "UTF-8", "ALL"
            )
            assert typ == "OK"
            assert untagged(a, "ESEARCH")[-1].endswith(b"UID MIN 4 MAX 3 ALL 4,2,1,5,3 COUNT 5")
            typ, data = a.uid("SEARCH", "RETURN (PARTIAL -1:-2)", "ALL")
            assert untagged(a, "ESEARCH")[-1].endswith(b"UID PARTIAL (-1:-2 4:5)")
            typ, data = a.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
            assert data == [b"(3 5)(1 2 4)"]
            # A search kept up to date: b's flag change and expunge reach it.
            typ, data = a.search(None, "RETURN (UPDATE)", "UNSEEN")
            first = untagged(a, "ESEARCH")[-1]
            assert first.endswith(b"ALL 1:5")
            match = re.match(rb'\(TAG "([^"]+)"\)', first)
            assert match is not None
            tag = match.group(1).decode()
            b.store("2", "+FLAGS", "(\\Seen)")
            b.store("4", "+FLAGS", "(\\Deleted)")
            b.expunge()
            updates = noop_until(a, "ESEARCH", lambda u: b"REMOVEFROM (0 4)" in u)
            assert any(re.search(rb"REMOVEFROM \(0 2\)", u) for u in updates), updates
            assert any(re.search(rb"REMOVEFROM \(0 4\)", u) for u in updates), updates
            imaplib.Commands.setdefault("CANCELUPDATE", ("SELECTED",))
            typ, _data = a._simple_command("CANCELUPDATE", f'"{tag}"')  # type: ignore[attr-defined]
            assert typ == "OK"
            untagged(a, "FETCH")
            b.store("1", "+FLAGS", "(\\Seen)")
            # The change arrives, and no update comes with it.
            fetched = noop_until(a, "FETCH", lambda f: f.startswith(b"1 (") and b"\\Seen" in f)
            assert any(f.startswith(b"1 (") and b"\\Seen" in f for f in fetched), fetched
            assert untagged(a, "ESEARCH") == []
            with pytest.raises(imaplib.IMAP4.error):
                a._simple_command("CANCELUPDATE", f'"{tag}"')  # type: ignore[attr-defined]
            a.logout()
            b.logout()

    await asyncio.to_thread(scenario)
