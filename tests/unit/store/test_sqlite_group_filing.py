"""The SQLite writer files the deliveries of one group commit together, and
falls back to one at a time when one of them must fail."""

from __future__ import annotations

import asyncio

from mailstack.errors import QuotaExceeded
from mailstack.store import DeliveryTarget
from mailstack.store.sqlite import SqliteStore

from support import deliver, deliver_some

RAW = b"From: alice@crepes.fr\r\nSubject: ketchup\r\n\r\nDo you like ketchup?\r\n"


def spy(monkeypatch, store, name):
    calls = []
    real = getattr(store, name)

    def wrapper(*args):
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(store, name, wrapper)
    return calls


async def test_a_group_is_filed_with_few_statements(store: SqliteStore, monkeypatch):
    await store.domain_add("hamburger.edu")
    bob = await store.account_add("bob@hamburger.edu", "hungry")
    many = spy(monkeypatch, store, "_file_many")
    one = spy(monkeypatch, store, "_file_one")
    placed = await asyncio.gather(
        *(deliver(store, RAW, [DeliveryTarget(bob.id, "INBOX", b"X-N: %d\r\n" % n)])
          for n in range(40))
    )
    assert many and not one
    assert sorted(uid for [(_, uid)] in placed) == list(range(1, 41))


async def test_a_group_with_a_full_mailbox_is_filed_one_by_one(store: SqliteStore, monkeypatch):
    await store.domain_add("hamburger.edu")
    bob = await store.account_add("bob@hamburger.edu", "hungry", quota=2 * len(RAW))
    many = spy(monkeypatch, store, "_file_many")
    one = spy(monkeypatch, store, "_file_one")
    results = await asyncio.gather(
        *(deliver(store, RAW, [DeliveryTarget(bob.id)]) for _ in range(5)),
        return_exceptions=True,
    )
    assert many and len(one) == 5
    assert [isinstance(r, QuotaExceeded) for r in results].count(True) == 3
    assert (await store.account_get("bob@hamburger.edu")).used == 2 * len(RAW)


async def test_the_wal_is_checkpointed_off_the_commit_path(store: SqliteStore):
    """Commits only append to the WAL; the checkpoint thread moves the pages
    into the database file (nothing else does: the writer's autocheckpoint is off)."""
    from mailstack.store.sqlite import engine

    await store.domain_add("hamburger.edu")
    bob = await store.account_add("bob@hamburger.edu", "hungry")
    before = store.path.stat().st_size
    big = RAW + b"ketchup " * 4000
    await asyncio.gather(*(deliver(store, big, [DeliveryTarget(bob.id)]) for _ in range(40)))
    deadline = asyncio.get_running_loop().time() + 10 * engine.CHECKPOINT_INTERVAL
    while store.path.stat().st_size < before + 40 * 32000:
        assert asyncio.get_running_loop().time() < deadline, "no checkpoint happened"
        await asyncio.sleep(0.05)


async def test_deliver_some_counts_only_the_copies_it_filed(store: SqliteStore):
    """The blob's reference count is the number of messages that hold it, so
    expunging the one copy filed frees the bytes."""
    await store.domain_add("hamburger.edu")
    bob = await store.account_add("bob@hamburger.edu", "hungry")
    full = await store.account_add("full@hamburger.edu", "hungry", quota=1)
    [left_out, (mailbox_id, uid)] = await deliver_some(
        store, RAW, [DeliveryTarget(full.id), DeliveryTarget(bob.id)]
    )
    assert left_out is None
    await store.store_flags(mailbox_id, [uid], ["\\Deleted"], "add")
    await store.expunge(mailbox_id)
    blobs = await store._read(lambda c: c.execute("SELECT count(*) FROM blobs").fetchone()[0])
    assert blobs == 0


async def test_kept_recipient_answers_are_bounded(store: SqliteStore, monkeypatch):
    """A dictionary attack on RCPT must not grow memory: past RECIPIENTS_KEPT
    answers the store starts over, and answers stay right."""
    from mailstack.store.sqlite import directory

    monkeypatch.setattr(directory, "RECIPIENTS_KEPT", 5)
    await store.domain_add("hamburger.edu")
    bob = await store.account_add("bob@hamburger.edu", "hungry")
    for n in range(12):
        assert await store.resolve_local(f"nobody{n}@hamburger.edu") == []
        assert len(store._recipients) <= 5
    assert [a.id for a in await store.resolve_local("bob@hamburger.edu")] == [bob.id]
