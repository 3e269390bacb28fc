"""The outbound queue part of the store (RFC 5321 §4.5.4 retry, RFC 3461 DSN data).

A queue entry is one message (its envelope sender, the RFC 3461 envelope
parameters RET and ENVID, and the bytes) with one row per recipient: its state,
the number of attempts, when the next attempt is due, the last reply and the
RFC 3461 NOTIFY/ORCPT parameters. Every change is committed and fsynced
(the store's group commit) before the awaited call returns, so an entry is
durable before the submission server says `250`, and a recipient marked
delivered is never sent again after a crash.

Times are POSIX seconds given by the caller (the queue's clock), never read
here, so the policy above can be tested with a fake clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mailstack.errors import NotFound

T = TypeVar("T")

QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    id INTEGER PRIMARY KEY,
    mail_from TEXT NOT NULL,
    data BLOB NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    envid TEXT,
    ret TEXT,
    smtputf8 INTEGER NOT NULL DEFAULT 0,
    body TEXT
);
CREATE TABLE IF NOT EXISTS queue_recipients (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_reply TEXT NOT NULL DEFAULT '',
    notify TEXT,
    orcpt TEXT,
    delay_notified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_recipients_due ON queue_recipients (state, next_attempt);
CREATE INDEX IF NOT EXISTS queue_recipients_message ON queue_recipients (message_id);
"""

# Recipient states. A message leaves the queue when none of its recipients
# is QUEUED any more (the DSNs for the others were queued in the same commit).
QUEUED = "queued"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NewRecipient:
    """A recipient to queue, with its RFC 3461 §4.1/§4.2 parameters (as received)."""

    address: str
    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class NewEntry:
    """Everything `queue_add` needs: the envelope, the bytes and the deadlines."""

    mail_from: str
    recipients: Sequence[NewRecipient]
    data: bytes
    now: float
    expires: float
    envid: str | None = None
    ret: str | None = None
    smtputf8: bool = False
    body: str | None = None  # "8BITMIME" or "7BIT" (RFC 6152), None when not given


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    id: int
    address: str
    state: str
    attempts: int
    next_attempt: float
    last_reply: str
    notify: str | None
    orcpt: str | None
    delay_notified: bool

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: int
    mail_from: str
    created: float
    expires: float
    envid: str | None
    ret: str | None
    smtputf8: bool
    body: str | None
    size: int
    recipients: tuple[QueuedRecipient, ...]

    def pending(self) -> list[QueuedRecipient]:
        return [r for r in self.recipients if r.state == QUEUED]


@dataclass(frozen=True, slots=True)
class RecipientUpdate:
    """The outcome of one attempt for one recipient.

    ``state`` is QUEUED (try again at ``next_attempt``), DELIVERED or FAILED;
    ``counted`` says whether this was a delivery attempt (a DSN-only change,
    such as noting that a delay warning went out, is not).
    """

    recipient_id: int
    state: str
    next_attempt: float = 0.0
    last_reply: str = ""
    counted: bool = True
    delay_notified: bool = False


class QueueStore(Protocol):
    async def queue_add(self, entry: NewEntry) -> int: ...
    async def queue_get(self, entry_id: int) -> QueueEntry: ...
    async def queue_data(self, entry_id: int) -> bytes: ...
    async def queue_list(self) -> list[QueueEntry]: ...
    async def queue_due(self, now: float, limit: int = 1000) -> list[QueueEntry]: ...
    async def queue_next_due(self, after: float | None = None) -> float | None: ...
    async def queue_update(
        self, entry_id: int, updates: Sequence[RecipientUpdate], reports: Sequence[NewEntry] = ()
    ) -> list[int]: ...
    async def queue_retry(self, now: float, entry_id: int | None = None) -> int: ...
    async def queue_remove(self, entry_id: int) -> None: ...
    def queue_mark(self) -> int | None:
        """A version that moves whenever any process (the CLI's `queue retry`)
        made queued mail due before its time; None when it cannot be told."""
        ...


_ENTRY_COLUMNS = "id, mail_from, created, expires, envid, ret, smtputf8, body, length(data)"
_RECIPIENT_COLUMNS = (
    "id, message_id, address, state, attempts, next_attempt, last_reply, notify, orcpt,"
    " delay_notified"
)


def _insert(c: sqlite3.Connection, entry: NewEntry) -> int:
    cur = c.execute(
        "INSERT INTO queue_messages (mail_from, data, created, expires, envid, ret, smtputf8,"
        " body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.mail_from,
            entry.data,
            entry.now,
            entry.expires,
            entry.envid,
            entry.ret,
            int(entry.smtputf8),
            entry.body,
        ),
    )
    entry_id = cur.lastrowid
    assert entry_id is not None
    c.executemany(
        "INSERT INTO queue_recipients (message_id, address, state, next_attempt, notify, orcpt)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(entry_id, r.address, QUEUED, entry.now, r.notify, r.orcpt) for r in entry.recipients],
    )
    return entry_id


def _load(c: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[QueueEntry]:
    if not rows:
        return []
    ids = [row[0] for row in rows]
    recipients: dict[int, list[QueuedRecipient]] = {entry_id: [] for entry_id in ids}
    for start in range(0, len(ids), 500):  # far below SQLite's variable limit
        chunk = ids[start : start + 500]
        for r in c.execute(
            f"SELECT {_RECIPIENT_COLUMNS} FROM queue_recipients"
            f" WHERE message_id IN ({','.join('?' * len(chunk))}) ORDER BY id",
            chunk,
        ):
            recipients[r[1]].append(
                QueuedRecipient(r[0], r[2], r[3], r[4], r[5], r[6], r[7], r[8], bool(r[9]))
            )
    return [
        QueueEntry(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            bool(row[6]),
            row[7],
            row[8],
            tuple(recipients[row[0]]),
        )
        for row in rows
    ]


class SqliteQueueMixin:
    """Queue methods of SqliteStore, on its _read/_write primitives."""

    _read: Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]
    _write: Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]
    _queue_change: Callable[[], None]

    async def queue_add(self, entry: NewEntry) -> int:
        """Queue a message for its recipients; durable when this returns."""
        return await self._write(lambda c: _insert(c, entry))

    async def queue_get(self, entry_id: int) -> QueueEntry:
        def op(c: sqlite3.Connection) -> QueueEntry:
            rows = c.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM queue_messages WHERE id = ?", (entry_id,)
            ).fetchall()
            if not rows:
                raise NotFound(f"no queue entry {entry_id}")
            return _load(c, rows)[0]

        return await self._read(op)

    async def queue_data(self, entry_id: int) -> bytes:
        def op(c: sqlite3.Connection) -> bytes:
            row = c.execute("SELECT data FROM queue_messages WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                raise NotFound(f"no queue entry {entry_id}")
            return bytes(row[0])

        return await self._read(op)

    async def queue_list(self) -> list[QueueEntry]:
        return await self._read(
            lambda c: _load(
                c, c.execute(f"SELECT {_ENTRY_COLUMNS} FROM queue_messages ORDER BY id").fetchall()
            )
        )

    async def queue_due(self, now: float, limit: int = 1000) -> list[QueueEntry]:
        """Entries with at least one queued recipient due at ``now``, oldest first."""

        def op(c: sqlite3.Connection) -> list[QueueEntry]:
            rows = c.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM queue_messages WHERE id IN"
                " (SELECT message_id FROM queue_recipients WHERE state = ? AND next_attempt <= ?)"
                " ORDER BY id LIMIT ?",
                (QUEUED, now, limit),
            ).fetchall()
            return _load(c, rows)

        return await self._read(op)

    async def queue_next_due(self, after: float | None = None) -> float | None:
        """When the earliest queued recipient (due later than ``after``) is due;
        None when there is none."""
        return await self._read(
            lambda c: c.execute(
                "SELECT min(next_attempt) FROM queue_recipients WHERE state = ?"
                " AND next_attempt > ?",
                (QUEUED, float("-inf") if after is None else after),
            ).fetchone()[0]
        )

    async def queue_update(
        self, entry_id: int, updates: Sequence[RecipientUpdate], reports: Sequence[NewEntry] = ()
    ) -> list[int]:
        """Record attempt outcomes and queue the DSNs they cause, in one commit.

        When no recipient of the entry is left QUEUED the entry is removed.
        Returns the ids of the queued reports.
        """

        def op(c: sqlite3.Connection) -> list[int]:
            for u in updates:
                c.execute(
                    "UPDATE queue_recipients SET state = ?, next_attempt = ?, last_reply = ?,"
                    " attempts = attempts + ?, delay_notified = delay_notified OR ?"
                    " WHERE id = ? AND message_id = ?",
                    (
                        u.state,
                        u.next_attempt,
                        u.last_reply,
                        int(u.counted),
                        int(u.delay_notified),
                        u.recipient_id,
                        entry_id,
                    ),
                )
            report_ids = [_insert(c, report) for report in reports]
            left = c.execute(
                "SELECT count(*) FROM queue_recipients WHERE message_id = ? AND state = ?",
                (entry_id, QUEUED),
            ).fetchone()[0]
            if not left:
                c.execute("DELETE FROM queue_recipients WHERE message_id = ?", (entry_id,))
                c.execute("DELETE FROM queue_messages WHERE id = ?", (entry_id,))
            return report_ids

        return await self._write(op)

    async def queue_retry(self, now: float, entry_id: int | None = None) -> int:
        """Make queued recipients (of one entry, or all) due at ``now``; how many."""

        def op(c: sqlite3.Connection) -> int:
            if entry_id is None:
                cur = c.execute(
                    "UPDATE queue_recipients SET next_attempt = ? WHERE state = ?", (now, QUEUED)
                )
            else:
                if (
                    c.execute("SELECT 1 FROM queue_messages WHERE id = ?", (entry_id,)).fetchone()
                    is None
                ):
                    raise NotFound(f"no queue entry {entry_id}")
                cur = c.execute(
                    "UPDATE queue_recipients SET next_attempt = ? WHERE state = ?"
                    " AND message_id = ?",
                    (now, QUEUED, entry_id),
                )
            if cur.rowcount:
                self._queue_change()
            return cur.rowcount

        return await self._write(op)

    async def queue_remove(self, entry_id: int) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM queue_recipients WHERE message_id = ?", (entry_id,))
            if c.execute("DELETE FROM queue_messages WHERE id = ?", (entry_id,)).rowcount == 0:
                raise NotFound(f"no queue entry {entry_id}")

        return await self._write(op)
