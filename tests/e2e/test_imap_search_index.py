"""SEARCH through the full-text index with a real client (imapclient):
messages APPENDed, searched by TEXT, BODY, SUBJECT and HEADER (unicode,
case, RFC 2047 encoded words, a string of two characters the index cannot
look up), and an expunged message no longer found."""

from __future__ import annotations

import asyncio
from pathlib import Path

from imapclient import IMAPClient

from support import TestNode, make_config, open_fast_store

USER, PASSWORD = "bob@hamburger.edu", "hungry"
MESSAGES = [
    b"From: Alice <alice@crepes.fr>\r\nSubject: =?utf-8?q?Cr=C3=AApes_for_lunch?=\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nMeet at the Stra\xc3\x9fe caf\xc3\xa9.\r\n",
    b"From: Bob <bob@hamburger.edu>\r\nSubject: Quarterly report\r\n\r\nNumbers attached.\r\n",
    b"From: Carol <carol@umass.edu>\r\nSubject: lunch?\r\nX-Mood: hungry\r\n\r\n"
    b"Pizza or crepes\r\n",
]


def session(port: int) -> dict[str, list[int]]:
    with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10) as c:
        c.login(USER, PASSWORD)
        for raw in MESSAGES:
            c.append("INBOX", raw)
        c.select_folder("INBOX")
        found = {
            "text crêpes": c.search(["TEXT", "CRÊPES"], charset="UTF-8"),
            "text strasse": c.search(["TEXT", "strasse"], charset="UTF-8"),
            "body crepes": c.search(["BODY", "crepes"]),
            "subject lunch": c.search(["SUBJECT", "LUNCH"]),
            "header mood": c.search(["HEADER", "X-Mood", "hung"]),
            "text re": c.search(["TEXT", "re"]),  # two characters: scanned
            "or": c.search(["OR", "BODY", "numbers", "TEXT", "pizza"]),
        }
        c.add_flags([3], ["\\Deleted"])
        c.expunge()
        found["after expunge"] = c.search(["TEXT", "pizza"])
        found["body crepes after"] = c.search(["BODY", "crepes"])
        c.logout()
    return found


async def test_search_through_the_index_with_imapclient(tmp_path: Path) -> None:
    node = TestNode(make_config(tmp_path / "node", ("imap",)), store_factory=open_fast_store)
    await node.start()
    try:
        await node.add_user(USER, PASSWORD)
        found = await asyncio.to_thread(session, node.port("imap"))
    finally:
        await node.stop()
    assert found == {
        "text crêpes": [1],
        "text strasse": [1],  # "Straße" casefolds to "strasse", as the scan matched
        "body crepes": [3],
        "subject lunch": [1, 3],
        "header mood": [3],
        "text re": [1, 2, 3],
        "or": [2, 3],
        "after expunge": [],
        "body crepes after": [],
    }
