"""The PostgreSQL engine: a connection pool, one writer with group commit,
and change notification across nodes with LISTEN/NOTIFY.

Durability and group commit: every write of this node goes to one writer
task. It takes all writes that are waiting, runs each inside its own
SAVEPOINT of one transaction on one connection, commits once (the pool's
sessions run with ``synchronous_commit = on``, so COMMIT returns after the
WAL is flushed) and only then completes the callers' futures: many sessions
share one flush, as on SQLite. While a COMMIT flushes, the writer already
runs the next group on another connection (at most ``FLUSHING`` COMMITs in
flight): that group can wait only for the row locks of one that is
committing, which waits for nothing of it, so they cannot deadlock. Writes
that depend on each other are not affected: a caller's next write starts
after its last one's COMMIT. Several nodes write at once; what must not
interleave (UIDs and MODSEQs of one mailbox, an account's quota) is
serialized by row locks (``UPDATE ... RETURNING`` on the mailbox row), not
by process memory.

Reads take a pooled connection each, one short transaction per read; a
read of one statement runs without one (``_read_one``, ``_read_rows``: one
round trip, and one statement sees one snapshot).

Retries: a write that lost a deadlock or a serialization conflict with
another node (``asyncpg.TransactionRollbackError``) is rolled back to its
SAVEPOINT and run again in the next commit, up to ``RETRIES`` times after a
short random wait; only then does its caller get the error (a ``451``).

Nodes: a store opened for ``serve`` (with a ``node`` name) records itself in
the ``nodes`` table and heartbeats there every ``lease / 4`` seconds; the
same statement moves the expiry of the queue leases it holds (see
``queue``), so a lease lasts as long as its node lives and runs out
``lease`` seconds after the node's last heartbeat.

Change notification: a write notes which mailboxes it touched and whether
the queue moved; the transaction sends ``pg_notify`` before COMMIT, so every
node's listening connection hears it after the commit and wakes its
listeners. This node's own listeners are woken directly, and its own
notifications (tagged with a token per store) are skipped when they come
back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import asyncpg

from mailstack.errors import StoreError, StoreUnavailable
from mailstack.store.contract.messages import EmailKeys
from mailstack.store.listeners import Listener, Listeners
from mailstack.store.postgres import schema

T = TypeVar("T")
log = logging.getLogger(__name__)

# Writes per transaction: each runs in a SAVEPOINT, which takes a
# subtransaction id when it writes, and past 64 of them in one transaction
# PostgreSQL spills them to the pg_subtrans SLRU (PGPROC_MAX_CACHED_SUBXIDS),
# which slows every snapshot on the server.
MAX_BATCH = 64
# Seconds between attempts to get the listening connection back.
RELISTEN_INTERVAL = 0.5
POOL_SIZE = 10
# Seconds a node's queue leases outlive its last heartbeat.
LEASE = 60.0
# Times a write that lost a deadlock or a serialization conflict runs again.
RETRIES = 5
# Group COMMITs flushing at once while the writer runs the next group.
FLUSHING = 2
# The NOTIFY channel of this store: "<token> m<id>,a<id>,q" (mailboxes,
# accounts, the queue).
CHANNEL = "mailstack_changes"
# The directory's version: moved by every commit that changed a domain, an
# account or an alias (read with one statement by resolve_local).
DIRECTORY_BUMP = (
    "INSERT INTO meta VALUES ('directory', 1)"
    " ON CONFLICT (key) DO UPDATE SET value = meta.value + 1"
)
DIRECTORY_VERSION = "SELECT coalesce((SELECT value FROM meta WHERE key = 'directory'), 0)"
# Errors that mean PostgreSQL (or the connection to it) went away.
_GONE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
# Errors after which the same write may well succeed when run again.
_CONFLICT = asyncpg.TransactionRollbackError  # deadlock, serialization failure


_NODES_HERE = itertools.count(1)


def node_name() -> str:
    """The default name of a serving node: unique among the live processes
    on every machine (the machine's name and the process id; a second node
    in one process, as tests run them, gets "-2" after it, and so on)."""
    n = next(_NODES_HERE)
    return f"{socket.gethostname()}:{os.getpid()}" + (f"-{n}" if n > 1 else "")


class Tx:
    """The writer's connection inside one group commit, and what the writes
    of that commit changed (the mailboxes to wake, whether the queue moved)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.touched: set[int] = set()
        self.accounts: set[int] = set()
        self.queue_changed = False
        self.directory_changed = False
        # The payload a write already sent with its last statement (see
        # ``notice``); the commit sends none of its own when it is the same.
        self.notified = ""

    def touch(self, mailbox_id: int) -> None:
        """The mailbox's listeners (on every node) wake after the commit."""
        self.touched.add(mailbox_id)

    def touch_account(self, account_id: int) -> None:
        """The account's listeners (``listen_account``, every node) wake after the commit."""
        self.accounts.add(account_id)

    def change_queue(self) -> None:
        """Queued mail became due before its time: running queues hear it."""
        self.queue_changed = True

    def notice(self, engine: PgEngine) -> str:
        """The NOTIFY payload of what this transaction changed so far, for a
        write to send with its last statement (one round trip fewer); ""
        when there is nothing to tell."""
        self.notified = engine._payload(self)
        return self.notified

    def change_directory(self) -> None:
        """Domains, accounts or aliases changed: the directory version moves
        in the same commit, and every node's kept recipient answers go."""
        self.directory_changed = True


class GroupWrite:
    """A write that the writer can also run together with the others of its
    kind waiting in the same commit (``file_together``); called alone, it is
    a write function like any other."""

    __slots__ = ()

    async def __call__(self, t: Tx) -> Any:
        raise NotImplementedError

    async def file_together(self, t: Tx, group: list[Any]) -> list[Any]:
        """The results of every write of ``group`` (this one among them), in
        order; raises when one of them must fail, and then each runs alone."""
        raise NotImplementedError


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pool connection handed back as it is: the store never leaves session
    state on one (its locks are transaction-level, it never LISTENs or SETs
    on them), so the reset query asyncpg sends at every release (advisory
    unlock, CLOSE ALL, UNLISTEN, RESET ALL) would be a round trip for nothing."""

    def get_reset_query(self) -> str:
        return ""


class _Regroup(Exception):
    """A batch of group writes failed together: run them again one by one."""


class _RolledBack(Exception):
    """The one write of a transaction failed: roll it back, its caller has the error."""


def _gone(exc: BaseException) -> StoreError:
    return StoreUnavailable(f"the PostgreSQL store is unavailable: {exc}")


class PgEngine:
    """The pool, the writer and the two primitives, ``_read`` and ``_write``,
    that every part of the PostgreSQL store runs its SQL through."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        pool_size: int = POOL_SIZE,
        node: str | None = None,
        lease: float = LEASE,
    ):
        self.url = url
        self.password = password
        self.pool_size = pool_size
        # The serving node this store is (None: a command, not a node); it
        # claims queue entries under this name for ``lease`` seconds past
        # its last heartbeat.
        self.node = node
        self.lease = lease
        self._heartbeat: asyncio.Task[None] | None = None
        self._pool: Any = None
        self._listen_conn: Any = None
        self._writes: asyncio.Queue[Any] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.listeners = Listeners()
        self.account_listeners = Listeners()
        self._token = os.urandom(6).hex()
        self._queue_mark = 0
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False
        # Transactions the writer committed: how well group commit groups.
        self.commits = 0
        # Writes running in transactions of their own (see _write).
        self._alone = asyncio.Semaphore(max(1, pool_size // 2))
        self._writing_alone: set[asyncio.Task[None]] = set()

    async def _connect(self) -> Any:
        return await asyncpg.connect(
            self.url, password=self.password,
            server_settings={"synchronous_commit": "on", "application_name": "mailstack"},
        )

    async def _start(self) -> None:
        try:
            conn = await self._connect()
            try:
                await schema.migrate(conn, keys=self._thread_keys, codec=self._search_codec())
                await self._fill_sort_records(conn)
            finally:
                await conn.close()
            self._pool = await asyncpg.create_pool(
                self.url, password=self.password, min_size=1, max_size=self.pool_size,
                connection_class=_PooledConnection,
                server_settings={"synchronous_commit": "on", "application_name": "mailstack"},
            )
            await self._listen()
        except (*_GONE, asyncpg.PostgresError) as exc:
            await self.close()
            raise StoreError(f"cannot open the PostgreSQL store: {exc}") from exc
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")
        if self.node is not None:
            try:
                await self._beat(started=True)
            except (*_GONE, asyncpg.PostgresError) as exc:
                await self.close()
                raise StoreError(f"cannot open the PostgreSQL store: {exc}") from exc
            self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="store-heartbeat")

    async def _beat(self, *, started: bool = False) -> None:
        """Say this node lives, and move its queue leases with it."""
        now = time.time()
        async with self._pool.acquire() as conn, conn.transaction():
            if started:
                await conn.execute(
                    "INSERT INTO nodes (name, host, pid, started, last_seen)"
                    " VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO UPDATE"
                    " SET host = $2, pid = $3, started = $4, last_seen = $4",
                    self.node, socket.gethostname(), os.getpid(), now,
                )
            else:
                await conn.execute(
                    "UPDATE nodes SET last_seen = $2 WHERE name = $1", self.node, now
                )
            await conn.execute(
                "UPDATE queue_recipients SET lease_until = $2 WHERE lease_node = $1",
                self.node, now + self.lease,
            )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            try:
                await self._beat()
            except (*_GONE, asyncpg.PostgresError) as exc:
                # Leases run out if this lasts; the writes will say why.
                log.warning("node heartbeat failed: %s", exc)

    async def _listen(self) -> None:
        conn = await self._connect()
        await conn.add_listener(CHANNEL, self._heard)
        conn.add_termination_listener(self._lost_listener)
        self._listen_conn = conn

    def _lost_listener(self, _conn: Any) -> None:
        """The server or the network dropped the listening connection: get it
        back, retrying, so that other nodes' changes are heard again."""
        if self._closing or self._relisten is not None:
            return
        log.warning("lost the PostgreSQL change listener; reconnecting")
        self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        while not self._closing:
            try:
                await self._listen()
            except (*_GONE, asyncpg.PostgresError):
                await asyncio.sleep(RELISTEN_INTERVAL)
                continue
            # Changes while nobody listened went unheard: everyone looks again.
            self.listeners.wake_all()
            self.account_listeners.wake_all()
            self._wake(set(), True)
            log.info("PostgreSQL change listener back")
            break
        self._relisten = None

    def _thread_keys(self, stored: bytes) -> EmailKeys:
        """What threading needs of a kept parse (the migration threads the
        messages kept before threads were); a backend with a codec says."""
        return EmailKeys(None, (), "")

    def _search_codec(self) -> Any:
        """The ParseCodec the migration indexes kept messages' text with
        (None: a backend with a codec says)."""
        return None

    async def _fill_sort_records(self, conn: Any) -> None:
        """SORT/THREAD records of the messages kept before they were made
        at delivery; a backend with a codec makes them."""

    async def close(self) -> None:
        self._closing = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._relisten is not None:
            self._relisten.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisten
            self._relisten = None
        # Writes of their own first: one that lost a conflict goes back to
        # the writer, which must still be there to run it again.
        await asyncio.gather(*self._writing_alone, return_exceptions=True)
        if self._writer is not None:
            await self._writes.put(None)
            await self._writer
            self._writer = None
        if self.node is not None and self._pool is not None:
            # A node that stops hands back what it claimed and leaves the list.
            with contextlib.suppress(*_GONE, asyncpg.PostgresError):
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.execute(
                        "UPDATE queue_recipients SET lease_node = NULL, lease_until = NULL"
                        " WHERE lease_node = $1", self.node,
                    )
                    await conn.execute("DELETE FROM nodes WHERE name = $1", self.node)
        if self._listen_conn is not None:
            with contextlib.suppress(*_GONE):
                await self._listen_conn.close()
            self._listen_conn = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # -- the two primitives ------------------------------------------------

    async def _write(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run fn in a transaction; return after its COMMIT.

        Deliveries (``GroupWrite``) wait for the writer, which files all
        those waiting together in one transaction. Any other write runs at
        once in a transaction of its own on its own connection, beside the
        others (at most half the pool at a time): run one after another in
        the writer's transaction, each would add its round trips and two
        for its SAVEPOINT to everyone's wait, while PostgreSQL itself lets
        concurrent COMMITs share one WAL flush."""
        if self._writer is None:
            raise StoreError("store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if isinstance(fn, GroupWrite):
            await self._writes.put((fn, future, 0))
        else:
            # A task of its own: a caller that goes away mid-write leaves
            # it to finish (or roll back) cleanly.
            task = asyncio.create_task(self._write_alone((fn, future, 0)))
            self._writing_alone.add(task)
            task.add_done_callback(self._writing_alone.discard)
        return await future

    async def _write_alone(self, item: Any) -> None:
        async with self._alone:
            flush = await self._run([item])
            if flush is not None:
                await flush

    async def _read(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run fn on a pooled connection, in one read-only transaction that sees one snapshot."""
        if self._pool is None:
            raise StoreError("store is closed")
        try:
            async with self._pool.acquire() as conn:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    return await fn(conn)
        except _GONE as exc:
            raise _gone(exc) from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(f"the store refused: {exc}") from exc

    async def _read_value(self, query: str) -> Any:
        """One statement's value on a pooled connection, without a
        transaction around it (one round trip)."""
        if self._pool is None:
            raise StoreError("store is closed")
        try:
            return await self._pool.fetchval(query)
        except _GONE as exc:
            raise _gone(exc) from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(f"the store refused: {exc}") from exc

    async def _read_one(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run fn, which sends one statement, on the pool itself: no
        transaction around it (one round trip instead of three; one
        statement sees one snapshot)."""
        if self._pool is None:
            raise StoreError("store is closed")
        try:
            return await fn(self._pool)
        except _GONE as exc:
            raise _gone(exc) from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(f"the store refused: {exc}") from exc

    async def _read_rows(self, query: str, *args: Any) -> list[Any]:
        """One statement's rows on a pooled connection, without a
        transaction around it (one round trip; one statement sees one
        snapshot)."""
        if self._pool is None:
            raise StoreError("store is closed")
        try:
            return list(await self._pool.fetch(query, *args))
        except _GONE as exc:
            raise _gone(exc) from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(f"the store refused: {exc}") from exc

    async def _write_loop(self) -> None:
        """Take the writes waiting, run them as one transaction, and while its
        COMMIT flushes, run the next group on another connection (at most
        ``FLUSHING`` COMMITs in flight). The next group can wait for nothing
        but the row locks of one that is committing, which waits for nothing
        of it: no deadlock between them."""
        flushing: set[asyncio.Task[None]] = set()
        stop = False
        while True:
            while len(flushing) >= FLUSHING:
                await asyncio.wait(flushing, return_when=asyncio.FIRST_COMPLETED)
            if stop and self._writes.empty():
                if not flushing:
                    return
                # A flushing group may yet put writes back (a lost conflict).
                await asyncio.wait(flushing, return_when=asyncio.FIRST_COMPLETED)
                continue
            batch = [await self._writes.get()]
            while len(batch) < MAX_BATCH and not self._writes.empty():
                batch.append(self._writes.get_nowait())
            if None in batch:
                stop = True
                batch = [item for item in batch if item is not None]
            if not batch:
                continue
            flush = await self._run(batch)
            if flush is not None:
                task: asyncio.Task[None] = asyncio.create_task(flush)
                flushing.add(task)
                task.add_done_callback(flushing.discard)

    async def _run(self, batch: list[Any]) -> Coroutine[Any, Any, None] | None:
        """Run one group of writes in one transaction up to its COMMIT; what
        sends the COMMIT and then settles the writes (None: they are settled,
        the transaction rolled back). A write alone needs no SAVEPOINT (two
        round trips fewer): when it fails, the whole transaction rolls back."""
        results: list[tuple[bool | None, Any]] = []
        alone = len(batch) == 1
        try:
            conn = await self._pool.acquire()
        except Exception as exc:
            self._settle(batch, [(False, self._failure(exc))] * len(batch), None)
            return None
        transaction = conn.transaction()
        try:
            await transaction.start()
            tx = Tx(conn)
            try:
                filed = await self._file_group(tx, batch)
            except _Regroup:
                # The group failed as a whole: start again, each on its own.
                await transaction.rollback()
                transaction = conn.transaction()
                await transaction.start()
                tx, filed = Tx(conn), {}
            for fn, _future, _tries in batch:
                if fn in filed:
                    results.append((True, filed[fn]))
                    continue
                failure: Exception | None = None
                try:
                    async with contextlib.nullcontext() if alone else conn.transaction():
                        results.append((True, await fn(tx)))
                except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
                    raise
                except _CONFLICT as exc:
                    # A deadlock with another node, a serialization
                    # failure: rolled back to its SAVEPOINT, runs again.
                    results.append((None, exc))
                    if alone:
                        raise _RolledBack from exc
                    continue
                except asyncpg.PostgresError as exc:
                    failure = StoreError(f"the store refused: {exc}")
                except Exception as exc:  # the caller gets it, the others commit
                    failure = exc
                if failure is not None:
                    results.append((False, failure))
                    if alone:
                        raise _RolledBack
            if tx.directory_changed:
                await conn.execute(DIRECTORY_BUMP)
            payload = self._payload(tx)
            if payload and payload != tx.notified:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await transaction.rollback()
            await self._release(conn)
            if isinstance(exc, _RolledBack):
                pass  # results say why
            elif isinstance(exc, _CONFLICT):
                results = [(None, exc)] * len(batch)
            elif isinstance(exc, Exception):
                results = [(False, self._failure(exc))] * len(batch)
            else:
                raise
            await self._settle_later(batch, results, None)
            return None
        return self._flush(conn, transaction, batch, results, tx)

    async def _flush(
        self, conn: Any, transaction: Any, batch: list[Any],
        results: list[tuple[bool | None, Any]], tx: Tx,
    ) -> None:
        """COMMIT (returns once the WAL is flushed), then settle the writes."""
        done: Tx | None = tx
        try:
            await transaction.commit()
            self.commits += 1
        except _CONFLICT as exc:  # the COMMIT itself lost: every write runs again
            results, done = [(None, exc)] * len(batch), None
        except Exception as exc:
            results, done = [(False, self._failure(exc))] * len(batch), None
        finally:
            await self._release(conn)
        await self._settle_later(batch, results, done)

    async def _release(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            await self._pool.release(conn)

    @staticmethod
    def _failure(exc: BaseException) -> StoreError:
        return _gone(exc) if isinstance(exc, _GONE) else StoreError(f"commit failed: {exc}")

    async def _settle_later(
        self, batch: list[Any], results: list[tuple[bool | None, Any]], tx: Tx | None
    ) -> None:
        """Settle the writes; those that lost a conflict go back to the
        writer after a short random wait (the other side finishes first)."""
        again = self._settle(batch, results, tx)
        if again:
            tries = max(item[2] for item in again)
            await asyncio.sleep(random.uniform(0, 0.01 * 2**tries))
            for item in again:
                self._writes.put_nowait(item)

    def _settle(
        self, batch: list[Any], results: list[tuple[bool | None, Any]], tx: Tx | None
    ) -> list[Any]:
        """Complete the callers' futures (tx: the committed transaction,
        whose listeners wake); the writes to run again."""
        again = []
        for (fn, future, tries), (ok, value) in zip(batch, results, strict=True):
            if future.cancelled():
                continue
            if ok is None:
                if tries < RETRIES:
                    log.info("store write lost a conflict, running it again: %s", value)
                    again.append((fn, future, tries + 1))
                    continue
                ok, value = False, StoreError(f"the store refused: {value}")
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if tx is not None:
            self._wake(tx.touched, tx.queue_changed, tx.accounts)
        return again

    async def _file_group(self, tx: Tx, batch: list[Any]) -> dict[Any, Any]:
        """Run the batch's group writes together; {} when there are too few
        to bother or one of them must fail on its own."""
        group = [item[0] for item in batch if isinstance(item[0], GroupWrite)]
        if len(group) < 2:
            return {}
        # A batch of nothing but the group needs no SAVEPOINT (two round
        # trips): when the group fails, the whole transaction starts again.
        whole = len(group) == len(batch)
        touched, accounts = set(tx.touched), set(tx.accounts)
        try:
            async with contextlib.nullcontext() if whole else tx.conn.transaction():
                placed = await group[0].file_together(tx, group)
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
            raise
        except Exception as exc:
            if whole:
                raise _Regroup from exc
            tx.touched, tx.accounts = touched, accounts
            return {}
        return dict(zip(group, placed, strict=True))

    def _payload(self, tx: Tx) -> str:
        marks = [f"m{mailbox_id}" for mailbox_id in sorted(tx.touched)]
        marks += [f"a{account_id}" for account_id in sorted(tx.accounts)]
        if tx.queue_changed:
            marks.append("q")
        return f"{self._token} {','.join(marks)}" if marks else ""

    # -- change notification ------------------------------------------------

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        token, _, marks = payload.partition(" ")
        if token == self._token:
            return  # woken at our own commit already
        parts = marks.split(",")
        try:
            touched = {int(mark[1:]) for mark in parts if mark.startswith("m")}
            accounts = {int(mark[1:]) for mark in parts if mark.startswith("a")}
        except ValueError:
            log.warning("ignored a notification not of mailstack's: %r", payload)
            return
        self._wake(touched, "q" in parts, accounts)

    def _wake(
        self, touched: set[int], queue_changed: bool, accounts: set[int] | None = None
    ) -> None:
        if queue_changed:
            self._queue_mark += 1
        self.listeners.wake(touched)
        self.account_listeners.wake(accounts or ())

    def listen(self, mailbox_id: int) -> Listener:
        return self.listeners.listen(mailbox_id)

    def listen_account(self, account_id: int) -> Listener:
        return self.account_listeners.listen(account_id)

    def queue_mark(self) -> int | None:
        """Moves whenever any node made queued mail due early (queue retry)."""
        return self._queue_mark
