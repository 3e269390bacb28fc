"""The DKIM key part of the PostgreSQL store (RFC 6376, RFC 8463)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from mailstack.errors import AlreadyExists, NotFound, StoreError
from mailstack.store.contract.keys import DkimKey, canonical_key
from mailstack.store.postgres.engine import PgEngine, Tx

_COLUMNS = "domain, selector, algorithm, private_key, public_key, created, active"


def _row(row: Any) -> DkimKey:
    domain, selector, algorithm, private_key, public_key, created, active = row
    return DkimKey(
        str(domain), str(selector), str(algorithm), bytes(private_key), str(public_key),
        int(created), bool(active),
    )


async def insert_key(c: Any, key: DkimKey) -> None:
    """Add one key inside the caller's transaction (``domain_create`` uses it too)."""
    try:
        await c.execute(
            f"INSERT INTO dkim_keys ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            key.domain, key.selector, key.algorithm, key.private_key, key.public_key,
            key.created, key.active,
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"DKIM selector {key.selector} of {key.domain} exists") from None


class KeysPart(PgEngine):
    async def dkim_key_add(self, key: DkimKey) -> DkimKey:
        stored = canonical_key(key, key.created or int(time.time()))

        async def op(t: Tx) -> None:
            await insert_key(t.conn, stored)

        await self._write(op)
        return stored

    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        order = " ORDER BY domain, active DESC, created DESC, id DESC"

        async def op(c: Any) -> list[DkimKey]:
            if domain:
                rows = await c.fetch(
                    f"SELECT {_COLUMNS} FROM dkim_keys WHERE domain = $1" + order,
                    domain.lower().rstrip("."),
                )
            else:
                rows = await c.fetch(f"SELECT {_COLUMNS} FROM dkim_keys" + order)
            return [_row(row) for row in rows]

        return await self._read(op)

    async def dkim_active_keys(self, domain: str) -> list[DkimKey]:
        async def op(c: Any) -> list[DkimKey]:
            rows = await c.fetch(
                f"SELECT {_COLUMNS} FROM dkim_keys WHERE domain = $1 AND active"
                " ORDER BY algorithm DESC, id",
                domain.lower().rstrip("."),
            )
            return [_row(row) for row in rows]

        return await self._read(op)

    async def dkim_rotate(self, domain: str, keys: Sequence[DkimKey]) -> list[DkimKey]:
        now = int(time.time())
        domain = domain.lower().rstrip(".")
        stored = [canonical_key(key, key.created or now) for key in keys]
        if any(key.domain != domain or not key.active for key in stored):
            raise StoreError("rotation adds active keys of the rotated domain only")

        async def op(t: Tx) -> None:
            await t.conn.execute("UPDATE dkim_keys SET active = false WHERE domain = $1", domain)
            for key in stored:
                await insert_key(t.conn, key)

        await self._write(op)
        return stored

    async def dkim_key_remove(self, domain: str, selector: str) -> None:
        async def op(t: Tx) -> None:
            gone = await t.conn.fetch(
                "DELETE FROM dkim_keys WHERE domain = $1 AND selector = $2 RETURNING 1",
                domain.lower().rstrip("."), selector.lower(),
            )
            if not gone:
                raise NotFound(f"no DKIM selector {selector} for {domain}")

        await self._write(op)
