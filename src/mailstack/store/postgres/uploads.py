"""JMAP uploads kept in PostgreSQL (RFC 8620 §6.1), so that every node
sharing the store sees a blob uploaded through any of them.

An upload is a row of ``uploads`` (its account, media type, size and time)
and its octets as rows of ``upload_chunks`` in order, written as they come
(memory holds one chunk, never the whole blob). The row is made when the
upload starts and counts only once ``upload_finish`` has committed (then the
upload is durable and is answered ``201``); an upload cut off midway is
removed by ``upload_abort`` or, if its node died, by the next sweep. The
numbers are random 62-bit values (one account cannot guess another's), and
a blob is only found under its own account.

On SQLite (one node) uploads stay files in the data directory
(``store.uploads``); only this backend has this part.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from mailstack.store.postgres.engine import PgEngine, Tx


class UploadsPart(PgEngine):
    async def upload_begin(self, account_id: int) -> int:
        """A new upload of the account, not yet visible; its number."""
        number = secrets.randbits(62) or 1

        async def op(t: Tx) -> None:
            await t.conn.execute(
                "INSERT INTO uploads (id, account_id, created) VALUES ($1, $2, $3)",
                number, account_id, time.time(),
            )

        await self._write(op)
        return number

    async def upload_append(self, number: int, seq: int, data: bytes) -> None:
        """The upload's chunk number ``seq`` (0, 1, ...)."""

        async def op(t: Tx) -> None:
            await t.conn.execute(
                "INSERT INTO upload_chunks (upload_id, seq, data) VALUES ($1, $2, $3)",
                number, seq, data,
            )

        await self._write(op)

    async def upload_finish(self, number: int, media_type: str, size: int) -> float:
        """The upload is whole and durable once this returns; its time."""

        async def op(t: Tx) -> float:
            return float(await t.conn.fetchval(
                "UPDATE uploads SET type = $2, size = $3, created = $4, complete = true"
                " WHERE id = $1 RETURNING created",
                number, media_type, size, time.time(),
            ))

        return await self._write(op)

    async def upload_abort(self, number: int) -> None:
        async def op(t: Tx) -> None:
            await t.conn.execute("DELETE FROM uploads WHERE id = $1", number)

        await self._write(op)

    async def upload_get(self, account_id: int, number: int) -> tuple[str, int, float] | None:
        """The account's whole upload: (media type, size, time it was made)."""

        async def op(c: Any) -> tuple[str, int, float] | None:
            row = await c.fetchrow(
                "SELECT type, size, created FROM uploads"
                " WHERE id = $1 AND account_id = $2 AND complete",
                number, account_id,
            )
            return None if row is None else (str(row[0]), int(row[1]), float(row[2]))

        return await self._read(op)

    async def upload_read(self, account_id: int, number: int) -> bytes:
        async def op(c: Any) -> bytes:
            rows = await c.fetch(
                "SELECT k.data FROM upload_chunks k JOIN uploads u ON u.id = k.upload_id"
                " WHERE u.id = $1 AND u.account_id = $2 AND u.complete ORDER BY k.seq",
                number, account_id,
            )
            return b"".join(bytes(r[0]) for r in rows)

        return await self._read(op)

    async def upload_sweep(self, older_than: float) -> int:
        """Remove the uploads (whole or cut off) made before ``older_than``
        (Unix time); how many went."""

        async def op(t: Tx) -> int:
            gone = await t.conn.fetch(
                "DELETE FROM uploads WHERE created < $1 RETURNING id", older_than
            )
            return len(gone)

        return await self._write(op)
