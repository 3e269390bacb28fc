"""Server and mailbox annotations in the PostgreSQL store
(``contract.metadata``, RFC 5464): one row per entry, keyed by mailbox (0:
the server), owner (the account of a ``/private/`` entry, 0 for
``/shared/``) and name."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from mailstack.errors import NotFound
from mailstack.store.contract.metadata import SERVER_ENTRIES, TooManyEntries, entry_owner
from mailstack.store.postgres.engine import PgEngine, Tx


class MetadataPart(PgEngine):
    async def metadata_get(self, mailbox_id: int, account_id: int) -> dict[str, bytes]:
        async def op(c: Any) -> dict[str, bytes]:
            rows = await c.fetch(
                "SELECT name, value FROM metadata"
                " WHERE mailbox_id = $1 AND owner_id IN (0, $2)",
                mailbox_id, account_id,
            )
            return {str(row[0]): bytes(row[1]) for row in rows}

        return await self._read(op)

    async def metadata_get_many(
        self, mailbox_ids: Collection[int], account_id: int
    ) -> dict[int, dict[str, bytes]]:
        wanted = sorted(set(mailbox_ids))

        async def op(c: Any) -> dict[int, dict[str, bytes]]:
            rows = await c.fetch(
                "SELECT mailbox_id, name, value FROM metadata"
                " WHERE mailbox_id = ANY($1::bigint[]) AND owner_id IN (0, $2)",
                wanted, account_id,
            )
            found: dict[int, dict[str, bytes]] = {}
            for row in rows:
                found.setdefault(int(row[0]), {})[str(row[1])] = bytes(row[2])
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

        async def op(t: Tx) -> None:
            c = t.conn
            owner = account_id
            if mailbox_id != SERVER_ENTRIES:
                found = await c.fetchval(
                    "SELECT account_id FROM mailboxes WHERE id = $1", mailbox_id
                )
                if found is None:
                    raise NotFound("no such mailbox")
                owner = int(found)
                t.touch(mailbox_id)
            for name, value in changes.items():
                if value is None:
                    await c.execute(
                        "DELETE FROM metadata"
                        " WHERE mailbox_id = $1 AND owner_id = $2 AND name = $3",
                        mailbox_id, entry_owner(name, account_id), name,
                    )
                else:
                    await c.execute(
                        "INSERT INTO metadata VALUES ($1, $2, $3, $4) ON CONFLICT"
                        " (mailbox_id, owner_id, name) DO UPDATE SET value = excluded.value",
                        mailbox_id, entry_owner(name, account_id), name, value,
                    )
            if max_entries is not None:
                count = await c.fetchval(
                    "SELECT count(*) FROM metadata WHERE mailbox_id = $1 AND owner_id IN (0, $2)",
                    mailbox_id, account_id,
                )
                if count > max_entries:
                    raise TooManyEntries(f"more than {max_entries} entries")
            t.touch_account(owner)

        await self._write(op)
