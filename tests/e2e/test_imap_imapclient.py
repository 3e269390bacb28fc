"""IMAP end to end with imapclient: a higher-level client we did not write,
which parses every response (BODYSTRUCTURE, ENVELOPE, ESEARCH, ...) strictly.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from imapclient import IMAPClient

from support import TestNode, append

pytestmark = pytest.mark.timeout(60)

USER = "carol@poly.edu"
PASSWORD = "secret-pw"

MIXED = (
    b"From: Alice <alice@crepes.fr>\r\nTo: carol@poly.edu, Group: a@b.c, d@e.f;\r\n"
    b"Subject: =?utf-8?q?r=C3=A9sum=C3=A9?=\r\nDate: Tue, 8 Feb 1994 10:00:00 +0000\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
    b"--b1\r\nContent-Type: application/pdf; name=cv.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=cv.pdf\r\n"
    b"\r\nJVBERi0xLjQK\r\n--b1--\r\n"
)


async def start(node_factory: Any) -> TestNode:
    node: TestNode = await node_factory(listen=("imap",))
    await node.add_user(USER, PASSWORD)
    return node


async def test_imapclient_session(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        with IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            caps = c.capabilities()
            assert b"CONDSTORE" in caps and b"MOVE" in caps
            folders = {f[2]: f[0] for f in c.list_folders()}
            assert b"\\Sent" in folders["Sent"]
            assert c.find_special_folder(b"\\Trash") == "Trash"
            c.create_folder("Résumés")
            assert "Résumés" in [f[2] for f in c.list_folders()]
            uid_reply = c.append("INBOX", MIXED, flags=[b"$Important"])
            assert b"APPENDUID" in uid_reply
            c.append("INBOX", b"Subject: second\r\n\r\nbody\r\n")
            info = c.select_folder("INBOX")
            assert info[b"EXISTS"] == 2
            assert info[b"HIGHESTMODSEQ"] > 0
            data = c.fetch([1], ["ENVELOPE", "BODYSTRUCTURE", "FLAGS", "RFC822.SIZE"])
            env = data[1][b"ENVELOPE"]
            assert env.subject == b"=?utf-8?q?r=C3=A9sum=C3=A9?="
            assert env.from_[0].mailbox == b"alice" and env.from_[0].host == b"crepes.fr"
            assert len(env.to) == 5  # carol, group start, a, d, group end
            body = data[1][b"BODYSTRUCTURE"]
            assert body.is_multipart
            parts, subtype = body[0], body[1]
            assert subtype == b"mixed"
            assert parts[1][0] == b"application" and parts[1][1] == b"pdf"
            assert b"$Important" in data[1][b"FLAGS"]
            assert data[1][b"RFC822.SIZE"] == len(MIXED)
            att = c.fetch([1], ["BODY.PEEK[2]"])[1][b"BODY[2]"]
            assert att.strip() == b"JVBERi0xLjQK"
            assert c.search(["SUBJECT", "résumé"], charset="UTF-8") == [1]
            assert c.search(["NOT", "KEYWORD", "$Important"]) == [2]
            c.add_flags([2], [b"\\Flagged"])
            assert c.get_flags([2])[2] == (b"\\Flagged",) or b"\\Flagged" in c.get_flags([2])[2]
            result = c.search(["FLAGGED"])
            assert result == [2]
            c.move([2], "Résumés")
            assert c.select_folder("Résumés")[b"EXISTS"] == 1
            assert c.folder_status("INBOX", [b"MESSAGES", b"UNSEEN"])[b"MESSAGES"] == 1
            c.delete_messages([1])
            c.expunge()
            assert c.search() == []
            assert c.namespace().personal == (("", "/"),)
            assert c.id_({"name": "imapclient"}) == ((b"name", b"mailstack"),)

    await asyncio.to_thread(scenario)


async def test_imapclient_idle(node_factory: Any) -> None:
    node = await start(node_factory)
    account = await node.store.account_get(USER)
    inbox = await node.store.mailbox_get(account.id, "INBOX")

    def idle_wait() -> list[Any]:
        with IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            c.select_folder("INBOX")
            c.idle()
            responses = c.idle_check(timeout=5)
            c.idle_done()
            return responses

    task = asyncio.create_task(asyncio.to_thread(idle_wait))
    await asyncio.sleep(0.5)
    await append(node.store, inbox.id, b"Subject: wake\r\n\r\nup\r\n")
    responses = await asyncio.wait_for(task, 15)
    assert (1, b"EXISTS") in responses


async def test_imapclient_condstore_qresync_and_idle_between_sessions(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        port = node.port("imap")
        with (
            IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10) as a,
            IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10) as b,
        ):
            a.login(USER, PASSWORD)
            b.login(USER, PASSWORD)
            assert a.enable("QRESYNC") == [b"QRESYNC"]
            for n in range(3):
                a.append("INBOX", f"Subject: m{n}\r\n\r\nx\r\n".encode())
            info = a.select_folder("INBOX")
            mark = info[b"HIGHESTMODSEQ"]
            b.select_folder("INBOX")
            b.idle()
            a.add_flags([2], [b"\\Answered"])
            responses = b.idle_check(timeout=5)
            b.idle_done()
            assert any(r[1] == b"FETCH" and b"\\Answered" in r[2][1] for r in responses), responses
            changed = a.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {mark}"])
            assert list(changed) == [2] and changed[2][b"MODSEQ"][0] > mark
            assert a.search(["MODSEQ", mark + 1]) == [2]
            a.delete_messages([3])
            a.uid_expunge([3])
            status = a.folder_status("INBOX", [b"MESSAGES", b"HIGHESTMODSEQ"])
            assert status[b"MESSAGES"] == 2 and status[b"HIGHESTMODSEQ"] > mark

    await asyncio.to_thread(scenario)
