"""The PostgreSQL backend's insides: what the contract suite cannot see from
outside (group commit, content-addressed blobs, row-locked UIDs across
stores, LISTEN/NOTIFY, queue claims with SKIP LOCKED, migrations under an
advisory lock, the durability setting, errors when the server is away)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from mailstack.errors import StoreError
from mailstack.mime import PARSE_CODEC
from mailstack.mime.sortkeys import SortKeys
from mailstack.store import DeliveryTarget, NewEntry, NewRecipient
from mailstack.store.postgres import PostgresStore, schema

from support import PostgresDatabase, append, deliver

RAW = b"From: alice@crepes.fr\r\nSubject: hi\r\n\r\nbonjour\r\n"


@pytest.fixture
async def database() -> AsyncIterator[PostgresDatabase]:
    made = PostgresDatabase()
    yield made
    await made.drop()


@pytest.fixture
async def two(database: PostgresDatabase) -> AsyncIterator[tuple[Any, Any]]:
    """Two stores on one database, as two nodes would have."""
    first = await database.open()
    second = await database.open()
    yield first, second
    await first.close()
    await second.close()


async def sql(on: Any, query: str, *args: Any) -> Any:
    """Run SQL on the database of ``on`` (a PostgresDatabase or a store)."""
    conn = await asyncpg.connect(on.url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def bob(store: Any) -> tuple[Any, Any]:
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "hungry")
    return account, await store.mailbox_get(account.id, "INBOX")


async def test_nodes_starting_at_once_migrate_once(database: PostgresDatabase) -> None:
    await database.create()
    stores = await asyncio.gather(*(database.open() for _ in range(4)))
    try:
        rows = await sql(database, "SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, len(schema.STEPS) + 1))
        await stores[0].domain_add("hamburger.edu")
        assert await stores[3].domain_list() == ["hamburger.edu"]
    finally:
        for store in stores:
            await store.close()


async def test_a_database_newer_than_the_code_is_refused(database: PostgresDatabase) -> None:
    await (await database.open()).close()
    await sql(database, "INSERT INTO schema_version (version, summary) VALUES (99, 'future')")
    with pytest.raises(StoreError, match="newer"):
        await database.open()


async def test_a_listener_hears_another_stores_delivery_within_a_second(two: Any) -> None:
    first, second = two
    account, inbox = await bob(first)
    listener = second.listen(inbox.id)
    assert not await listener.wait(0.1)
    started = time.monotonic()
    await deliver(first, RAW, [DeliveryTarget(account.id)])
    assert await listener.wait(1)
    assert time.monotonic() - started < 1
    # Another mailbox's change wakes nobody here.
    sent = await first.mailbox_get(account.id, "Sent")
    await append(first, sent.id, RAW)
    assert not await listener.wait(0.3)
    listener.close()


async def test_queue_retry_on_one_store_moves_the_others_queue_mark(two: Any) -> None:
    first, second = two
    entry_id = await first.queue_add(
        NewEntry("alice@crepes.fr", [NewRecipient("r@poly.edu")], RAW, 1000.0, 9000.0)
    )
    mark = second.queue_mark()
    await first.queue_retry(2000.0, entry_id)
    for _ in range(100):
        if second.queue_mark() != mark:
            break
        await asyncio.sleep(0.01)
    assert second.queue_mark() != mark


async def test_uids_stay_strictly_ascending_when_two_stores_deliver_at_once(two: Any) -> None:
    first, second = two
    account, inbox = await bob(first)
    placed = await asyncio.gather(*(
        deliver(store, RAW + str(n).encode(), [DeliveryTarget(account.id)])
        for n in range(60) for store in (first, second)
    ))
    uids = sorted(where[0][1] for where in placed)
    assert uids == list(range(1, 121))
    metas = await second.messages(inbox.id)
    # A later UID never has an earlier MODSEQ: allocation took the row lock.
    assert [m.modseq for m in metas] == sorted(m.modseq for m in metas)
    status = await first.mailbox_status(inbox.id)
    assert (status.messages, status.uidnext) == (120, 121)


async def test_concurrent_deliveries_share_transactions(database: PostgresDatabase) -> None:
    store = await database.open()
    try:
        account, inbox = await bob(store)
        before = store.commits
        await asyncio.gather(*(
            deliver(store, RAW + str(n).encode(), [DeliveryTarget(account.id)])
            for n in range(100)
        ))
        assert store.commits - before < 50
        assert len(await store.messages(inbox.id)) == 100
    finally:
        await store.close()


async def test_commits_wait_for_the_wal_flush(database: PostgresDatabase) -> None:
    store = await database.open()
    try:
        async def setting(c: Any) -> str:
            return str(await c.fetchval("SHOW synchronous_commit"))

        assert await store._read(setting) == "on"

        async def written(t: Any) -> str:
            return str(await t.conn.fetchval("SHOW synchronous_commit"))

        assert await store._write(written) == "on"
    finally:
        await store.close()


async def test_message_bytes_are_kept_once_by_content(database: PostgresDatabase) -> None:
    store = await database.open()
    try:
        await store.domain_add("hamburger.edu")
        accounts = [await store.account_add(f"u{n}@hamburger.edu", "x") for n in range(3)]
        targets = [DeliveryTarget(a.id, prefix=f"Delivered-To: {a.address}\r\n".encode())
                   for a in accounts]
        placed = await deliver(store, RAW, targets)
        inbox = await store.mailbox_get(accounts[0].id, "INBOX")
        await append(store, inbox.id, RAW)  # the same bytes again: the same blob
        rows = await sql(database, "SELECT refs, octet_length(data) FROM blobs")
        assert [tuple(r) for r in rows] == [(4, len(RAW))]
        for (mailbox_id, uid), account in zip(placed, accounts, strict=True):
            got = await store.message_bytes(mailbox_id, uid)
            assert got == f"Delivered-To: {account.address}\r\n".encode() + RAW
        for mailbox_id, uid in placed:
            await store.expunge(mailbox_id, [uid], require_deleted=False)
        assert [r[0] for r in await sql(database, "SELECT refs FROM blobs")] == [1]
        await store.expunge(inbox.id, require_deleted=False)
        assert await sql(database, "SELECT 1 FROM blobs") == []
    finally:
        await store.close()


async def test_queue_due_passes_by_entries_another_node_holds(two: Any) -> None:
    first, second = two
    held = await first.queue_add(
        NewEntry("alice@crepes.fr", [NewRecipient("a@poly.edu")], RAW, 1000.0, 9000.0)
    )
    free = await first.queue_add(
        NewEntry("alice@crepes.fr", [NewRecipient("b@poly.edu")], RAW, 1000.0, 9000.0)
    )
    conn = await asyncpg.connect(first.url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM queue_messages WHERE id = $1 FOR UPDATE", held)
            due = await asyncio.wait_for(second.queue_due(2000.0), 5)
            assert [e.id for e in due] == [free]
        assert sorted(e.id for e in await second.queue_due(2000.0)) == [held, free]
    finally:
        await conn.close()


async def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open the PostgreSQL store"):
        await PostgresStore.open("postgresql://postgres@127.0.0.1:1/nothing", codec=PARSE_CODEC)


async def test_connections_the_server_drops_come_back(two: Any) -> None:
    first, second = two
    account, inbox = await bob(first)
    await sql(
        first,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    # The pool connects anew for the next write, and the listener comes back
    # (and wakes its sessions to look again, changes may have gone unheard).
    listener = second.listen(inbox.id)
    assert await listener.wait(5)
    assert await append(first, inbox.id, RAW) >= 1
    assert await listener.wait(2)


async def test_an_account_listener_hears_another_nodes_changes(two: Any) -> None:
    first, second = two
    account, inbox = await bob(first)
    listener = first.listen_account(account.id)
    try:
        await append(second, inbox.id, RAW)
        assert await listener.wait(5)
        await second.record_create(account.id, "Identity", "{}")
        assert await listener.wait(5)
        assert not await listener.wait(0.1)
    finally:
        listener.close()


async def test_a_step_1_database_gets_email_ids_threads_and_counters(
    database: PostgresDatabase,
) -> None:
    """A database written before step 4 (its layout of step 1, filled as that
    version filled it) migrates: email ids in (mailbox, uid) order, threads
    from the kept parse, each account's counter from its HIGHESTMODSEQs."""
    import hashlib

    from mailstack.mime import parse

    conn = await asyncpg.connect(await database.create())
    try:
        await schema.migrate(conn, schema.STEPS[:1])
        await conn.execute("INSERT INTO domains VALUES ('hamburger.edu')")
        account_id = await conn.fetchval(
            "INSERT INTO accounts (address, password_hash) VALUES ('bob@hamburger.edu', 'x')"
            " RETURNING id"
        )
        inbox, sent = [
            await conn.fetchval(
                "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highest_modseq)"
                " VALUES ($1, $2, 1, 3, $3) RETURNING id",
                account_id, name, modseq,
            )
            for name, modseq in (("INBOX", 9), ("Sent", 3))
        ]
        messages = [
            (inbox, 1, b"Subject: Plan\r\nMessage-ID: <p@x>\r\n\r\n1\r\n"),
            (inbox, 2, b"Subject: Other\r\nMessage-ID: <o@x>\r\n\r\n2\r\n"),
            (sent, 1, b"Subject: Re: plan\r\nMessage-ID: <r@x>\r\nIn-Reply-To: <p@x>\r\n\r\n3\r\n"),
            (sent, 2, b"Subject: Nope\r\nReferences: <p@x>\r\n\r\n4\r\n"),
        ]
        for mailbox_id, uid, raw in messages:
            digest = hashlib.sha256(raw).digest()
            await conn.execute(
                "INSERT INTO blobs VALUES ($1, 1, $2, $3)", digest, raw, parse(raw).to_bytes()
            )
            await conn.execute(
                "INSERT INTO messages VALUES ($1, $2, $3, '', '2026-01-01T00:00:00+00:00', $4,"
                " $5, ''::bytea)",
                mailbox_id, uid, uid + 1, len(raw), digest,
            )
    finally:
        await conn.close()
    store = await database.open()
    try:
        rows = await sql(database, "SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, len(schema.STEPS) + 1))
        plan, other = await store.messages(inbox)
        reply, nope = await store.messages(sent)
        assert [m.email_id for m in (plan, other, reply, nope)] == [1, 2, 3, 4]
        assert reply.thread_id == plan.thread_id == plan.email_id
        assert other.thread_id == other.email_id and nope.thread_id == nope.email_id
        assert await store.account_state(account_id) == 9
        # Step 12 counted what was there: two messages each, unseen (no flags).
        for box, (a, b) in ((inbox, (plan, other)), (sent, (reply, nope))):
            status = await store.mailbox_status(box)
            assert (status.messages, status.unseen, status.deleted) == (2, 2, 0)
            assert status.size == a.size + b.size > 0
        uid = await append(
            store, inbox, b"Subject: RE: PLAN\r\nReferences: <r@x>\r\n\r\nlater\r\n"
        )
        (late,) = [m for m in await store.messages(inbox) if m.uid == uid]
        assert late.email_id == 5 and late.modseq == 10 and late.thread_id == plan.thread_id
    finally:
        await store.close()


async def test_sort_records_missing_are_made_when_the_store_opens(
    database: PostgresDatabase,
) -> None:
    """Messages kept before sort_records (no row, the step's marker in
    meta) get their record from the kept parse at the next open."""
    store = await database.open()
    try:
        _account, inbox = await bob(store)
        raws = [b"Subject: Re: lunch %d\r\nMessage-ID: <%d@x>\r\n\r\nhi\r\n" % (n, n)
                for n in range(3)]  # fmt: skip
        uids = [await append(store, inbox.id, raw) for raw in raws]
        expected = await store.messages_sort_records(inbox.id, uids)
        assert sorted(expected) == uids
    finally:
        await store.close()
    await sql(database, "DELETE FROM sort_records")
    await sql(database, "INSERT INTO meta VALUES ('sort_records_pending', 1)")
    store = await database.open()
    try:
        assert await store.messages_sort_records(inbox.id, uids) == expected
        assert SortKeys.from_record(expected[uids[1]]).subject == "LUNCH 1"
    finally:
        await store.close()
    assert await sql(database, "SELECT 1 FROM meta WHERE key = 'sort_records_pending'") == []
