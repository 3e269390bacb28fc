"""The SQLite readers: one thread takes the reads while they are short, the
others step in when it has been on one read too long."""

from __future__ import annotations

import asyncio
import threading
import time

from mailstack.store.sqlite import SqliteStore


def _thread_name(conn: object) -> str:
    return threading.current_thread().name


async def test_short_reads_run_on_the_first_reader(store: SqliteStore):
    names = await asyncio.gather(*(store._read(_thread_name) for _ in range(200)))
    assert set(names) == {"store-read-0"}


async def test_a_read_waiting_behind_a_long_one_is_taken_by_another_reader(store: SqliteStore):
    started = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def long_read(conn: object) -> str:
        started.set()
        # Held until the short read has finished on another reader; never
        # longer than the test's patience.
        release.wait(10)
        order.append("long")
        return threading.current_thread().name

    def short_read(conn: object) -> str:
        order.append("short")
        release.set()
        return threading.current_thread().name

    long_task = asyncio.ensure_future(store._read(long_read))
    await asyncio.to_thread(started.wait, 10)
    short_name = await store._read(short_read)
    long_name = await long_task
    assert long_name == "store-read-0"
    assert short_name != "store-read-0"
    assert order == ["short", "long"]


async def test_closing_runs_the_reads_that_wait(store: SqliteStore):
    reads = [asyncio.ensure_future(store._read(lambda c: time.sleep(0.001) or 1))
             for _ in range(50)]
    await asyncio.sleep(0)
    await store.close()
    assert [await r for r in reads] == [1] * 50
