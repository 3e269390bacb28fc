"""The embedded store: SQLite in WAL mode, message bytes in the database.

Durability and group commit: every write runs on one writer thread. The
thread takes all writes that are waiting, runs each inside its own SAVEPOINT
of one transaction, commits once (``synchronous=FULL``: the WAL is fsynced on
commit) and only then completes the callers' futures. Many sessions waiting
on one fsync is how a durable server stays fast (ARCHITECTURE.md). The
deliveries among those writes are filed together with a few multi-row
statements (``_file_many``): every statement lets go of the GIL and has to
win it back from the busy event loop, so statements are what costs. A
checkpoint thread moves the WAL into the database, off the commit path.

Reads run on a small pool of threads, each with its own connection; WAL lets
them proceed while the writer commits. Recipient lookups are kept between
changes to the directory (see ``resolve_local`` and the marks in ``files``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailstack.errors import AlreadyExists, NotFound, QuotaExceeded, StoreError
from mailstack.mime import ParsedMessage, parse
from mailstack.store.base import (
    DEFAULT_MAILBOXES,
    Account,
    Alias,
    DeliveryTarget,
    FlagMode,
    FlagResult,
    Mailbox,
    MailboxStatus,
    MailboxSync,
    MessageMeta,
)
from mailstack.store.files import mark_changed, mark_version
from mailstack.store.keys import KEYS_SCHEMA, SqliteKeysMixin
from mailstack.store.queue import QUEUE_SCHEMA, SqliteQueueMixin
from mailstack.store.zones import ZONES_SCHEMA, SqliteZonesMixin

T = TypeVar("T")
log = logging.getLogger(__name__)

# resolve_local keeps at most this many answers (a dictionary attack on RCPT
# must not grow memory without bound), then starts over.
RECIPIENTS_KEPT = 10_000
_UNKNOWN = object()

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS domains (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    address TEXT UNIQUE NOT NULL,
    password_hash TEXT NOT NULL,
    quota INTEGER NOT NULL DEFAULT 0,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS aliases (
    source TEXT NOT NULL, target TEXT NOT NULL, PRIMARY KEY (source, target)
);
CREATE TABLE IF NOT EXISTS mailboxes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 1,
    recent_uid INTEGER NOT NULL DEFAULT 1,
    special_use TEXT,
    UNIQUE (account_id, name)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    account_id INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (account_id, name)
);
CREATE TABLE IF NOT EXISTS blobs (
    id INTEGER PRIMARY KEY,
    refs INTEGER NOT NULL,
    data BLOB NOT NULL,
    parsed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags TEXT NOT NULL,
    internaldate TEXT NOT NULL,
    size INTEGER NOT NULL,
    blob_id INTEGER NOT NULL,
    prefix BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_modseq ON messages (mailbox_id, modseq);
CREATE TABLE IF NOT EXISTS expunged (
    mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
"""

MAX_BATCH = 256
# Seconds between WAL checkpoints, and the size a reset WAL is cut back to.
CHECKPOINT_INTERVAL = 0.5
WAL_SIZE_LIMIT = 64 * 1024 * 1024
READERS = 4
VARIABLES = 999
SUBADDRESS_SEPARATOR = "+"
ALIAS_DEPTH = 8


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    # RFC-grade durability: the WAL is fsynced at every commit.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Every query is built for the smallest limit SQLite builds have had
    # (999 variables), so it behaves alike on every build; tests catch a
    # query that would need more.
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, VARIABLES)
    return conn


def _flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(set(flags)))


def _flags_set(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


def _meta(row: tuple[Any, ...]) -> MessageMeta:
    uid, flags, internaldate, size, modseq = row
    return MessageMeta(
        uid, _flags_set(flags), datetime.datetime.fromisoformat(internaldate), size, modseq
    )


def _mailbox(row: tuple[Any, ...], subscribed: bool) -> Mailbox:
    return Mailbox(row[0], row[1], row[2], row[3], row[4], row[5], row[6], subscribed)


def normalize_address(address: str) -> str:
    """Domains are case-insensitive; we fold local parts too (as most MTAs do)."""
    return address.strip().lower()


def is_inbox(name: str) -> bool:
    return name.upper() == "INBOX"


def canonical_name(name: str) -> str:
    """RFC 3501 §5.1: INBOX is case-insensitive."""
    return "INBOX" if is_inbox(name) else name


class _Listener:
    def __init__(self, store: SqliteStore, mailbox_id: int) -> None:
        self._store = store
        self.mailbox_id = mailbox_id
        self.event = asyncio.Event()

    async def wait(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        self.event.clear()
        return True

    def close(self) -> None:
        self._store._listeners.get(self.mailbox_id, set()).discard(self)


class SqliteStore(SqliteZonesMixin, SqliteQueueMixin, SqliteKeysMixin):
    """Store on SQLite. Open with `await SqliteStore.open(path)`."""

    def __init__(self, path: Path, *, password_hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self._hasher = password_hasher or PasswordHasher()
        self._writes: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reads: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._readers: list[threading.Thread] = []
        self._checkpointer: threading.Thread | None = None
        self._closing = threading.Event()
        self._listeners: dict[int, set[_Listener]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # resolve_local's answers, valid while the directory mark stays the same.
        self.directory_mark = path.with_name(path.name + "-directory")
        self._recipients: dict[str, list[Account] | None] = {}
        self._recipients_mark: int | None = None
        self.queue_mark_path = path.with_name(path.name + "-queue")

    @classmethod
    async def open(cls, path: Path, **kwargs: Any) -> SqliteStore:
        store = cls(path, **kwargs)
        await asyncio.to_thread(store._create)
        store._loop = asyncio.get_running_loop()
        writer = _connect(path)
        # Checkpoints move the WAL into the database on their own thread, so
        # a commit only appends to the WAL and fsyncs it: an autocheckpoint
        # would stall every delivery waiting on that commit.
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        store._writer = threading.Thread(
            target=store._write_loop, args=(writer,), name="store-writer", daemon=True
        )
        store._writer.start()
        store._checkpointer = threading.Thread(
            target=store._checkpoint_loop, args=(_connect(path),), name="store-checkpoint",
            daemon=True,
        )
        store._checkpointer.start()
        for n in range(READERS):
            reader = threading.Thread(
                target=store._read_loop, args=(_connect(path),), name=f"store-read-{n}", daemon=True
            )
            reader.start()
            store._readers.append(reader)
        return store

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(self.path)
        try:
            conn.executescript(SCHEMA + ZONES_SCHEMA + QUEUE_SCHEMA + KEYS_SCHEMA)
        finally:
            conn.close()
        mark_changed(self.directory_mark)

    async def close(self) -> None:
        if self._writer is not None:
            self._writes.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._checkpointer is not None:
            self._closing.set()
            await asyncio.to_thread(self._checkpointer.join)
            self._checkpointer = None
        for _ in self._readers:
            self._reads.put(None)
        for reader in self._readers:
            await asyncio.to_thread(reader.join)
        self._readers.clear()

    # -- the two primitives ------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
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
        """A reader thread: runs the reads waiting in the queue, then hands
        their results back to the loop in one wake-up."""
        running = True
        while running:
            done: list[tuple[asyncio.Future[Any], bool, Any]] = []
            item = self._reads.get()
            while item is not None:
                fn, future, loop = item
                conn.execute("BEGIN")
                try:
                    done.append((future, True, fn(conn)))
                except Exception as exc:
                    done.append((future, False, exc))
                finally:
                    conn.execute("COMMIT")
                if len(done) >= MAX_BATCH:
                    break
                try:
                    item = self._reads.get_nowait()
                except queue.Empty:
                    break
            else:
                running = False
            if done:
                _settle_all(done)
        conn.close()

    def _write_loop(self, conn: sqlite3.Connection) -> None:
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
            if not batch:
                continue
            results: list[tuple[bool, Any]] = []
            self._touched: set[int] = set()
            self._directory_touched = False
            self._queue_touched = False
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
            touched = self._touched
            # After the commit, before anyone hears "done": a process that
            # sees a mark move also sees the rows that moved it.
            if self._directory_touched:
                mark_changed(self.directory_mark)
            if self._queue_touched:
                mark_changed(self.queue_mark_path)
            done = [
                (future, ok, value)
                for (_fn, future, _loop), (ok, value) in zip(batch, results, strict=True)
            ]
            _settle_all(done)
            if touched and self._loop is not None:
                self._loop.call_soon_threadsafe(self._notify, touched)
        conn.close()

    def _file_group(self, conn: sqlite3.Connection, batch: list[Any]) -> dict[Any, Any]:
        """File the batch's deliveries together (_file_many); {} when there
        are too few to bother or one of them must fail on its own."""
        deliveries = [fn for fn, _future, _loop in batch if isinstance(fn, _Delivery)]
        if len(deliveries) < 2:
            return {}
        conn.execute("SAVEPOINT deliveries")
        try:
            placed = self._file_many(conn, deliveries)
        except Exception:
            conn.execute("ROLLBACK TO deliveries")
            conn.execute("RELEASE deliveries")
            return {}
        conn.execute("RELEASE deliveries")
        return dict(zip(deliveries, placed, strict=True))

    def _checkpoint_loop(self, conn: sqlite3.Connection) -> None:
        """Copy committed WAL frames into the database now and then (PASSIVE:
        never waits for, nor blocks, the writer or the readers)."""
        while not self._closing.wait(CHECKPOINT_INTERVAL):
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed: %s", exc)
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        conn.close()

    def _touch(self, mailbox_id: int) -> None:
        """Called by write functions: listeners of this mailbox wake after commit."""
        self._touched.add(mailbox_id)

    def _directory_change(self) -> None:
        """Called by write functions that change domains, accounts or aliases."""
        self._directory_touched = True

    def _queue_change(self) -> None:
        """Called by write functions that make queued mail due before its time."""
        self._queue_touched = True

    def queue_mark(self) -> int | None:
        """Moves whenever any process made queued mail due early (queue retry)."""
        return mark_version(self.queue_mark_path)

    def _notify(self, mailbox_ids: set[int]) -> None:
        for mailbox_id in mailbox_ids:
            for listener in self._listeners.get(mailbox_id, ()):
                listener.event.set()

    def listen(self, mailbox_id: int) -> _Listener:
        listener = _Listener(self, mailbox_id)
        self._listeners.setdefault(mailbox_id, set()).add(listener)
        return listener

    # -- domains -------------------------------------------------------------

    async def domain_add(self, name: str) -> None:
        name = name.strip().lower().rstrip(".")

        def op(c: sqlite3.Connection) -> None:
            try:
                c.execute("INSERT INTO domains (name) VALUES (?)", (name,))
                self._directory_change()
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"domain {name} exists") from None

        await self._write(op)

    async def domain_remove(self, name: str) -> None:
        name = name.strip().lower().rstrip(".")

        def op(c: sqlite3.Connection) -> None:
            users = c.execute(
                "SELECT count(*) FROM accounts WHERE address LIKE ? ESCAPE '\\'",
                (_like_suffix(f"@{name}"),),
            ).fetchone()[0]
            if users:
                raise StoreError(f"domain {name} still has {users} account(s)")
            if c.execute("DELETE FROM domains WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no domain {name}")
            c.execute(
                "DELETE FROM aliases WHERE source LIKE ? ESCAPE '\\'", (_like_suffix(f"@{name}"),)
            )
            self._directory_change()

        await self._write(op)

    async def domain_list(self) -> list[str]:
        return await self._read(
            lambda c: [r[0] for r in c.execute("SELECT name FROM domains ORDER BY name")]
        )

    async def is_local_domain(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return await self._read(
            lambda c: (
                c.execute("SELECT 1 FROM domains WHERE name = ?", (name,)).fetchone() is not None
            )
        )

    # -- accounts ------------------------------------------------------------

    async def account_add(self, address: str, password: str, quota: int = 0) -> Account:
        address = normalize_address(address)
        local, _, domain = address.rpartition("@")
        if not local or not domain:
            raise StoreError(f"not an address: {address}")
        password_hash = await asyncio.to_thread(self._hasher.hash, password)

        def op(c: sqlite3.Connection) -> Account:
            if c.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone() is None:
                raise NotFound(f"{domain} is not a local domain (mailstack domain add {domain})")
            try:
                cur = c.execute(
                    "INSERT INTO accounts (address, password_hash, quota) VALUES (?, ?, ?)",
                    (address, password_hash, quota),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"account {address} exists") from None
            account_id = cur.lastrowid
            assert account_id is not None
            for name, special_use in DEFAULT_MAILBOXES:
                self._create_mailbox(c, account_id, name, special_use)
                c.execute("INSERT INTO subscriptions VALUES (?, ?)", (account_id, name))
            self._directory_change()
            return Account(account_id, address, quota, 0)

        return await self._write(op)

    async def account_remove(self, address: str) -> None:
        address = normalize_address(address)

        def op(c: sqlite3.Connection) -> None:
            row = c.execute("SELECT id FROM accounts WHERE address = ?", (address,)).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            for (mailbox_id,) in c.execute(
                "SELECT id FROM mailboxes WHERE account_id = ?", (row[0],)
            ).fetchall():
                self._drop_mailbox(c, mailbox_id)
            c.execute("DELETE FROM subscriptions WHERE account_id = ?", (row[0],))
            c.execute("DELETE FROM accounts WHERE id = ?", (row[0],))
            c.execute("DELETE FROM aliases WHERE target = ?", (address,))
            self._directory_change()

        await self._write(op)

    async def account_get(self, address: str) -> Account | None:
        address = normalize_address(address)

        def op(c: sqlite3.Connection) -> Account | None:
            row = c.execute(
                "SELECT id, address, quota, used FROM accounts WHERE address = ?", (address,)
            ).fetchone()
            return Account(*row) if row else None

        return await self._read(op)

    async def account_list(self, domain: str | None = None) -> list[Account]:
        def op(c: sqlite3.Connection) -> list[Account]:
            sql = "SELECT id, address, quota, used FROM accounts"
            args: tuple[str, ...] = ()
            if domain:
                sql += " WHERE address LIKE ? ESCAPE '\\'"
                args = (_like_suffix(f"@{domain.lower()}"),)
            return [Account(*r) for r in c.execute(sql + " ORDER BY address", args)]

        return await self._read(op)

    async def set_password(self, address: str, password: str) -> None:
        address = normalize_address(address)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)

        def op(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE accounts SET password_hash = ? WHERE address = ?", (password_hash, address)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no account {address}")

        await self._write(op)

    async def authenticate(self, address: str, password: str) -> Account | None:
        address = normalize_address(address)
        row = await self._read(
            lambda c: c.execute(
                "SELECT id, address, quota, used, password_hash FROM accounts WHERE address = ?",
                (address,),
            ).fetchone()
        )
        if row is None:
            return None
        try:
            await asyncio.to_thread(self._hasher.verify, row[4], password)
        except (VerificationError, InvalidHashError):
            return None
        return Account(row[0], row[1], row[2], row[3])

    # -- aliases -------------------------------------------------------------

    async def alias_add(self, source: str, target: str) -> None:
        source, target = normalize_address(source), normalize_address(target)

        def op(c: sqlite3.Connection) -> None:
            domain = source.rpartition("@")[2]
            if c.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone() is None:
                raise NotFound(f"{domain} is not a local domain")
            target_domain = target.rpartition("@")[2]
            if (
                c.execute("SELECT 1 FROM domains WHERE name = ?", (target_domain,)).fetchone()
                is None
            ):
                raise StoreError(
                    "an alias target must be a local address (forwarding to other domains "
                    "arrives with the outbound queue)"
                )
            try:
                c.execute("INSERT INTO aliases VALUES (?, ?)", (source, target))
                self._directory_change()
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"alias {source} -> {target} exists") from None

        await self._write(op)

    async def alias_remove(self, source: str, target: str | None = None) -> None:
        source = normalize_address(source)

        def op(c: sqlite3.Connection) -> None:
            if target is None:
                cur = c.execute("DELETE FROM aliases WHERE source = ?", (source,))
            else:
                cur = c.execute(
                    "DELETE FROM aliases WHERE source = ? AND target = ?",
                    (source, normalize_address(target)),
                )
            if cur.rowcount == 0:
                raise NotFound(f"no alias {source}")
            self._directory_change()

        await self._write(op)

    async def alias_list(self) -> list[Alias]:
        return await self._read(
            lambda c: [
                Alias(*r) for r in c.execute("SELECT source, target FROM aliases ORDER BY 1, 2")
            ]
        )

    async def resolve_recipient(self, address: str) -> list[Account]:
        """The accounts a local address delivers to: the account itself, its
        aliases (followed up to ALIAS_DEPTH), sub-addresses (bob+tag@ is bob@)
        and a domain's catch-all alias (@domain), in that order of preference."""
        address = normalize_address(address)
        return await self._read(lambda c: self._resolve(c, address, 0))

    async def resolve_local(self, address: str) -> list[Account] | None:
        """resolve_recipient in one round trip, None when the domain is not local.

        Every RCPT asks this, so answers are kept until the directory mark
        says that some store (this process's or another's, such as the CLI)
        changed a domain, account or alias. The accounts' quota and usage
        in a kept answer may be old: deliveries check them when they commit.
        """
        address = normalize_address(address)
        mark = mark_version(self.directory_mark)
        if mark is not None and mark == self._recipients_mark:
            known = self._recipients.get(address, _UNKNOWN)
            if known is not _UNKNOWN:
                return known
        else:
            self._recipients.clear()
            self._recipients_mark = mark
        domain = address.rpartition("@")[2]

        def op(c: sqlite3.Connection) -> list[Account] | None:
            if c.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone() is None:
                return None
            return self._resolve(c, address, 0)

        found = await self._read(op)
        if mark is not None and mark == self._recipients_mark:
            if len(self._recipients) >= RECIPIENTS_KEPT:
                self._recipients.clear()
            self._recipients[address] = found
        return found

    def _resolve(self, c: sqlite3.Connection, address: str, depth: int) -> list[Account]:
        if depth > ALIAS_DEPTH:
            return []
        row = c.execute(
            "SELECT id, address, quota, used FROM accounts WHERE address = ?", (address,)
        ).fetchone()
        if row:
            return [Account(*row)]
        targets = [
            r[0] for r in c.execute("SELECT target FROM aliases WHERE source = ?", (address,))
        ]
        local, _, domain = address.rpartition("@")
        if not targets and SUBADDRESS_SEPARATOR in local:
            base = local.split(SUBADDRESS_SEPARATOR, 1)[0]
            if base:
                found = self._resolve(c, f"{base}@{domain}", depth + 1)
                if found:
                    return found
        if not targets:
            targets = [
                r[0]
                for r in c.execute("SELECT target FROM aliases WHERE source = ?", (f"@{domain}",))
            ]
        accounts: dict[int, Account] = {}
        for target in targets:
            if target == address:
                continue
            for account in self._resolve(c, target, depth + 1):
                accounts.setdefault(account.id, account)
        return list(accounts.values())

    # -- mailboxes -----------------------------------------------------------

    def _next_uidvalidity(self, c: sqlite3.Connection) -> int:
        # RFC 3501 §2.3.1.1: a name reused must get a new, greater UIDVALIDITY.
        row = c.execute("SELECT value FROM meta WHERE key = 'uidvalidity'").fetchone()
        value = max(int(time.time()), (row[0] + 1) if row else 1) & 0xFFFFFFFF or 1
        c.execute("INSERT OR REPLACE INTO meta VALUES ('uidvalidity', ?)", (value,))
        return value

    def _create_mailbox(
        self, c: sqlite3.Connection, account_id: int, name: str, special_use: str | None
    ) -> Mailbox:
        uidvalidity = self._next_uidvalidity(c)
        try:
            cur = c.execute(
                "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use)"
                " VALUES (?, ?, ?, ?)",
                (account_id, name, uidvalidity, special_use),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"mailbox {name} exists") from None
        assert cur.lastrowid is not None
        return Mailbox(cur.lastrowid, account_id, name, uidvalidity, 1, 1, special_use, False)

    def _drop_mailbox(self, c: sqlite3.Connection, mailbox_id: int) -> None:
        self._unref_messages(c, mailbox_id, None)
        c.execute("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox_id,))
        c.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))
        self._touch(mailbox_id)

    _MAILBOX_COLUMNS = "id, account_id, name, uidvalidity, uidnext, highest_modseq, special_use"

    async def mailbox_list(self, account_id: int) -> list[Mailbox]:
        def op(c: sqlite3.Connection) -> list[Mailbox]:
            subscribed = {
                r[0]
                for r in c.execute(
                    "SELECT name FROM subscriptions WHERE account_id = ?", (account_id,)
                )
            }
            rows = c.execute(
                f"SELECT {self._MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? ORDER BY name",
                (account_id,),
            )
            return [_mailbox(r, r[2] in subscribed) for r in rows]

        return await self._read(op)

    def _get_mailbox(self, c: sqlite3.Connection, account_id: int, name: str) -> Mailbox | None:
        name = canonical_name(name)
        row = c.execute(
            f"SELECT {self._MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? AND name = ?",
            (account_id, name),
        ).fetchone()
        if row is None:
            return None
        subscribed = c.execute(
            "SELECT 1 FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name)
        ).fetchone()
        return _mailbox(row, subscribed is not None)

    async def mailbox_get(self, account_id: int, name: str) -> Mailbox | None:
        return await self._read(lambda c: self._get_mailbox(c, account_id, name))

    async def mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        def op(c: sqlite3.Connection) -> Mailbox | None:
            row = c.execute(
                f"SELECT {self._MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if row is None:
                return None
            subscribed = c.execute(
                "SELECT 1 FROM subscriptions WHERE account_id = ? AND name = ?", (row[1], row[2])
            ).fetchone()
            return _mailbox(row, subscribed is not None)

        return await self._read(op)

    async def mailbox_create(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        name = canonical_name(name)
        return await self._write(lambda c: self._create_mailbox(c, account_id, name, special_use))

    async def mailbox_delete(self, account_id: int, name: str) -> None:
        if is_inbox(name):
            raise StoreError("INBOX cannot be deleted")

        def op(c: sqlite3.Connection) -> None:
            mailbox = self._get_mailbox(c, account_id, name)
            if mailbox is None:
                raise NotFound(f"no mailbox {name}")
            self._drop_mailbox(c, mailbox.id)

        await self._write(op)

    async def mailbox_rename(self, account_id: int, old: str, new: str) -> None:
        """Rename a mailbox and its inferiors (delimiter "/"). Renaming INBOX
        moves its messages to a new mailbox and leaves INBOX empty (RFC 3501
        §6.3.5)."""
        old, new = canonical_name(old), canonical_name(new)

        def op(c: sqlite3.Connection) -> None:
            source = self._get_mailbox(c, account_id, old)
            if source is None:
                raise NotFound(f"no mailbox {old}")
            if self._get_mailbox(c, account_id, new) is not None or is_inbox(new):
                raise AlreadyExists(f"mailbox {new} exists")
            if old == "INBOX":
                target = self._create_mailbox(c, account_id, new, None)
                uids = [
                    r[0]
                    for r in c.execute(
                        "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (source.id,)
                    )
                ]
                self._copy(c, source.id, uids, target.id, move=True)
                return
            children = c.execute(
                "SELECT id, name FROM mailboxes WHERE account_id = ? AND name LIKE ? ESCAPE '\\'",
                (account_id, _like_prefix(old + "/")),
            ).fetchall()
            for mailbox_id, name in [(source.id, old), *children]:
                renamed = new + name[len(old) :]
                if self._get_mailbox(c, account_id, renamed) is not None:
                    raise AlreadyExists(f"mailbox {renamed} exists")
                # A renamed mailbox is a different mailbox for clients that
                # cached it by name: RFC 3501 lets UIDVALIDITY stay; we keep it.
                c.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (renamed, mailbox_id))
                c.execute(
                    "UPDATE subscriptions SET name = ? WHERE account_id = ? AND name = ?",
                    (renamed, account_id, name),
                )
                self._touch(mailbox_id)

        await self._write(op)

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        def op(c: sqlite3.Connection) -> MailboxStatus:
            row = c.execute(
                "SELECT uidvalidity, uidnext, highest_modseq FROM mailboxes WHERE id = ?",
                (mailbox_id,),
            ).fetchone()
            if row is None:
                raise NotFound("no such mailbox")
            messages, size, unseen, deleted = c.execute(
                "SELECT count(*), coalesce(sum(size), 0),"
                " coalesce(sum(instr(' ' || flags || ' ', ' \\Seen ') = 0), 0),"
                " coalesce(sum(instr(' ' || flags || ' ', ' \\Deleted ') > 0), 0)"
                " FROM messages WHERE mailbox_id = ?",
                (mailbox_id,),
            ).fetchone()
            return MailboxStatus(messages, unseen, deleted, size, row[1], row[0], row[2])

        return await self._read(op)

    async def subscribe(self, account_id: int, name: str) -> None:
        name = canonical_name(name)
        await self._write(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO subscriptions VALUES (?, ?)", (account_id, name)
            )
        )

    async def unsubscribe(self, account_id: int, name: str) -> None:
        name = canonical_name(name)

        def op(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "DELETE FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name)
            )
            if cur.rowcount == 0:
                raise NotFound(f"not subscribed to {name}")

        await self._write(op)

    async def subscriptions(self, account_id: int) -> list[str]:
        return await self._read(
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name",
                    (account_id,),
                )
            ]
        )

    # -- messages ------------------------------------------------------------

    def _bump_modseq(self, c: sqlite3.Connection, mailbox_id: int) -> int:
        row = c.execute(
            "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?"
            " RETURNING highest_modseq",
            (mailbox_id,),
        ).fetchone()
        if row is None:
            raise NotFound("no such mailbox")
        self._touch(mailbox_id)
        return int(row[0])

    def _insert_message(
        self,
        c: sqlite3.Connection,
        mailbox_id: int,
        blob_id: int,
        prefix: bytes,
        size: int,
        flags: Iterable[str],
        internaldate: str,
        *,
        charge: bool = True,
    ) -> int:
        """File a message; `charge=False` when the caller already counted the
        blob reference and the account's usage."""
        row = c.execute(
            "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1"
            " WHERE id = ? RETURNING uidnext - 1, highest_modseq, account_id",
            (mailbox_id,),
        ).fetchone()
        if row is None:
            raise NotFound("no such mailbox")
        uid, modseq, account_id = row
        c.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (mailbox_id, uid, modseq, _flags_text(flags), internaldate, size, blob_id, prefix),
        )
        if charge:
            c.execute("UPDATE blobs SET refs = refs + 1 WHERE id = ?", (blob_id,))
            c.execute("UPDATE accounts SET used = used + ? WHERE id = ?", (size, account_id))
        self._touch(mailbox_id)
        return int(uid)

    @staticmethod
    def _check_quota(c: sqlite3.Connection, account_id: int, size: int) -> None:
        row = c.execute("SELECT quota, used FROM accounts WHERE id = ?", (account_id,)).fetchone()
        if row is None:
            raise NotFound("no such account")
        quota, used = row
        if quota and used + size > quota:
            raise QuotaExceeded(f"quota of {quota} octets exceeded")

    async def deliver(self, raw: bytes, targets: Sequence[DeliveryTarget]) -> list[tuple[int, int]]:
        """Store raw once and file it into every target; (mailbox_id, uid) each."""
        parsed = await _parse(raw)
        now = datetime.datetime.now(datetime.UTC).astimezone().isoformat()
        return await self._write(_Delivery(self, raw, parsed, list(targets), now))

    async def deliver_some(
        self, raw: bytes, targets: Sequence[DeliveryTarget]
    ) -> list[tuple[int, int] | None]:
        """deliver(), but a target whose account has no room for the message
        is left out (None in its place); QuotaExceeded only when none had."""
        parsed = await _parse(raw)
        now = datetime.datetime.now(datetime.UTC).astimezone().isoformat()
        return await self._write(_Delivery(self, raw, parsed, list(targets), now, partial=True))

    def _file_one(self, c: sqlite3.Connection, d: _Delivery) -> list[tuple[int, int] | None]:
        """One delivery on its own: what a group falls back to (see _file_many)."""
        blob_id = c.execute(
            "INSERT INTO blobs (refs, data, parsed) VALUES (?, ?, ?)",
            (len(d.targets), d.raw, ParsedMessage.pack(d.parsed)),
        ).lastrowid
        assert blob_id is not None
        placed: list[tuple[int, int] | None] = []
        for target in d.targets:
            size = len(d.raw) + len(target.prefix)
            charged = c.execute(
                "UPDATE accounts SET used = used + ?"
                " WHERE id = ? AND (quota = 0 OR used + ? <= quota)",
                (size, target.account_id, size),
            ).rowcount
            if not charged:
                if not d.partial:
                    self._check_quota(c, target.account_id, size)  # says why
                placed.append(None)
                continue
            mailbox_id = self._delivery_mailbox(c, target)
            uid = self._insert_message(
                c, mailbox_id, blob_id, target.prefix, size, target.flags, d.now, charge=False
            )
            placed.append((mailbox_id, uid))
        filed = sum(where is not None for where in placed)
        if not filed:
            raise QuotaExceeded("no recipient has room for the message")
        if filed < len(d.targets):
            c.execute("UPDATE blobs SET refs = ? WHERE id = ?", (filed, blob_id))
        return placed

    @staticmethod
    def _delivery_mailbox(c: sqlite3.Connection, target: DeliveryTarget) -> int:
        row = c.execute(
            "SELECT id FROM mailboxes WHERE account_id = ? AND name IN (?, 'INBOX')"
            " ORDER BY name = 'INBOX' LIMIT 1",
            (target.account_id, canonical_name(target.mailbox)),
        ).fetchone()
        if row is None:
            raise NotFound("the recipient has no INBOX")
        return int(row[0])

    def _file_many(
        self, c: sqlite3.Connection, deliveries: list[_Delivery]
    ) -> list[list[tuple[int, int]]]:
        """The deliveries waiting in one group commit, filed together.

        Every SQLite statement lets go of the GIL and must win it back from
        the busy event loop, so statements, not rows, are what a delivery
        costs the writer: here a whole group takes a handful (per account,
        per mailbox, and one multi-row INSERT per table) instead of eight per
        delivery. Raises when any delivery would fail (a full mailbox, a
        missing INBOX); the caller then rolls the group back and files each
        one on its own, so that only that one fails.
        """
        mailbox_of: dict[tuple[int, str], int] = {}
        charges: dict[int, int] = {}
        arrivals: dict[int, int] = {}
        for d in deliveries:
            for target in d.targets:
                key = (target.account_id, canonical_name(target.mailbox))
                if key not in mailbox_of:
                    mailbox_of[key] = self._delivery_mailbox(c, target)
                mailbox_id = mailbox_of[key]
                arrivals[mailbox_id] = arrivals.get(mailbox_id, 0) + 1
                size = len(d.raw) + len(target.prefix)
                charges[target.account_id] = charges.get(target.account_id, 0) + size
        for account_id, size in charges.items():
            if not c.execute(
                "UPDATE accounts SET used = used + ?"
                " WHERE id = ? AND (quota = 0 OR used + ? <= quota)",
                (size, account_id, size),
            ).rowcount:
                raise QuotaExceeded("a recipient is near their quota")
        last_blob = c.execute("SELECT coalesce(max(id), 0) FROM blobs").fetchone()[0]
        _insert_rows(c, "blobs (id, refs, data, parsed)", [
            (last_blob + n, len(d.targets), d.raw, ParsedMessage.pack(d.parsed))
            for n, d in enumerate(deliveries, 1)
        ])
        # uidnext and highest_modseq move once per mailbox for all its arrivals.
        next_uid: dict[int, int] = {}
        last_modseq: dict[int, int] = {}
        for mailbox_id, count in arrivals.items():
            uid, modseq = c.execute(
                "UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = highest_modseq + ?"
                " WHERE id = ? RETURNING uidnext - ?, highest_modseq - ?",
                (count, count, mailbox_id, count, count),
            ).fetchone()
            next_uid[mailbox_id], last_modseq[mailbox_id] = uid, modseq
            self._touch(mailbox_id)
        rows = []
        placed: list[list[tuple[int, int]]] = []
        for n, d in enumerate(deliveries, 1):
            filed = []
            for target in d.targets:
                mailbox_id = mailbox_of[(target.account_id, canonical_name(target.mailbox))]
                uid = next_uid[mailbox_id]
                modseq = last_modseq[mailbox_id] + 1
                next_uid[mailbox_id], last_modseq[mailbox_id] = uid + 1, modseq
                rows.append((
                    mailbox_id, uid, modseq, _flags_text(target.flags), d.now,
                    len(d.raw) + len(target.prefix), last_blob + n, target.prefix,
                ))
                filed.append((mailbox_id, uid))
            placed.append(filed)
        _insert_rows(c, "messages", rows)
        return placed

    async def append(
        self,
        mailbox_id: int,
        raw: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime.datetime | None = None,
    ) -> int:
        parsed = await _parse(raw)
        when = internaldate or datetime.datetime.now(datetime.UTC).astimezone()
        flag_list = list(flags)

        def op(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if row is None:
                raise NotFound("no such mailbox")
            self._check_quota(c, row[0], len(raw))
            cur = c.execute(
                "INSERT INTO blobs (refs, data, parsed) VALUES (0, ?, ?)",
                (raw, ParsedMessage.pack(parsed)),
            )
            assert cur.lastrowid is not None
            return self._insert_message(
                c, mailbox_id, cur.lastrowid, b"", len(raw), flag_list, when.isoformat()
            )

        return await self._write(op)

    async def messages(self, mailbox_id: int) -> list[MessageMeta]:
        return await self._read(
            lambda c: [
                _meta(r)
                for r in c.execute(
                    "SELECT uid, flags, internaldate, size, modseq FROM messages"
                    " WHERE mailbox_id = ? ORDER BY uid",
                    (mailbox_id,),
                )
            ]
        )

    async def message_bytes(self, mailbox_id: int, uid: int) -> bytes:
        def op(c: sqlite3.Connection) -> bytes:
            row = c.execute(
                "SELECT m.prefix, b.data FROM messages m JOIN blobs b ON b.id = m.blob_id"
                " WHERE m.mailbox_id = ? AND m.uid = ?",
                (mailbox_id, uid),
            ).fetchone()
            if row is None:
                raise NotFound(f"no message with UID {uid}")
            return bytes(row[0]) + bytes(row[1]) if row[0] else bytes(row[1])

        return await self._read(op)

    async def messages_parsed(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, ParsedMessage]:
        wanted = list(uids)

        def op(c: sqlite3.Connection) -> dict[int, ParsedMessage]:
            found: dict[int, ParsedMessage] = {}
            for uid, prefix, stored in _with_blob(c, "parsed", mailbox_id, wanted):
                parsed = ParsedMessage.from_bytes(bytes(stored))
                found[uid] = parsed.prepend(bytes(prefix)) if prefix else parsed
            return found

        return await self._read(op)

    async def message_parsed(self, mailbox_id: int, uid: int) -> ParsedMessage:
        found = await self.messages_parsed(mailbox_id, [uid])
        if uid not in found:
            raise NotFound(f"no message with UID {uid}")
        return found[uid]

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: FlagMode,
        unchanged_since: int | None = None,
    ) -> FlagResult:
        uid_list = sorted(set(uids))
        flag_set = frozenset(flags)

        def op(c: sqlite3.Connection) -> FlagResult:
            changed: list[MessageMeta] = []
            modified: list[int] = []
            modseq: int | None = None
            for uid in uid_list:
                row = c.execute(
                    "SELECT uid, flags, internaldate, size, modseq FROM messages"
                    " WHERE mailbox_id = ? AND uid = ?",
                    (mailbox_id, uid),
                ).fetchone()
                if row is None:
                    continue
                meta = _meta(row)
                if unchanged_since is not None and meta.modseq > unchanged_since:
                    modified.append(uid)
                    continue
                if mode == "add":
                    new = meta.flags | flag_set
                elif mode == "remove":
                    new = meta.flags - flag_set
                else:
                    new = flag_set
                if new == meta.flags:
                    continue
                if modseq is None:
                    modseq = self._bump_modseq(c, mailbox_id)
                c.execute(
                    "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
                    (_flags_text(new), modseq, mailbox_id, uid),
                )
                changed.append(MessageMeta(uid, new, meta.internaldate, meta.size, modseq))
            return FlagResult(changed, modified)

        return await self._write(op)

    def _unref_messages(
        self, c: sqlite3.Connection, mailbox_id: int, uids: list[int] | None
    ) -> None:
        if uids is None:
            rows = c.execute(
                "SELECT blob_id, size FROM messages WHERE mailbox_id = ?", (mailbox_id,)
            ).fetchall()
            c.execute("DELETE FROM messages WHERE mailbox_id = ?", (mailbox_id,))
        else:
            rows = []
            for uid in uids:
                row = c.execute(
                    "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? RETURNING blob_id, size",
                    (mailbox_id, uid),
                ).fetchone()
                if row:
                    rows.append(row)
        freed = sum(size for _blob, size in rows)
        if freed:
            c.execute(
                "UPDATE accounts SET used = max(0, used - ?)"
                " WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?)",
                (freed, mailbox_id),
            )
        for blob_id, _size in rows:
            c.execute("UPDATE blobs SET refs = refs - 1 WHERE id = ?", (blob_id,))
            c.execute("DELETE FROM blobs WHERE id = ? AND refs <= 0", (blob_id,))

    def _expunge(self, c: sqlite3.Connection, mailbox_id: int, uids: list[int]) -> None:
        if not uids:
            return
        modseq = self._bump_modseq(c, mailbox_id)
        self._unref_messages(c, mailbox_id, uids)
        c.executemany(
            "INSERT OR REPLACE INTO expunged VALUES (?, ?, ?)",
            [(mailbox_id, uid, modseq) for uid in uids],
        )

    async def expunge(
        self, mailbox_id: int, uids: Iterable[int] | None = None, *, require_deleted: bool = True
    ) -> list[int]:
        """Remove messages; by default only those flagged \\Deleted (restricted
        to uids when given). Their UIDs are remembered with the MODSEQ."""
        wanted = None if uids is None else set(uids)

        def op(c: sqlite3.Connection) -> list[int]:
            rows = c.execute(
                "SELECT uid, flags FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
            ).fetchall()
            gone = [
                uid
                for uid, flags in rows
                if (wanted is None or uid in wanted)
                and (not require_deleted or "\\Deleted" in flags.split())
            ]
            self._expunge(c, mailbox_id, gone)
            return gone

        return await self._write(op)

    def _copy(
        self, c: sqlite3.Connection, mailbox_id: int, uids: Iterable[int], dest: int, move: bool
    ) -> list[tuple[int, int]]:
        pairs = []
        for uid in sorted(set(uids)):
            row = c.execute(
                "SELECT flags, internaldate, size, blob_id, prefix FROM messages"
                " WHERE mailbox_id = ? AND uid = ?",
                (mailbox_id, uid),
            ).fetchone()
            if row is None:
                continue
            flags, internaldate, size, blob_id, prefix = row
            new_uid = self._insert_message(
                c, dest, blob_id, bytes(prefix), size, flags.split(), internaldate
            )
            pairs.append((uid, new_uid))
        if move:
            self._expunge(c, mailbox_id, [uid for uid, _ in pairs])
        return pairs

    async def copy(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]:
        uid_list = list(uids)

        def op(c: sqlite3.Connection) -> list[tuple[int, int]]:
            owner = c.execute(
                "SELECT account_id FROM mailboxes WHERE id = ?", (dest_mailbox_id,)
            ).fetchone()
            if owner is None:
                raise NotFound("no such mailbox")
            # All the copies together must fit, not each one alone.
            total = 0
            distinct = sorted(set(uid_list))
            for start in range(0, len(distinct), 500):
                chunk = distinct[start : start + 500]
                total += c.execute(
                    "SELECT coalesce(sum(size), 0) FROM messages WHERE mailbox_id = ?"
                    f" AND uid IN ({','.join('?' * len(chunk))})",
                    (mailbox_id, *chunk),
                ).fetchone()[0]
            if total:
                self._check_quota(c, owner[0], total)
            return self._copy(c, mailbox_id, uid_list, dest_mailbox_id, move=False)

        return await self._write(op)

    async def move(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]:
        uid_list = list(uids)
        return await self._write(
            lambda c: self._copy(c, mailbox_id, uid_list, dest_mailbox_id, move=True)
        )

    async def claim_recent(self, mailbox_id: int) -> int:
        """The first UID that is \\Recent for the calling session: messages
        from it up to UIDNEXT are recent to this session and to no other."""

        def op(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if row is None:
                raise NotFound("no such mailbox")
            c.execute("UPDATE mailboxes SET recent_uid = ? WHERE id = ?", (row[1], mailbox_id))
            return int(row[0])

        return await self._write(op)

    async def changes_since(
        self, mailbox_id: int, modseq: int
    ) -> tuple[list[MessageMeta], list[int]]:
        """Messages changed after modseq, and UIDs expunged after it (RFC 7162)."""

        return await self._read(lambda c: _changes(c, mailbox_id, modseq))

    async def messages_bytes(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        wanted = list(uids)

        def op(c: sqlite3.Connection) -> dict[int, bytes]:
            found: dict[int, bytes] = {}
            for uid, prefix, data in _with_blob(c, "data", mailbox_id, wanted):
                found[uid] = bytes(prefix) + bytes(data) if prefix else bytes(data)
            return found

        return await self._read(op)

    async def mailbox_sync(self, mailbox_id: int, modseq: int) -> MailboxSync | None:
        def op(c: sqlite3.Connection) -> MailboxSync | None:
            row = c.execute(
                "SELECT highest_modseq, recent_uid FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if row is None:
                return None
            changed, vanished = _changes(c, mailbox_id, modseq)
            return MailboxSync(int(row[0]), int(row[1]), changed, vanished)

        return await self._read(op)

    async def account_credentials(self, address: str) -> tuple[Account, str] | None:
        address = normalize_address(address)

        def op(c: sqlite3.Connection) -> tuple[Account, str] | None:
            row = c.execute(
                "SELECT id, address, quota, used, password_hash FROM accounts WHERE address = ?",
                (address,),
            ).fetchone()
            return (Account(row[0], row[1], row[2], row[3]), str(row[4])) if row else None

        return await self._read(op)


# Parsing a small message (~80 µs for 2 KiB) costs less than a hop to a thread.
INLINE_PARSE = 32 * 1024


async def _parse(raw: bytes) -> bytes:
    """The parse of raw, encoded but not yet packed: the writer thread packs it."""
    if len(raw) <= INLINE_PARSE:
        return parse(raw).encode()
    return await asyncio.to_thread(lambda: parse(raw).encode())


@dataclass(eq=False, slots=True)
class _Delivery:
    """A deliver() waiting for the writer: a write function like the others
    (filed on its own), which the writer can also file with its neighbours."""

    store: SqliteStore
    raw: bytes
    parsed: bytes  # ParsedMessage.encode()
    targets: list[DeliveryTarget]
    now: str
    partial: bool = False  # deliver_some(): targets without room are left out

    def __call__(self, c: sqlite3.Connection) -> list[tuple[int, int] | None]:
        return self.store._file_one(c, self)


def _with_blob(
    c: sqlite3.Connection, column: str, mailbox_id: int, uids: list[int]
) -> Iterator[tuple[int, bytes, bytes]]:
    """(uid, prefix, blob column) of many messages, five hundred UIDs a query."""
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        yield from c.execute(
            f"SELECT m.uid, m.prefix, b.{column} FROM messages m JOIN blobs b"
            " ON b.id = m.blob_id WHERE m.mailbox_id = ?"
            f" AND m.uid IN ({','.join('?' * len(chunk))})",
            (mailbox_id, *chunk),
        )


def _insert_rows(c: sqlite3.Connection, into: str, rows: list[tuple[Any, ...]]) -> None:
    """Multi-row INSERTs: one statement per hundred rows, not one per row."""
    for start in range(0, len(rows), 100):
        chunk = rows[start : start + 100]
        row = "(" + ", ".join("?" * len(chunk[0])) + ")"
        c.execute(
            f"INSERT INTO {into} VALUES " + ", ".join([row] * len(chunk)),
            [value for values in chunk for value in values],
        )


def _settle(done: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in done:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _settle_all(done: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """Complete futures from a store thread: one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for entry in done:
        by_loop.setdefault(entry[0].get_loop(), []).append(entry)
    for target, entries in by_loop.items():
        target.call_soon_threadsafe(_settle, entries)


def _changes(
    c: sqlite3.Connection, mailbox_id: int, modseq: int
) -> tuple[list[MessageMeta], list[int]]:
    """Messages changed after modseq, and UIDs expunged after it."""
    changed = [
        _meta(r)
        for r in c.execute(
            "SELECT uid, flags, internaldate, size, modseq FROM messages"
            " WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        )
    ]
    vanished = [
        r[0]
        for r in c.execute(
            "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        )
    ]
    return changed, vanished


def _like_escape(text: str) -> str:
    """text as a LIKE pattern that matches only itself (with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(prefix: str) -> str:
    return _like_escape(prefix) + "%"


def _like_suffix(suffix: str) -> str:
    return "%" + _like_escape(suffix)
