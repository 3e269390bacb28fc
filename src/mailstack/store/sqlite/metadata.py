"""Server and mailbox annotations in the SQLite store (``contract.metadata``,
RFC 5464): one row per entry, keyed by mailbox (0: the server), owner (the
account of a ``/private/`` entry, 0 for ``/shared/``) and name."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping

from mailstack.errors import NotFound
from mailstack.store.contract.metadata import SERVER_ENTRIES, TooManyEntries, entry_owner
from mailstack.store.sqlite.engine import Engine, WriteConnection


class MetadataPart(Engine):
    async def metadata_get(self, mailbox_id: int, account_id: int) -> dict[str, bytes]:
        def op(c: sqlite3.Connection) -> dict[str, bytes]:
            rows = c.execute(
                "SELECT name, value FROM metadata WHERE mailbox_id = ? AND owner_id IN (0, ?)",
                (mailbox_id, account_id),
            ).fetchall()
            return {name: bytes(value) for name, value in rows}

        return await self._read(op)

    async def metadata_get_many(
        self, mailbox_ids: Collection[int], account_id: int
    ) -> dict[int, dict[str, bytes]]:
        wanted = json.dumps(sorted(set(mailbox_ids)))

        def op(c: sqlite3.Connection) -> dict[int, dict[str, bytes]]:
            rows = c.execute(
                "SELECT mailbox_id, name, value FROM metadata"
                " WHERE mailbox_id IN (SELECT value FROM json_each(?)) AND owner_id IN (0, ?)",
                (wanted, account_id),
            ).fetchall()
            found: dict[int, dict[str, bytes]] = {}
            for mailbox_id, name, value in rows:
                found.setdefault(int(mailbox_id), {})[name] = bytes(value)
            return found

        return await self._read(op)

    async def metadata_set(
        self,
        mailbox_id: int,
        account_id: int,
        entries: Mapping[str, bytes | None],
        *,
        max_entries: int | None = None,
    ) -> None:
        changes = dict(entries)

        def op(c: WriteConnection) -> None:
            owner = account_id
            if mailbox_id != SERVER_ENTRIES:
                row = c.execute(
                    "SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,)
                ).fetchone()
                if row is None:
                    raise NotFound("no such mailbox")
                owner = int(row[0])
                c.touch(mailbox_id)
            for name, value in changes.items():
                key = (mailbox_id, entry_owner(name, account_id), name)
                if value is None:
                    c.execute(
                        "DELETE FROM metadata WHERE mailbox_id = ? AND owner_id = ? AND name = ?",
                        key,
                    )
                else:
                    c.execute(
                        "INSERT INTO metadata VALUES (?, ?, ?, ?) ON CONFLICT"
                        " (mailbox_id, owner_id, name) DO UPDATE SET value = excluded.value",
                        (*key, value),
                    )
            if max_entries is not None:
                (count,) = c.execute(
                    "SELECT count(*) FROM metadata WHERE mailbox_id = ? AND owner_id IN (0, ?)",
                    (mailbox_id, account_id),
                ).fetchone()
                if count > max_entries:
                    raise TooManyEntries(f"more than {max_entries} entries")
            c.touch_account(owner)

        await self._write(op)
