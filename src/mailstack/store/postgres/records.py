"""Per-account JSON records in the PostgreSQL store (``contract.records``):
a destroyed record stays as its tombstone (data NULL) with its MODSEQ."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailstack.errors import NotFound
from mailstack.store.contract.accounts import Changes
from mailstack.store.contract.records import Record
from mailstack.store.paging import record_page
from mailstack.store.postgres.counters import next_modseq
from mailstack.store.postgres.engine import PgEngine, Tx

_RECORD = "SELECT id, account_id, kind, data, modseq FROM records"
_ALIVE = " WHERE id = $1 AND account_id = $2 AND kind = $3 AND data IS NOT NULL"


def _record(row: Any) -> Record:
    return Record(int(row[0]), int(row[1]), str(row[2]), str(row[3]), int(row[4]))


async def _record_state(c: Any, account_id: int, kind: str) -> int:
    return int(await c.fetchval(
        "SELECT coalesce(max(modseq), 0) FROM records WHERE account_id = $1 AND kind = $2",
        account_id, kind,
    ))


class RecordsPart(PgEngine):
    async def record_create(self, account_id: int, kind: str, data: str) -> Record:
        async def op(t: Tx) -> Record:
            modseq = await next_modseq(t, account_id)
            record_id = await t.conn.fetchval(
                "INSERT INTO records (account_id, kind, data, created_modseq, modseq)"
                " VALUES ($1, $2, $3, $4, $4) RETURNING id",
                account_id, kind, data, modseq,
            )
            return Record(int(record_id), account_id, kind, data, modseq)

        return await self._write(op)

    async def record_update(self, account_id: int, kind: str, record_id: int, data: str) -> Record:
        async def op(t: Tx) -> Record:
            if await t.conn.fetchval("SELECT 1 FROM records" + _ALIVE, record_id, account_id,
                                     kind) is None:
                raise NotFound(f"no {kind} record {record_id}")
            modseq = await next_modseq(t, account_id)
            await t.conn.execute(
                "UPDATE records SET data = $1, modseq = $2 WHERE id = $3", data, modseq, record_id
            )
            return Record(record_id, account_id, kind, data, modseq)

        return await self._write(op)

    async def record_destroy(self, account_id: int, kind: str, record_id: int) -> bool:
        async def op(t: Tx) -> bool:
            if await t.conn.fetchval("SELECT 1 FROM records" + _ALIVE, record_id, account_id,
                                     kind) is None:
                return False
            modseq = await next_modseq(t, account_id)
            await t.conn.execute(
                "UPDATE records SET data = NULL, modseq = $1 WHERE id = $2", modseq, record_id
            )
            return True

        return await self._write(op)

    async def records(
        self, account_id: int, kind: str, ids: Sequence[int] | None = None
    ) -> list[Record]:
        async def op(c: Any) -> list[Record]:
            sql = _RECORD + " WHERE account_id = $1 AND kind = $2 AND data IS NOT NULL"
            if ids is None:
                rows = await c.fetch(sql + " ORDER BY id", account_id, kind)
            else:
                rows = await c.fetch(
                    sql + " AND id = ANY($3::bigint[]) ORDER BY id", account_id, kind, list(ids)
                )
            return [_record(r) for r in rows]

        return await self._read(op)

    async def record_state(self, account_id: int, kind: str) -> int:
        async def op(c: Any) -> int:
            return await _record_state(c, account_id, kind)

        return await self._read(op)

    async def record_changes(
        self, account_id: int, kind: str, since: int, limit: int | None = None
    ) -> Changes | None:
        async def op(c: Any) -> Changes | None:
            state = await c.fetchval("SELECT modseq FROM accounts WHERE id = $1", account_id)
            if state is None or since < 0 or since > state:
                return None
            rows = [
                (int(r[0]), int(r[1]), int(r[2]), bool(r[3]))
                for r in await c.fetch(
                    "SELECT id, created_modseq, modseq, data IS NOT NULL FROM records"
                    " WHERE account_id = $1 AND kind = $2 AND modseq > $3",
                    account_id, kind, since,
                )
            ]
            return record_page(await _record_state(c, account_id, kind), since, rows, limit)

        return await self._read(op)
