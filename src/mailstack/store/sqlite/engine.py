"""The SQLite engine: one writer thread with group commit, reader threads, a
checkpoint thread, and the wake-ups that follow a commit.

Durability and group commit: every write runs on one writer thread. The
thread takes all writes that are waiting, runs each inside its own SAVEPOINT
of one transaction, commits once (``synchronous=FULL``: the WAL is fsynced on
commit) and only then completes the callers' futures. Many sessions waiting
on one fsync is how a durable server stays fast (ARCHITECTURE.md). Writes of
one kind that can share statements (deliveries, see ``GroupWrite``) are
filed together first. A checkpoint thread moves the WAL into the database,
off the commit path.

The WAL stays bounded. A PASSIVE checkpoint every half second copies what it
can without waiting for anyone; but the WAL file only starts over once no
reader is using it, and under steady load some reader always is. So when the
file passes ``wal_bound`` octets the writer, after that commit, runs a
TRUNCATE checkpoint, which waits up to ``checkpoint_wait`` seconds for the
readers of older snapshots to finish (every read is one short transaction; a
big message is read a chunk per transaction; new reads wait the moment it
takes), then empties the file. If the
readers outlast the wait, a warning says so and the next commit tries again.

Reads run on reader threads, each with its own connection; WAL lets them
proceed while the writer commits. One reader takes every read while reads are
short; the others step in only when it has been on one read for
``SPILL_AFTER`` seconds (``_ReadQueue``). Write functions note on the writer's
connection (``WriteConnection``) which mailboxes they changed and whether the
directory or the queue moved; after the commit the engine moves the marks and
wakes the mailboxes' listeners.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mailstack.errors import StoreError
from mailstack.store.contract.messages import EmailKeys
from mailstack.store.listeners import Listener, Listeners
from mailstack.store.private import create_private, private_dir
from mailstack.store.sqlite import schema
from mailstack.store.sqlite.marks import mark_changed, mark_version

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BATCH = 256
# Seconds between WAL checkpoints.
CHECKPOINT_INTERVAL = 0.5
# Octets of WAL past which a checkpoint waits for readers and empties it, and
# the seconds it waits (the [limits] wal_size and wal_checkpoint_wait).
WAL_BOUND = 64 * 1024 * 1024
CHECKPOINT_WAIT = 5.0
READERS = 4
# Seconds the first reader may spend on one read before another reader takes
# the next read waiting (see _ReadQueue).
SPILL_AFTER = 0.02
# Seconds a connection waits for another process's lock (the CLI's writes).
BUSY_TIMEOUT = 30
VARIABLES = 999

_Done = list[tuple[asyncio.Future[Any], bool, Any]]


class _ReadQueue:
    """The reads waiting for a reader thread.

    The first reader takes every read; the others take one only when the
    first has been on its current read for ``SPILL_AFTER`` seconds (a whole
    mailbox listed, a first SORT of a big mailbox), so a short read never
    waits long behind a long one. While reads are short they all run on one
    thread: every further thread running reads costs GIL hand-offs with the
    event loop on each of them (measured on two cores: POP3 RETR 19,000 to
    27,000 messages a second, the IMAP mix 2,170 to 2,640 operations a
    second, with one reader instead of four). The other readers sleep
    unwoken while the first is idle, and look again every ``SPILL_AFTER``
    seconds while it is busy and reads wait.
    """

    def __init__(self) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._first = threading.Condition(self._lock)  # the first reader waits for a read
        self._parked = threading.Condition(self._lock)  # the others, while nothing is late
        self._watching = threading.Condition(self._lock)  # the others, timing the first
        self._parked_count = 0
        self._busy_since: float | None = None  # when the first reader's read began
        self._closed = False

    def put(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)
            self._first.notify()
            if self._busy_since is not None and self._parked_count:
                self._parked.notify()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._first.notify_all()
            self._parked.notify_all()
            self._watching.notify_all()

    def take_first(self, wait: bool = True) -> Any | None:
        """The first reader's next read; None once closed and drained (or,
        not waiting, when none waits). The reader counts as busy from here
        until it asks again."""
        with self._lock:
            self._busy_since = None
            while not self._items:
                if self._closed or not wait:
                    return None
                self._first.wait()
            item = self._items.popleft()
            self._busy_since = time.monotonic()
            if self._items and self._parked_count:
                self._parked.notify()
            return item

    def take_late(self) -> Any | None:
        """Another reader's next read: one that has waited while the first
        reader spent ``SPILL_AFTER`` seconds on one read; None once closed
        (the first reader drains what is left)."""
        with self._lock:
            while not self._closed:
                since = self._busy_since
                if not self._items or since is None:
                    self._parked_count += 1
                    self._parked.wait()
                    self._parked_count -= 1
                    continue
                wait = since + SPILL_AFTER - time.monotonic()
                if wait <= 0:
                    return self._items.popleft()
                self._watching.wait(wait)
            return None


class WriteConnection(sqlite3.Connection):
    """The writer's connection: what the write functions of one commit changed."""

    touched: set[int]
    accounts_touched: set[int]
    directory_changed: bool
    queue_changed: bool

    def start_group(self) -> None:
        self.touched = set()
        self.accounts_touched = set()
        self.directory_changed = False
        self.queue_changed = False

    def touch(self, mailbox_id: int) -> None:
        """The mailbox's listeners wake after the commit."""
        self.touched.add(mailbox_id)

    def touch_account(self, account_id: int) -> None:
        """The account's listeners (``listen_account``) wake after the commit."""
        self.accounts_touched.add(account_id)

    def change_directory(self) -> None:
        """Domains, accounts or aliases changed: kept recipient answers go."""
        self.directory_changed = True

    def change_queue(self) -> None:
        """Queued mail became due before its time: running queues hear it."""
        self.queue_changed = True


class GroupWrite:
    """A write that the writer can also run together with the others of its
    kind waiting in the same commit (``file_together``); called alone, it is
    a write function like any other."""

    __slots__ = ()

    def __call__(self, c: WriteConnection) -> Any:
        raise NotImplementedError

    def file_together(self, c: WriteConnection, group: list[Any]) -> list[Any]:
        """The results of every write of ``group`` (this one among them), in
        order; raises when one of them must fail, and then each runs alone."""
        raise NotImplementedError


def connect(path: Path, factory: type[sqlite3.Connection] = sqlite3.Connection) -> Any:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT,
        factory=factory,
    )
    conn.execute("PRAGMA journal_mode=WAL")
    # RFC-grade durability: the WAL is fsynced at every commit.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Every query is built for the smallest limit SQLite builds have had
    # (999 variables), so it behaves alike on every build; tests catch a
    # query that would need more.
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, VARIABLES)
    return conn


class Engine:
    """The threads and the two primitives, ``_read`` and ``_write``, that
    every part of the SQLite store runs its SQL through."""

    def __init__(
        self, path: Path, *, wal_bound: int = WAL_BOUND, checkpoint_wait: float = CHECKPOINT_WAIT
    ) -> None:
        self.path = path
        self.wal_path = path.with_name(path.name + "-wal")
        self.wal_bound = wal_bound
        self.checkpoint_wait = checkpoint_wait
        self._writes: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reads = _ReadQueue()
        self._readers: list[threading.Thread] = []
        self._checkpointer: threading.Thread | None = None
        self._closing = threading.Event()
        # Cleared while the writer empties the WAL: new reads wait (the
        # writer is stopped anyway), so the readers of older snapshots are
        # the only ones the TRUNCATE waits out, and they are short.
        self._reads_open = threading.Event()
        self._reads_open.set()
        # The PASSIVE checkpoints and the TRUNCATE take turns.
        self._checkpointing = threading.Lock()
        self.listeners = Listeners()
        self.account_listeners = Listeners()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.directory_mark = path.with_name(path.name + "-directory")
        self.queue_mark_path = path.with_name(path.name + "-queue")

    async def _start(self) -> None:
        await asyncio.to_thread(self._create)
        self._loop = asyncio.get_running_loop()
        writer = connect(self.path, WriteConnection)
        # Checkpoints move the WAL into the database on their own thread, so
        # a commit only appends to the WAL and fsyncs it: an autocheckpoint
        # would stall every delivery waiting on that commit.
        writer.execute("PRAGMA wal_autocheckpoint=0")
        # A WAL that started over is cut back to the bound.
        writer.execute(f"PRAGMA journal_size_limit={self.wal_bound}")
        self._writer = threading.Thread(
            target=self._write_loop, args=(writer,), name="store-writer", daemon=True
        )
        self._writer.start()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, args=(connect(self.path),), name="store-checkpoint",
            daemon=True,
        )
        self._checkpointer.start()
        for n in range(READERS):
            reader = threading.Thread(
                target=self._read_loop if n == 0 else self._late_read_loop,
                args=(connect(self.path),), name=f"store-read-{n}", daemon=True,
            )
            reader.start()
            self._readers.append(reader)

    def _create(self) -> None:
        private_dir(self.path.parent)
        # Made 0600 before SQLite opens it: its -wal and -shm files take the
        # database's mode.
        os.close(create_private(self.path, os.O_RDONLY))
        conn = connect(self.path)
        try:
            schema.migrate(conn, keys=self._thread_keys, codec=self._search_codec())
            self._fill_sort_records(conn)
        finally:
            conn.close()
        mark_changed(self.directory_mark)

    def _thread_keys(self, stored: bytes) -> EmailKeys:
        """What threading needs of a kept parse (the migration threads the
        messages kept before threads were); a backend with a codec says."""
        return EmailKeys(None, (), "")

    def _search_codec(self) -> Any:
        """The ParseCodec the migration indexes kept messages' text with
        (None: a backend with a codec says)."""
        return None

    def _fill_sort_records(self, conn: sqlite3.Connection) -> None:
        """SORT/THREAD records of the messages kept before they were made
        at delivery; a backend with a codec makes them."""

    async def close(self) -> None:
        if self._writer is not None:
            self._writes.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._checkpointer is not None:
            self._closing.set()
            await asyncio.to_thread(self._checkpointer.join)
            self._checkpointer = None
        self._reads.close()
        for reader in self._readers:
            await asyncio.to_thread(reader.join)
        self._readers.clear()

    # -- the two primitives ------------------------------------------------

    async def _write(self, fn: Callable[[WriteConnection], T]) -> T:
        """Run fn in the group-committed transaction; return after fsync."""
        if self._writer is None:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._writes.put((fn, future, loop))
        return await future

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn on a reader thread's connection, in one read transaction."""
        if not self._readers:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._reads.put((fn, future, loop))
        return await future

    def _read_loop(self, conn: sqlite3.Connection) -> None:
        """The first reader thread: runs the reads waiting in the queue, then
        hands their results back to the loop in one wake-up."""
        while (item := self._reads.take_first()) is not None:
            done: _Done = []
            while item is not None:
                done.append(self._run_read(conn, item))
                if len(done) >= MAX_BATCH:
                    break
                item = self._reads.take_first(wait=False)
            _settle_all(done)
        conn.close()

    def _late_read_loop(self, conn: sqlite3.Connection) -> None:
        """Another reader thread: the reads the first is too busy to take."""
        while (item := self._reads.take_late()) is not None:
            _settle_all([self._run_read(conn, item)])
        conn.close()

    def _run_read(self, conn: sqlite3.Connection, item: Any) -> tuple[Any, bool, Any]:
        fn, future, _loop = item
        self._reads_open.wait(self.checkpoint_wait)
        conn.execute("BEGIN")
        try:
            return future, True, fn(conn)
        except Exception as exc:
            return future, False, exc
        finally:
            conn.execute("COMMIT")

    def _write_loop(self, conn: WriteConnection) -> None:
        stop = False
        while not stop:
            batch = [self._writes.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._writes.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                stop = True
                batch = [item for item in batch if item is not None]
            if batch:
                self._commit(conn, batch)
        conn.close()

    def _commit(self, conn: WriteConnection, batch: list[Any]) -> None:
        """Run one group of writes in one transaction, then settle them."""
        results: list[tuple[bool, Any]] = []
        conn.start_group()
        try:
            conn.execute("BEGIN IMMEDIATE")
            filed = self._file_group(conn, batch)
            for fn, _future, _loop in batch:
                if fn in filed:
                    results.append((True, filed[fn]))
                    continue
                conn.execute("SAVEPOINT op")
                try:
                    results.append((True, fn(conn)))
                    conn.execute("RELEASE op")
                except Exception as exc:  # the caller gets it, the others commit
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((False, exc))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(False, StoreError(f"commit failed: {exc}"))] * len(batch)
        touched, accounts = conn.touched, conn.accounts_touched
        # After the commit, before anyone hears "done": a process that
        # sees a mark move also sees the rows that moved it.
        if conn.directory_changed:
            mark_changed(self.directory_mark)
        if conn.queue_changed:
            mark_changed(self.queue_mark_path)
        done = [
            (future, ok, value)
            for (_fn, future, _loop), (ok, value) in zip(batch, results, strict=True)
        ]
        # Listeners first: a caller that hears "done" and then starts to
        # listen must not be woken by its own earlier change.
        if (touched or accounts) and self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify, touched, accounts)
        _settle_all(done)
        if self.wal_size() > self.wal_bound:
            self._truncate(conn)

    def _file_group(self, conn: WriteConnection, batch: list[Any]) -> dict[Any, Any]:
        """Run the batch's group writes together; {} when there are too few
        to bother or one of them must fail on its own."""
        group = [fn for fn, _future, _loop in batch if isinstance(fn, GroupWrite)]
        if len(group) < 2:
            return {}
        conn.execute("SAVEPOINT deliveries")
        try:
            placed = group[0].file_together(conn, group)
        except Exception:
            conn.execute("ROLLBACK TO deliveries")
            conn.execute("RELEASE deliveries")
            return {}
        conn.execute("RELEASE deliveries")
        return dict(zip(group, placed, strict=True))

    def _checkpoint_loop(self, conn: sqlite3.Connection) -> None:
        """Copy committed WAL frames into the database now and then (PASSIVE:
        never waits for, nor blocks, the writer or the readers)."""
        while not self._closing.wait(CHECKPOINT_INTERVAL):
            try:
                with self._checkpointing:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed: %s", exc)
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        conn.close()

    def _truncate(self, conn: WriteConnection) -> None:
        """Empty a WAL past its bound (TRUNCATE), on the writer's thread
        between two commits: the writer never competes with it for the write
        lock, and the PASSIVE checkpoints have copied most frames already."""
        size = self.wal_size()
        self._reads_open.clear()
        try:
            with self._checkpointing:
                conn.execute(f"PRAGMA busy_timeout={int(self.checkpoint_wait * 1000)}")
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed: %s", exc)
            return
        finally:
            self._reads_open.set()
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT * 1000}")
        if busy:
            # Readers outlasted the wait, or the PASSIVE checkpoint was running:
            # the next commit tries again; only a WAL far past its bound is news.
            report = log.warning if size > 2 * self.wal_bound else log.debug
            report(
                "WAL of %d octets is past its bound of %d and could not be emptied"
                " within %.1f s; trying again after the next commit",
                size, self.wal_bound, self.checkpoint_wait,
            )

    def wal_size(self) -> int:
        """Octets in the write-ahead log file now."""
        try:
            return self.wal_path.stat().st_size
        except FileNotFoundError:
            return 0

    # -- change notification and marks ----------------------------------------

    def _notify(self, mailbox_ids: set[int], account_ids: set[int]) -> None:
        self.listeners.wake(mailbox_ids)
        self.account_listeners.wake(account_ids)

    def listen(self, mailbox_id: int) -> Listener:
        return self.listeners.listen(mailbox_id)

    def listen_account(self, account_id: int) -> Listener:
        return self.account_listeners.listen(account_id)

    def queue_mark(self) -> int | None:
        """Moves whenever any process made queued mail due early (queue retry)."""
        return mark_version(self.queue_mark_path)


def _settle(done: _Done) -> None:
    for future, ok, value in done:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _settle_all(done: _Done) -> None:
    """Complete futures from a store thread: one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, _Done] = {}
    for entry in done:
        by_loop.setdefault(entry[0].get_loop(), []).append(entry)
    for target, entries in by_loop.items():
        target.call_soon_threadsafe(_settle, entries)
