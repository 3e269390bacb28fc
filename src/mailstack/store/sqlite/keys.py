"""The DKIM key part of the SQLite store (RFC 6376, RFC 8463)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from mailstack.errors import AlreadyExists, NotFound, StoreError
from mailstack.store.contract.keys import DkimKey, canonical_key
from mailstack.store.sqlite.engine import Engine, WriteConnection

_COLUMNS = "domain, selector, algorithm, private_key, public_key, created, active"


def _row(row: tuple[Any, ...]) -> DkimKey:
    domain, selector, algorithm, private_key, public_key, created, active = row
    return DkimKey(
        str(domain),
        str(selector),
        str(algorithm),
        bytes(private_key),
        str(public_key),
        int(created),
        bool(active),
    )


def insert_key(c: sqlite3.Connection, key: DkimKey) -> None:
    """Add one key inside the caller's transaction (``domain_create`` uses it too)."""
    try:
        c.execute(
            f"INSERT INTO dkim_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key.domain,
                key.selector,
                key.algorithm,
                key.private_key,
                key.public_key,
                key.created,
                int(key.active),
            ),
        )
    except sqlite3.IntegrityError:
        raise AlreadyExists(f"DKIM selector {key.selector} of {key.domain} exists") from None


class KeysPart(Engine):
    async def dkim_key_add(self, key: DkimKey) -> DkimKey:
        stored = canonical_key(key, key.created or int(time.time()))

        def op(c: WriteConnection) -> None:
            insert_key(c, stored)

        await self._write(op)
        return stored

    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        def op(c: sqlite3.Connection) -> list[DkimKey]:
            where = "WHERE domain = ?" if domain else ""
            args = (domain.lower().rstrip("."),) if domain else ()
            rows = c.execute(
                f"SELECT {_COLUMNS} FROM dkim_keys {where} "
                "ORDER BY domain, active DESC, created DESC, id DESC",
                args,
            ).fetchall()
            return [_row(row) for row in rows]

        return await self._read(op)

    async def dkim_active_keys(self, domain: str) -> list[DkimKey]:
        def op(c: sqlite3.Connection) -> list[DkimKey]:
            rows = c.execute(
                f"SELECT {_COLUMNS} FROM dkim_keys WHERE domain = ? AND active = 1 "
                "ORDER BY algorithm DESC, id",
                (domain.lower().rstrip("."),),
            ).fetchall()
            return [_row(row) for row in rows]

        return await self._read(op)

    async def dkim_rotate(self, domain: str, keys: Sequence[DkimKey]) -> list[DkimKey]:
        now = int(time.time())
        domain = domain.lower().rstrip(".")
        stored = [canonical_key(key, key.created or now) for key in keys]
        if any(key.domain != domain or not key.active for key in stored):
            raise StoreError("rotation adds active keys of the rotated domain only")

        def op(c: WriteConnection) -> None:
            c.execute("UPDATE dkim_keys SET active = 0 WHERE domain = ?", (domain,))
            for key in stored:
                insert_key(c, key)

        await self._write(op)
        return stored

    async def dkim_key_remove(self, domain: str, selector: str) -> None:
        def op(c: WriteConnection) -> None:
            cur = c.execute(
                "DELETE FROM dkim_keys WHERE domain = ? AND selector = ?",
                (domain.lower().rstrip("."), selector.lower()),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no DKIM selector {selector} for {domain}")

        await self._write(op)
