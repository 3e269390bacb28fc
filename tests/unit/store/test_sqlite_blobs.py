"""SQLite keeps a message's bytes once, in a blob with a reference count,
however many mailboxes hold it (the contract only says what reads back)."""

from __future__ import annotations

import sqlite3

from mailstack.mime import PARSE_CODEC
from mailstack.store import DeliveryTarget
from mailstack.store.sqlite import SqliteStore

from support import FAST_HASHER, append, deliver

RAW = (
    b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: ketchup\r\n\r\n"
    b"Do you like ketchup?\r\n"
)


async def blob_refs(store) -> list[tuple[int]]:
    return await store._read(lambda c: c.execute("SELECT refs FROM blobs").fetchall())


async def test_deliver_keeps_one_blob_for_all_recipients(store):
    await store.domain_add("hamburger.edu")
    bob = await store.account_add("bob@hamburger.edu", "hungry")
    alice = await store.account_add("alice@hamburger.edu", "x")
    placed = await deliver(
        store,
        RAW,
        [
            DeliveryTarget(bob.id, prefix=b"Delivered-To: bob@hamburger.edu\r\n"),
            DeliveryTarget(alice.id, prefix=b"Delivered-To: alice@hamburger.edu\r\n"),
        ],
    )
    assert len(placed) == 2
    blobs = await store._read(lambda c: c.execute("SELECT count(*) FROM blobs").fetchone()[0])
    assert blobs == 1
    assert await blob_refs(store) == [(2,)]


async def test_copy_and_move_share_the_blob(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "hungry")
    inbox = await store.mailbox_get(account.id, "INBOX")
    archive = await store.mailbox_get(account.id, "Archive")
    uid = await append(store, inbox.id, RAW, flags=["\\Seen"])
    await store.copy(inbox.id, [uid], archive.id)
    await store.move(inbox.id, [uid], archive.id)
    assert await blob_refs(store) == [(2,)]


async def test_sort_records_missing_are_made_when_the_store_opens(tmp_path):
    """Messages kept before sort_records (no row, the step's marker in
    meta) get their record from the kept parse at the next open."""
    path = tmp_path / "store.db"
    store = await SqliteStore.open(path, codec=PARSE_CODEC, password_hasher=FAST_HASHER)
    try:
        await store.domain_add("hamburger.edu")
        account = await store.account_add("bob@hamburger.edu", "pw")
        inbox = await store.mailbox_get(account.id, "INBOX")
        raws = [b"Subject: Fwd: plan %d\r\n\r\nhi\r\n" % n for n in range(3)]
        uids = [await append(store, inbox.id, raw) for raw in raws]
        expected = await store.messages_sort_records(inbox.id, uids)
        assert sorted(expected) == uids
    finally:
        await store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DELETE FROM sort_records")
    conn.execute("INSERT INTO meta VALUES ('sort_records_pending', 1)")
    conn.close()
    store = await SqliteStore.open(path, codec=PARSE_CODEC, password_hasher=FAST_HASHER)
    try:
        assert await store.messages_sort_records(inbox.id, uids) == expected
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM sort_records").fetchone() == (3,)
    assert conn.execute("SELECT 1 FROM meta WHERE key = 'sort_records_pending'").fetchone() is None
    conn.close()
