"""Per-account JSON records in the SQLite store (``contract.records``): a
destroyed record stays as its tombstone (data NULL) with its MODSEQ."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from mailstack.errors import NotFound
from mailstack.store.contract.accounts import Changes
from mailstack.store.contract.records import Record
from mailstack.store.paging import record_page
from mailstack.store.sqlite.counters import next_modseq
from mailstack.store.sqlite.engine import Engine, WriteConnection

_CHUNK = 500


def _record_state(c: sqlite3.Connection, account_id: int, kind: str) -> int:
    row = c.execute(
        "SELECT coalesce(max(modseq), 0) FROM records WHERE account_id = ? AND kind = ?",
        (account_id, kind),
    ).fetchone()
    return int(row[0])


class RecordsPart(Engine):
    async def record_create(self, account_id: int, kind: str, data: str) -> Record:
        def op(c: WriteConnection) -> Record:
            modseq = next_modseq(c, account_id)
            cur = c.execute(
                "INSERT INTO records (account_id, kind, data, created_modseq, modseq)"
                " VALUES (?, ?, ?, ?, ?)",
                (account_id, kind, data, modseq, modseq),
            )
            assert cur.lastrowid is not None
            return Record(cur.lastrowid, account_id, kind, data, modseq)

        return await self._write(op)

    async def record_update(self, account_id: int, kind: str, record_id: int, data: str) -> Record:
        def op(c: WriteConnection) -> Record:
            if c.execute(
                "SELECT 1 FROM records WHERE id = ? AND account_id = ? AND kind = ?"
                " AND data IS NOT NULL",
                (record_id, account_id, kind),
            ).fetchone() is None:
                raise NotFound(f"no {kind} record {record_id}")
            modseq = next_modseq(c, account_id)
            c.execute(
                "UPDATE records SET data = ?, modseq = ? WHERE id = ?", (data, modseq, record_id)
            )
            return Record(record_id, account_id, kind, data, modseq)

        return await self._write(op)

    async def record_destroy(self, account_id: int, kind: str, record_id: int) -> bool:
        def op(c: WriteConnection) -> bool:
            if c.execute(
                "SELECT 1 FROM records WHERE id = ? AND account_id = ? AND kind = ?"
                " AND data IS NOT NULL",
                (record_id, account_id, kind),
            ).fetchone() is None:
                return False
            modseq = next_modseq(c, account_id)
            c.execute(
                "UPDATE records SET data = NULL, modseq = ? WHERE id = ?", (modseq, record_id)
            )
            return True

        return await self._write(op)

    async def records(
        self, account_id: int, kind: str, ids: Sequence[int] | None = None
    ) -> list[Record]:
        def op(c: sqlite3.Connection) -> list[Record]:
            sql = (
                "SELECT id, account_id, kind, data, modseq FROM records"
                " WHERE account_id = ? AND kind = ? AND data IS NOT NULL"
            )
            if ids is None:
                return [Record(*r) for r in c.execute(sql + " ORDER BY id", (account_id, kind))]
            found: list[Record] = []
            wanted = sorted(set(ids))
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                found += [
                    Record(*r)
                    for r in c.execute(
                        sql + f" AND id IN ({','.join('?' * len(chunk))}) ORDER BY id",
                        (account_id, kind, *chunk),
                    )
                ]
            return found

        return await self._read(op)

    async def record_state(self, account_id: int, kind: str) -> int:
        return await self._read(lambda c: _record_state(c, account_id, kind))

    async def record_changes(
        self, account_id: int, kind: str, since: int, limit: int | None = None
    ) -> Changes | None:
        def op(c: sqlite3.Connection) -> Changes | None:
            row = c.execute("SELECT modseq FROM accounts WHERE id = ?", (account_id,)).fetchone()
            if row is None or since < 0 or since > row[0]:
                return None
            rows = c.execute(
                "SELECT id, created_modseq, modseq, data IS NOT NULL FROM records"
                " WHERE account_id = ? AND kind = ? AND modseq > ?",
                (account_id, kind, since),
            ).fetchall()
            return record_page(_record_state(c, account_id, kind), since, rows, limit)

        return await self._read(op)
