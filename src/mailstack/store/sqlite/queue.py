"""The outbound-queue part of the SQLite store (RFC 5321 §4.5.4, RFC 3461):
one row per message, one per recipient with its state and next attempt."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from mailstack.errors import NotFound
from mailstack.store.contract.queue import (
    HELD,
    QUEUED,
    NewEntry,
    QueuedRecipient,
    QueueEntry,
    RecipientUpdate,
)
from mailstack.store.sqlite.engine import Engine, WriteConnection

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


class QueuePart(Engine):
    async def queue_add(self, entry: NewEntry) -> int:
        return await self._write(lambda c: _insert(c, entry))

    async def new_run_number(self) -> int:
        def op(c: WriteConnection) -> int:
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('runs', 1)"
                " ON CONFLICT (key) DO UPDATE SET value = value + 1"
            )
            return int(c.execute("SELECT value FROM meta WHERE key = 'runs'").fetchone()[0])

        return await self._write(op)

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
        def op(c: WriteConnection) -> list[int]:
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
                "SELECT count(*) FROM queue_recipients WHERE message_id = ? AND state IN (?, ?)",
                (entry_id, QUEUED, HELD),
            ).fetchone()[0]
            if not left:
                c.execute("DELETE FROM queue_recipients WHERE message_id = ?", (entry_id,))
                c.execute("DELETE FROM queue_messages WHERE id = ?", (entry_id,))
            return report_ids

        return await self._write(op)

    async def queue_retry(self, now: float, entry_id: int | None = None) -> int:
        def op(c: WriteConnection) -> int:
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
                c.change_queue()
            return cur.rowcount

        return await self._write(op)

    async def queue_hold(self, entry_id: int, held: bool, now: float) -> int:
        before, after = (QUEUED, HELD) if held else (HELD, QUEUED)

        def op(c: WriteConnection) -> int:
            found = c.execute("SELECT 1 FROM queue_messages WHERE id = ?", (entry_id,)).fetchone()
            if found is None:
                raise NotFound(f"no queue entry {entry_id}")
            cur = c.execute(
                "UPDATE queue_recipients SET state = ?, next_attempt = ?"
                " WHERE message_id = ? AND state = ?",
                (after, now, entry_id, before),
            )
            if cur.rowcount and not held:
                c.change_queue()
            return cur.rowcount

        return await self._write(op)

    async def queue_remove(self, entry_id: int) -> None:
        def op(c: WriteConnection) -> None:
            c.execute("DELETE FROM queue_recipients WHERE message_id = ?", (entry_id,))
            if c.execute("DELETE FROM queue_messages WHERE id = ?", (entry_id,)).rowcount == 0:
                raise NotFound(f"no queue entry {entry_id}")

        return await self._write(op)
