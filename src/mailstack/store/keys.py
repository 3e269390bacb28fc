"""The signing-key part of the store: DKIM keys per domain and selector.

A key is a private key (PKCS#8 PEM), the public key as it goes into the
selector's TXT record (the ``p=`` value, RFC 6376 §3.6.1), an algorithm
(``rsa-sha256`` or ``ed25519-sha256``, RFC 8463) and whether it signs new
mail. Rotation retires the active keys and adds new ones in one transaction;
a retired key stays (its TXT record stays published) until it is removed, so
mail signed just before the rotation still verifies.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from mailstack.errors import AlreadyExists, NotFound, StoreError

T = TypeVar("T")

KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS dkim_keys (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key TEXT NOT NULL,
    created INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    UNIQUE (domain, selector)
);
CREATE INDEX IF NOT EXISTS dkim_keys_domain ON dkim_keys (domain, active);
"""

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    algorithm: str
    private_key: bytes
    public_key: str
    created: int = 0
    active: bool = True


class KeyStore(Protocol):
    async def dkim_key_add(self, key: DkimKey) -> DkimKey: ...
    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]: ...
    async def dkim_active_keys(self, domain: str) -> list[DkimKey]: ...
    async def dkim_rotate(self, domain: str, keys: Sequence[DkimKey]) -> list[DkimKey]: ...
    async def dkim_key_remove(self, domain: str, selector: str) -> None: ...


_COLUMNS = "domain, selector, algorithm, private_key, public_key, created, active"


def _row(row: tuple) -> DkimKey:  # type: ignore[type-arg]
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


def _canonical(key: DkimKey, created: int) -> DkimKey:
    if key.algorithm not in ALGORITHMS:
        raise StoreError(f"unknown DKIM algorithm {key.algorithm!r}")
    domain = key.domain.lower().rstrip(".")
    selector = key.selector.lower()
    if not domain or not selector:
        raise StoreError("a DKIM key needs a domain and a selector")
    return DkimKey(
        domain, selector, key.algorithm, key.private_key, key.public_key, created, key.active
    )


def _insert(c: sqlite3.Connection, key: DkimKey) -> None:
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


class SqliteKeysMixin:
    """DKIM key methods of SqliteStore, over its ``_read``/``_write`` primitives."""

    _read: Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]
    _write: Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]

    async def dkim_key_add(self, key: DkimKey) -> DkimKey:
        stored = _canonical(key, key.created or int(time.time()))

        def op(c: sqlite3.Connection) -> None:
            _insert(c, stored)

        await self._write(op)
        return stored

    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        """Every key (active first, newest first), of one domain or of all."""

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
        """The keys that sign new mail from ``domain`` (none: mail goes unsigned)."""

        def op(c: sqlite3.Connection) -> list[DkimKey]:
            rows = c.execute(
                f"SELECT {_COLUMNS} FROM dkim_keys WHERE domain = ? AND active = 1 "
                "ORDER BY algorithm DESC, id",
                (domain.lower().rstrip("."),),
            ).fetchall()
            return [_row(row) for row in rows]

        return await self._read(op)

    async def dkim_rotate(self, domain: str, keys: Sequence[DkimKey]) -> list[DkimKey]:
        """Retire the domain's active keys and add ``keys`` as active, atomically."""
        now = int(time.time())
        domain = domain.lower().rstrip(".")
        stored = [_canonical(key, key.created or now) for key in keys]
        if any(key.domain != domain or not key.active for key in stored):
            raise StoreError("rotation adds active keys of the rotated domain only")

        def op(c: sqlite3.Connection) -> None:
            c.execute("UPDATE dkim_keys SET active = 0 WHERE domain = ?", (domain,))
            for key in stored:
                _insert(c, key)

        await self._write(op)
        return stored

    async def dkim_key_remove(self, domain: str, selector: str) -> None:
        def op(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "DELETE FROM dkim_keys WHERE domain = ? AND selector = ?",
                (domain.lower().rstrip("."), selector.lower()),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no DKIM selector {selector} for {domain}")

        await self._write(op)
