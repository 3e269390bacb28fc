"""`mailstack migrate --from DATA_DIR --to postgresql://...`: a SQLite node
populated by real clients (imaplib APPEND, STORE, EXPUNGE) and through the
store contract (the queue, a zone, DKIM keys, tokens, ACLs, records) is
moved; the IMAP view (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, every UID with
its FLAGS and MODSEQ) and the rest, read back through the contract, are the
same on PostgreSQL. A second migrate into the same database is refused."""

from __future__ import annotations

import asyncio
import imaplib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from mailstack.store import DkimKey, NewEntry, NewRecipient

from support import PostgresDatabase, TestNode, make_config, open_fast_store

USER, PASSWORD = "bob@hamburger.edu", "hungry"


def message(n: int) -> bytes:
    return f"From: alice@crepes.fr\r\nTo: {USER}\r\nSubject: note {n}\r\n\r\nbody {n}\r\n".encode()


def populate(port: int) -> None:
    c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    c.login(USER, PASSWORD)
    c.create("Archive")
    for n in range(6):
        c.append("INBOX", "", None, message(n))
    c.append("Archive", "(\\Seen $Important)", None, message(1))  # the same bytes again
    c.append("Archive", "", None, message(99))
    c.select("INBOX")
    c.uid("STORE", "2", "+FLAGS", "(\\Seen \\Flagged)")
    c.uid("STORE", "4", "+FLAGS", "(\\Deleted)")
    c.uid("STORE", "5", "+FLAGS", "(\\Deleted $Work)")
    c.expunge()
    c.uid("STORE", "6", "+FLAGS", "(\\Answered)")
    c.logout()


def imap_view(port: int) -> dict[str, Any]:
    c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    c.login(USER, PASSWORD)
    c._simple_command("ENABLE", "CONDSTORE")
    view: dict[str, Any] = {}
    for name in ("INBOX", "Archive"):
        status, data = c.status(name, "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
        assert status == "OK"
        c.select(name, readonly=True)
        status, fetched = c.uid("FETCH", "1:*", "(FLAGS MODSEQ BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert status == "OK"
        lines = sorted(
            part[0].decode() + part[1].decode() for part in fetched if isinstance(part, tuple)
        )
        # The full-text index is made anew from the moved messages.
        found = [c.uid("SEARCH", "TEXT", f'"{w}"')[1][0].decode() for w in ("body 1", "note")]
        assert found[1], "every message has a note"
        view[name] = (data[0].decode().split(" ", 1)[1], lines, found)
    c.logout()
    return view


async def contract_view(store: Any) -> dict[str, Any]:
    account = await store.account_get(USER)
    return {
        "queue": [
            (e.id, e.mail_from, e.created, e.expires, e.envid, e.ret, e.smtputf8,
             [(r.id, r.address, r.state, r.attempts, r.next_attempt, r.last_reply, r.notify)
              for r in e.recipients])
            for e in await store.queue_list()
        ],
        "queue_data": [await store.queue_data(e.id) for e in await store.queue_list()],
        "zones": await store.zone_list(),
        "zone": await store.zone_get("hamburger.edu"),
        "journal": await store.zone_journal("hamburger.edu"),
        "keys": await store.dkim_keys(),
        "tokens": await store.token_list(),
        "records": await store.records(account.id, "note"),
        "record_state": await store.record_state(account.id, "note"),
        "account": account,
        "mailboxes": await store.mailbox_list(account.id),
        "acl": await store.acl_get((await store.mailbox_list(account.id))[0].id),
    }


async def test_migrate_keeps_the_imap_view_and_the_rest(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    config = make_config(data_dir, ("imap",))
    node = TestNode(config, store_factory=open_fast_store)
    await node.start()
    try:
        await node.add_user(USER, PASSWORD)
        await asyncio.to_thread(populate, node.port("imap"))
        store = node.store
        assert store is not None
        now = 1_800_000_000.0
        first = await store.queue_add(NewEntry(
            "alice@hamburger.edu", [NewRecipient("a@remote.example", "SUCCESS,FAILURE")],
            b"Subject: out\r\n\r\nout\r\n", now, now + 3600, envid="env-1", ret="HDRS",
        ))
        await store.queue_remove(first)  # its id is never given again
        await store.queue_add(NewEntry(
            "alice@hamburger.edu",
            [NewRecipient("b@remote.example"), NewRecipient("c@remote.example", None, "rfc822;c")],
            b"Subject: out 2\r\n\r\nout\r\n", now, now + 3600, smtputf8=True,
        ))
        await store.zone_create(
            "hamburger.edu", nameservers=["ns1.hamburger.edu."], hostmaster="hostmaster",
        )
        await store.record_add("hamburger.edu", "@", "MX", "10 mail")
        await store.dkim_key_add(
            DkimKey("hamburger.edu", "s1", "ed25519-sha256", b"-----P", "cHVi")
        )
        account = await store.account_get(USER)
        await store.token_add(account.id, "phone", b"\x01" * 32)
        await store.record_create(account.id, "note", '{"a": 1}')
        mailboxes = await store.mailbox_list(account.id)
        await store.acl_set(mailboxes[0].id, "anyone", "lr")
        before_imap = await asyncio.to_thread(imap_view, node.port("imap"))
        before = await contract_view(store)
    finally:
        await node.stop()
    assert before["queue"] and before_imap["INBOX"][1]

    database = PostgresDatabase()
    url = await database.create()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mailstack.cli", "migrate", "--from", str(data_dir),
             "--to", url],
            capture_output=True, text=True, timeout=120, env=dict(os.environ),
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        sums = re.findall(r"^(sqlite|postgresql) +([0-9a-f]{64})$", out, re.M)
        assert [s[0] for s in sums] == ["sqlite", "postgresql"] and sums[0][1] == sums[1][1]
        # INBOX holds 4 messages after the expunge, Archive 2 (one the same bytes as INBOX's).
        assert re.search(r"^messages +6 +6 ", out, re.M), out
        assert re.search(r"^blobs +5 +5 ", out, re.M), out  # expunged bytes went
        assert re.search(r"^queue_recipients +2 +2 ", out, re.M), out

        moved = make_config(
            tmp_path / "moved", ("imap",),
            table={"store": {"backend": "postgresql", "url": url, "pool_size": 3}},
        )
        node = TestNode(moved)
        await node.start()
        try:
            after_imap = await asyncio.to_thread(imap_view, node.port("imap"))
            assert node.store is not None
            after = await contract_view(node.store)
            # SORT/THREAD records are not copied: the moved store made them
            # again from the kept parses when it opened.
            account = await node.store.account_get(USER)
            for box in await node.store.mailbox_list(account.id):
                uids = [m.uid for m in await node.store.messages(box.id)]
                recorded = await node.store.messages_sort_records(box.id, uids)
                assert sorted(recorded) == uids, box.name
            # What comes next continues, never repeats: the next UID and queue id.
            c_port = node.port("imap")

            def append_one() -> str:
                c = imaplib.IMAP4("127.0.0.1", c_port, timeout=10)
                c.login(USER, PASSWORD)
                status, data = c.append("INBOX", "", None, message(7))
                c.logout()
                assert status == "OK"
                return data[0].decode()

            appended = await asyncio.to_thread(append_one)
            next_queue = await node.store.queue_add(NewEntry(
                "x@hamburger.edu", [NewRecipient("d@remote.example")], b"x\r\n", now, now + 60,
            ))
        finally:
            await node.stop()
        assert after_imap == before_imap
        assert after == before
        uidvalidity = re.search(r"UIDVALIDITY (\d+)", before_imap["INBOX"][0])
        assert uidvalidity is not None
        assert f"APPENDUID {uidvalidity.group(1)} 7]" in appended
        assert next_queue > max(e[0] for e in before["queue"])

        again = subprocess.run(
            [sys.executable, "-m", "mailstack.cli", "migrate", "--from", str(data_dir),
             "--to", url],
            capture_output=True, text=True, timeout=120, env=dict(os.environ),
        )
        assert again.returncode == 1
        assert "not empty" in again.stderr and "Traceback" not in again.stderr
    finally:
        await database.drop()
