"""Several nodes on the PostgreSQL backend: queue leases (a recipient is
claimed by one node at a time, and passes to the others when its node stops
heartbeating), the nodes table, and writes run again after losing a deadlock
with another node."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from mailstack.errors import StoreError
from mailstack.store import DELIVERED, NewEntry, NewRecipient, RecipientUpdate
from mailstack.store.postgres import engine

from support import PostgresDatabase


@pytest.fixture
async def database() -> AsyncIterator[PostgresDatabase]:
    made = PostgresDatabase()
    yield made
    await made.drop()


@pytest.fixture
async def nodes(database: PostgresDatabase) -> AsyncIterator[list[Any]]:
    """The command line's store (no node) and two serving nodes, a and b."""
    opened = [
        await database.open(),
        await database.open(node="a", lease=60.0),
        await database.open(node="b", lease=60.0),
    ]
    yield opened
    for store in opened:
        await store.close()


def entry(n: int, now: float, recipients: int = 1) -> NewEntry:
    return NewEntry(
        "alice@crepes.fr",
        [NewRecipient(f"r{n}.{i}@remote.example") for i in range(recipients)],
        b"Subject: hi\r\n\r\nhi\r\n", now, now + 1000,
    )


def due_ids(entries: list[Any], now: float) -> set[int]:
    """The recipients a runner would attempt (runner._due's test)."""
    return {r.id for e in entries for r in e.pending() if r.next_attempt <= now}


async def test_racing_nodes_deliver_each_recipient_once(nodes: list[Any]) -> None:
    """Two nodes claim and record deliveries as fast as they can, as two
    queue runners would: every recipient is delivered, by one of them, once."""
    cli, a, b = nodes
    now = time.time()
    for n in range(30):
        await cli.queue_add(entry(n, now, recipients=2))
    delivered: list[list[int]] = [[], []]

    async def run(index: int, store: Any) -> None:
        while True:
            entries = await store.queue_due(now, limit=4)
            work = [(e, [r for r in e.pending() if r.next_attempt <= now]) for e in entries]
            work = [(e, rcpts) for e, rcpts in work if rcpts]
            if not work:
                return
            for e, rcpts in work:
                delivered[index] += [r.id for r in rcpts]
                await store.queue_update(
                    e.id, [RecipientUpdate(r.id, DELIVERED, last_reply="250 ok") for r in rcpts]
                )

    await asyncio.gather(run(0, a), run(1, b))
    assert delivered[0] and delivered[1]  # both took part
    every = delivered[0] + delivered[1]
    assert len(every) == len(set(every)) == 60
    assert await cli.queue_list() == []


async def test_claims_are_leases(nodes: list[Any]) -> None:
    cli, a, b = nodes
    now = time.time()
    for n in range(4):
        await cli.queue_add(entry(n, now, recipients=2))
    mine = due_ids(await a.queue_due(now, limit=2), now)
    theirs = due_ids(await b.queue_due(now), now)
    assert len(mine) == 4 and len(theirs) == 4 and not mine & theirs
    # Asked again, each node sees its own claims due (its runner skips what
    # it has in flight, and finds again what it gave up) and none of the other's.
    assert due_ids(await a.queue_due(now), now) == mine
    assert due_ids(await b.queue_due(now), now) == theirs
    # The command line sees every recipient leased: none due until the leases end.
    assert due_ids(await cli.queue_due(now), now) == set()


async def test_a_lease_runs_out_and_the_others_retry(nodes: list[Any]) -> None:
    cli, a, b = nodes
    now = time.time()
    entry_id = await cli.queue_add(entry(1, now))
    [got] = await a.queue_due(now)
    assert due_ids([got], now) == {got.recipients[0].id}
    assert await b.queue_due(now) == []
    # To b, the recipient is due when a's lease runs out, not before.
    assert await b.queue_next_due(after=now) == pytest.approx(now + 60.0)
    assert await b.queue_due(now + 59.0) == []
    [again] = await b.queue_due(now + 61.0)
    assert again.id == entry_id and due_ids([again], now + 61.0) == {got.recipients[0].id}
    # Now b holds it: a sees it leased in its turn.
    assert due_ids(await a.queue_due(now + 61.0), now + 61.0) == set()


async def test_an_outcome_ends_the_lease(nodes: list[Any]) -> None:
    cli, a, b = nodes
    now = time.time()
    await cli.queue_add(entry(1, now, recipients=2))
    [got] = await a.queue_due(now)
    first, second = got.recipients
    # a tried the first: not delivered, due again in 10 s for whoever asks then.
    await a.queue_update(got.id, [RecipientUpdate(first.id, "queued", now + 10.0, "451 later")])
    [seen] = await b.queue_due(now + 11.0)
    assert due_ids([seen], now + 11.0) == {first.id}  # the second is still a's


async def test_a_node_queues_under_its_own_lease(database: PostgresDatabase) -> None:
    """A node's queue runner takes what the node queued at once: the other
    nodes must not take it too (and a node with no runner leases nothing)."""
    a = await database.open(node="a", lease=60.0)
    quiet = await database.open(node="quiet", lease=60.0, claim_queued=False)
    b = await database.open(node="b", lease=60.0)
    try:
        now = time.time()
        mine = await a.queue_add(entry(1, now))
        unclaimed = await quiet.queue_add(entry(2, now))
        assert [e.id for e in await b.queue_due(now) if due_ids([e], now)] == [unclaimed]
        assert due_ids([await a.queue_get(mine)], now)
    finally:
        for store in (a, quiet, b):
            await store.close()


async def test_the_heartbeat_keeps_leases_and_a_dead_node_loses_them(
    database: PostgresDatabase,
) -> None:
    a = await database.open(node="a", lease=1.0)
    b = await database.open(node="b", lease=1.0)
    try:
        await a.queue_add(entry(1, time.time()))
        names = [n.name for n in await b.cluster_nodes()]
        assert names == ["a", "b"]
        await asyncio.sleep(1.6)  # longer than the lease: a's heartbeat moved it
        now = time.time()
        assert due_ids(await b.queue_due(now), now) == set()
        [info_a, info_b] = await b.cluster_nodes()
        assert (info_a.name, info_a.leases, info_b.leases) == ("a", 1, 0)
        assert now - info_a.last_seen < 1.0
        # a stops heartbeating (its process would be gone): after the lease, b takes over.
        a._heartbeat.cancel()
        await asyncio.sleep(1.3)
        now = time.time()
        assert len(due_ids(await b.queue_due(now), now)) == 1
        [info_a, info_b] = await b.cluster_nodes()
        assert (info_a.leases, info_b.leases) == (0, 1)
    finally:
        await a.close()
        await b.close()
    # A node that stops cleanly leaves the list and hands its leases back.
    cli = await database.open()
    try:
        assert await cli.cluster_nodes() == []
        now = time.time()
        assert len(due_ids(await cli.queue_due(now), now)) == 1
    finally:
        await cli.close()


async def test_a_write_that_loses_a_deadlock_runs_again(database: PostgresDatabase) -> None:
    """A real deadlock between the store's writer and another session: the
    store's write is chosen as the victim (its deadlock_timeout is shorter),
    rolled back, and run again after the other side committed."""
    store = await database.open()
    other = await asyncpg.connect(database.url)
    try:
        await other.execute(
            "CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 0), (2, 0)"
        )
        holding, locked = asyncio.Event(), asyncio.Event()
        runs = 0

        async def write(t: Any) -> int:
            nonlocal runs
            runs += 1
            await t.conn.execute("SET LOCAL deadlock_timeout = '50ms'")
            await t.conn.execute("UPDATE t SET v = v + 1 WHERE id = 1")
            if runs == 1:
                locked.set()
                await holding.wait()
            await t.conn.execute("UPDATE t SET v = v + 1 WHERE id = 2")
            return runs

        async def cross() -> None:
            await locked.wait()
            async with other.transaction():
                await other.execute("UPDATE t SET v = v + 10 WHERE id = 2")
                holding.set()
                await other.execute("UPDATE t SET v = v + 10 WHERE id = 1")

        result, _ = await asyncio.gather(store._write(write), cross())
        assert result == runs == 2
        rows = await other.fetch("SELECT v FROM t ORDER BY id")
        assert [r[0] for r in rows] == [11, 11]  # each side's update once
    finally:
        await other.close()
        await store.close()


async def test_a_write_that_keeps_losing_gets_an_error(
    database: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "RETRIES", 2)
    store = await database.open()
    runs = 0

    async def write(t: Any) -> None:
        nonlocal runs
        runs += 1
        # A serialization failure as PostgreSQL raises it (SQLSTATE 40001).
        await t.conn.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure';"
            " END $$"
        )

    try:
        with pytest.raises(StoreError, match="conflict"):
            await store._write(write)
        assert runs == 3
        # The writer goes on.
        assert await store.new_run_number() == 1
    finally:
        await store.close()


def test_default_node_names_differ_within_one_process() -> None:
    here = f"{socket.gethostname()}:{os.getpid()}"
    first, second = engine.node_name(), engine.node_name()
    assert first != second and first.startswith(here) and second.startswith(here)
