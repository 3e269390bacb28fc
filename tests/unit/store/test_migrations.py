"""Schema versions: a data directory written by an older mailstack opens with
this one and reads back whole (tests/data/datadir-v1, made by the store
before it kept versions: see make_datadir_v1.py), and the numbered steps run
once, in order, and never on a newer file."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from mailstack.errors import StoreError
from mailstack.mime import PARSE_CODEC, parse
from mailstack.store.sqlite import SqliteStore, schema

from support import FAST_HASHER, append

V1 = Path(__file__).parents[2] / "data" / "datadir-v1"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def v1_copy(tmp_path: Path) -> Path:
    """The v1 database, copied: the committed file is never written."""
    path = tmp_path / "mailstack.db"
    shutil.copyfile(V1 / "mailstack.db", path)
    assert user_version(path) == 0
    return path


@pytest.fixture
def manifest() -> dict:
    return json.loads((V1 / "manifest.json").read_text())


async def read_mailboxes(store) -> list[dict]:
    """What make_datadir_v1.py recorded of every mailbox, read with this store."""
    found = []
    for account in await store.account_list():
        for box in await store.mailbox_list(account.id):
            status = await store.mailbox_status(box.id)
            metas = await store.messages(box.id)
            uids = [m.uid for m in metas]
            raw = await store.messages_bytes(box.id, uids)
            parsed = await store.messages_parsed(box.id, uids)
            _, vanished = await store.changes_since(box.id, 0)
            sync = await store.mailbox_sync(box.id, 0)
            found.append({
                "account": account.address, "name": box.name, "uidvalidity": box.uidvalidity,
                "uidnext": box.uidnext, "highest_modseq": box.highest_modseq,
                "special_use": box.special_use, "subscribed": box.subscribed,
                "status": [status.messages, status.unseen, status.deleted, status.size],
                "recent_uid": sync.recent_uid, "vanished": vanished,
                "messages": [{
                    "uid": m.uid, "flags": sorted(m.flags),
                    "internaldate": m.internaldate.isoformat(), "size": m.size,
                    "modseq": m.modseq, "sha256": digest(raw[m.uid]),
                    "parsed_size": parsed[m.uid].size,
                    "subject": parsed[m.uid].envelope.subject,
                    "header_text": parsed[m.uid].header_text(),
                    "text_sha256": digest(parsed[m.uid].text.encode()),
                    "parts": len(parsed[m.uid].root.children),
                    "body": [parsed[m.uid].root.body_start, parsed[m.uid].root.body_end],
                } for m in metas],
            })
    return found


async def test_a_v1_data_directory_reads_back_whole(v1_copy, manifest):
    store = await SqliteStore.open(v1_copy, codec=PARSE_CODEC, password_hasher=FAST_HASHER)
    try:
        assert await store.domain_list() == manifest["domains"]
        accounts = await store.account_list()
        assert [[a.address, a.quota, a.used] for a in accounts] == manifest["accounts"]
        for address, password in manifest["passwords"].items():
            assert await store.authenticate(address, password) is not None
            assert await store.authenticate(address, password + "x") is None
        assert [[a.source, a.target] for a in await store.alias_list()] == manifest["aliases"]
        for address, expected in manifest["resolve"].items():
            assert [a.address for a in await store.resolve_recipient(address)] == expected
        assert await read_mailboxes(store) == manifest["mailboxes"]

        queue = []
        for e in await store.queue_list():
            queue.append({
                "mail_from": e.mail_from, "created": e.created, "expires": e.expires,
                "envid": e.envid, "ret": e.ret, "smtputf8": e.smtputf8, "body": e.body,
                "size": e.size, "sha256": digest(await store.queue_data(e.id)),
                "recipients": [[r.address, r.state, r.attempts, r.next_attempt, r.last_reply,
                                r.notify, r.orcpt, r.delay_notified] for r in e.recipients],
            })
        assert queue == manifest["queue"]

        zones = []
        for origin, serial in await store.zone_list():
            zone = await store.zone_get(origin)
            zones.append({
                "origin": origin, "serial": serial,
                "records": [r.to_text() for r in zone.records],
                "journal": [[j.old_serial, j.new_serial, [r.to_text() for r in j.deleted],
                             [r.to_text() for r in j.added]]
                            for j in await store.zone_journal(origin)],
            })
        assert zones == manifest["zones"]
        keys = [[k.domain, k.selector, k.algorithm, digest(k.private_key), k.public_key,
                 k.created, k.active] for k in await store.dkim_keys()]
        assert keys == manifest["dkim"]
    finally:
        await store.close()
    assert user_version(v1_copy) == len(schema.STEPS)


async def test_a_migrated_store_goes_on_where_v1_stopped(v1_copy, manifest):
    store = await SqliteStore.open(v1_copy, codec=PARSE_CODEC, password_hasher=FAST_HASHER)
    try:
        alice = await store.account_get("alice@example.org")
        work = await store.mailbox_get(alice.id, "Work")
        before = next(b for b in manifest["mailboxes"]
                      if b["account"] == alice.address and b["name"] == "Work")
        uid = await append(store, work.id, b"Subject: after\r\n\r\nnew\r\n")
        assert uid == before["uidnext"]  # UIDs go on; the expunged one is not reused
        newest = max(b["uidvalidity"] for b in manifest["mailboxes"])
        created = await store.mailbox_create(alice.id, "Later")
        assert created.uidvalidity > newest
        serial = await store.record_add("example.org", "www", "A", "127.0.0.80")
        assert serial == manifest["zones"][0]["serial"] + 1
    finally:
        await store.close()


def test_steps_run_once_in_order_and_a_newer_file_is_refused(tmp_path):
    path = tmp_path / "steps.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        steps = (
            schema.Step("a table", "CREATE TABLE t (n INTEGER)"),
            schema.Step("a row; a column", "INSERT INTO t VALUES (1); ALTER TABLE t ADD m TEXT"),
        )
        schema.migrate(conn, steps[:1])
        assert schema.version(conn) == 1
        schema.migrate(conn, steps)
        schema.migrate(conn, steps)  # already there: nothing runs twice
        assert schema.version(conn) == 2
        assert conn.execute("SELECT n, m FROM t").fetchall() == [(1, None)]
        with pytest.raises(StoreError, match="newer"):
            schema.migrate(conn, steps[:1])
    finally:
        conn.close()


def test_a_failing_step_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "steps.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        steps = (
            schema.Step("a table", "CREATE TABLE t (n INTEGER)"),
            schema.Step("broken", "INSERT INTO t VALUES (1); INSERT INTO nowhere VALUES (2)"),
        )
        with pytest.raises(sqlite3.OperationalError):
            schema.migrate(conn, steps)
        assert schema.version(conn) == 0
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        conn.close()


def as_v3(path: Path) -> None:
    """The v1 file brought to step 3 (what mailstack wrote before step 4),
    with a reply and a forward of an INBOX message filed as that version
    filed them (the store's parse kept beside the bytes)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        schema.migrate(conn, schema.STEPS[:3])
        assert schema.version(conn) == 3
        (box,) = conn.execute(
            "SELECT b.id FROM mailboxes b JOIN accounts a ON a.id = b.account_id"
            " WHERE a.address = 'bob@example.org' AND b.name = 'Sent'"
        ).fetchone()
        messages = [
            b"Subject: Planning\r\nMessage-ID: <plan@example.org>\r\n\r\nfirst\r\n",
            b"Subject: Re: planning\r\nMessage-ID: <re@example.org>\r\n"
            b"In-Reply-To: <plan@example.org>\r\n\r\nreply\r\n",
            b"Subject: Other\r\nMessage-ID: <other@example.org>\r\n"
            b"References: <plan@example.org>\r\n\r\nsubject disagrees\r\n",
        ]
        for uid, raw in enumerate(messages, 1):
            blob = conn.execute(
                "INSERT INTO blobs (refs, data, parsed) VALUES (1, ?, ?)",
                (raw, parse(raw).to_bytes()),
            ).lastrowid
            conn.execute(
                "INSERT INTO messages VALUES (?, ?, ?, '', '2026-01-01T00:00:00+00:00', ?, ?, ?)",
                (box, uid, uid + 1, len(raw), blob, b""),
            )
        conn.execute(
            "UPDATE mailboxes SET uidnext = 4, highest_modseq = 4 WHERE id = ?", (box,)
        )
    finally:
        conn.close()


async def test_a_v3_data_directory_gets_email_ids_threads_and_counters(v1_copy, manifest):
    as_v3(v1_copy)
    store = await SqliteStore.open(v1_copy, codec=PARSE_CODEC, password_hasher=FAST_HASHER)
    try:
        assert user_version(v1_copy) == len(schema.STEPS)
        # Email ids in (mailbox, uid) order, unique in the store.
        rows = []
        for account in await store.account_list():
            for box in await store.mailbox_list(account.id):
                for meta in await store.messages(box.id):
                    rows.append((box.id, meta.uid, meta.email_id, meta.thread_id, account.id))
        rows.sort()
        assert [r[2] for r in rows] == list(range(1, len(rows) + 1))
        bob = await store.account_get("bob@example.org")
        sent = await store.mailbox_get(bob.id, "Sent")
        plan, reply, other = await store.messages(sent.id)
        assert reply.thread_id == plan.thread_id == plan.email_id
        assert other.thread_id == other.email_id
        # Alice keeps the same "lunch" message in INBOX and in Work: one
        # thread; every other message is a thread of its own.
        alice = await store.account_get("alice@example.org")
        lunches = []
        for name in ("INBOX", "Work"):
            box = await store.mailbox_get(alice.id, name)
            metas = await store.messages(box.id)
            parsed = await store.messages_parsed(box.id, [m.uid for m in metas])
            lunches += [m for m in metas if parsed[m.uid].envelope.subject == "lunch"]
        assert len(lunches) == 2 and lunches[0].thread_id == lunches[1].thread_id
        rest = [r for r in rows if r[0] != sent.id and r[2] not in {m.email_id for m in lunches}]
        assert rest and all(r[3] == r[2] for r in rest)
        # Each account's counter starts at its highest HIGHESTMODSEQ; it goes on from there.
        highest = max(b["highest_modseq"] for b in manifest["mailboxes"]
                      if b["account"] == alice.address)
        assert await store.account_state(alice.id) == highest
        assert await store.account_state(bob.id) == 4
        work = await store.mailbox_get(alice.id, "Work")
        uid = await append(store, work.id, b"Subject: Re: lunch\r\n\r\nnew\r\n")
        (new,) = [m for m in await store.messages(work.id) if m.uid == uid]
        assert new.modseq == highest + 1 and new.email_id == len(rows) + 1
        # A reply delivered now joins the thread found by the migration.
        inbox = await store.mailbox_get(bob.id, "INBOX")
        await append(
            store, inbox.id,
            b"Subject: RE: Planning\r\nReferences: <re@example.org>\r\n\r\nlater\r\n",
        )
        (_, late) = await store.messages(inbox.id)
        assert late.thread_id == plan.thread_id
        assert await store.email_changes(bob.id, 4) is not None
        assert await read_mailboxes(store)  # the rest reads back as before
    finally:
        await store.close()
