"""Bearer tokens and mailbox ACLs in the PostgreSQL store (``contract.access``)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import asyncpg

from mailstack.errors import AlreadyExists, NotFound
from mailstack.store.access import TOKEN_TOUCH, acl_identifier, acl_rights, shared_rights
from mailstack.store.contract.access import SharedMailbox, Token
from mailstack.store.contract.directory import Account
from mailstack.store.postgres.counters import touch_mailbox
from mailstack.store.postgres.directory import ACCOUNT_COLUMNS, account_from_row
from mailstack.store.postgres.engine import PgEngine, Tx
from mailstack.store.postgres.mailboxes import MAILBOX_COLUMNS, mailbox_from_row, mailbox_row

_TOKEN_COLUMNS = "t.id, t.account_id, t.name, t.created, t.last_used"
_ACCOUNT = ", ".join(f"a.{name}" for name in ACCOUNT_COLUMNS.split(", "))


def _token(row: Any) -> Token:
    return Token(
        int(row[0]), int(row[1]), str(row[2]), float(row[3]),
        None if row[4] is None else float(row[4]),
    )


class AccessPart(PgEngine):
    async def token_add(self, account_id: int, name: str, digest: bytes) -> Token:
        now = time.time()

        async def op(t: Tx) -> Token:
            if await t.conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account_id) is None:
                raise NotFound("no such account")
            try:
                token_id = await t.conn.fetchval(
                    "INSERT INTO tokens (account_id, name, digest, created)"
                    " VALUES ($1, $2, $3, $4) RETURNING id",
                    account_id, name, digest, now,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists("a token with this secret exists") from None
            return Token(int(token_id), account_id, name, now, None)

        return await self._write(op)

    async def token_find(self, digest: bytes) -> tuple[Token, Account] | None:
        async def read(c: Any) -> Any:
            return await c.fetchrow(
                f"SELECT {_TOKEN_COLUMNS}, {_ACCOUNT} FROM tokens t"
                " JOIN accounts a ON a.id = t.account_id WHERE t.digest = $1",
                digest,
            )

        row = await self._read(read)
        if row is None:
            return None
        token = _token(row[:5])
        account = account_from_row(row[5:])
        now = time.time()
        before = token.last_used
        if token.last_used is None or now - token.last_used >= TOKEN_TOUCH:
            async def touch(t: Tx) -> None:
                await t.conn.execute("UPDATE tokens SET last_used = $1 WHERE id = $2", now,
                                     token.id)

            await self._write(touch)
            token = Token(token.id, token.account_id, token.name, token.created, now)
        return replace(token, used_before=before), account

    async def token_list(self, account_id: int | None = None) -> list[Token]:
        async def op(c: Any) -> list[Token]:
            sql = f"SELECT {_TOKEN_COLUMNS} FROM tokens t"
            if account_id is None:
                rows = await c.fetch(sql + " ORDER BY t.id")
            else:
                rows = await c.fetch(sql + " WHERE t.account_id = $1 ORDER BY t.id", account_id)
            return [_token(r) for r in rows]

        return await self._read(op)

    async def token_remove(self, token_id: int) -> bool:
        async def op(t: Tx) -> bool:
            gone = await t.conn.fetchval(
                "DELETE FROM tokens WHERE id = $1 RETURNING 1", token_id
            )
            return gone is not None

        return await self._write(op)

    async def acl_set(self, mailbox_id: int, identifier: str, rights: str) -> None:
        who, letters = acl_identifier(identifier), acl_rights(rights)

        async def op(t: Tx) -> None:
            c = t.conn
            if await mailbox_row(c, mailbox_id) is None:
                raise NotFound("no such mailbox")
            if letters:
                await c.execute(
                    "INSERT INTO acl VALUES ($1, $2, $3)"
                    " ON CONFLICT (mailbox_id, identifier) DO UPDATE SET rights = excluded.rights",
                    mailbox_id, who, letters,
                )
            elif await c.fetchval(
                "DELETE FROM acl WHERE mailbox_id = $1 AND identifier = $2 RETURNING 1",
                mailbox_id, who,
            ) is None:
                return
            await touch_mailbox(t, mailbox_id)
            # The account it is shared with sees a mailbox come or go.
            sharee = await c.fetchval("SELECT id FROM accounts WHERE address = $1", who)
            if sharee is not None:
                t.touch_account(int(sharee))

        await self._write(op)

    async def acl_get(self, mailbox_id: int) -> dict[str, str]:
        async def op(c: Any) -> dict[str, str]:
            rows = await c.fetch(
                "SELECT identifier, rights FROM acl WHERE mailbox_id = $1"
                ' ORDER BY identifier COLLATE "C"',
                mailbox_id,
            )
            return {str(r[0]): str(r[1]) for r in rows}

        return await self._read(op)

    async def acl_shared_with(self, address: str) -> list[SharedMailbox]:
        who = acl_identifier(address)
        columns = ", ".join(f"b.{name.strip()}" for name in MAILBOX_COLUMNS.split(","))

        async def op(c: Any) -> list[SharedMailbox]:
            rows = await c.fetch(
                f"SELECT {columns}, a.id, a.address, a.quota, a.used, acl.identifier, acl.rights"
                " FROM acl JOIN mailboxes b ON b.id = acl.mailbox_id"
                " JOIN accounts a ON a.id = b.account_id"
                " WHERE acl.identifier IN ($1, 'anyone') AND a.address != $1"
                ' ORDER BY a.address COLLATE "C", b.name COLLATE "C"',
                who,
            )
            return shared_rights(
                who,
                [
                    (
                        mailbox_from_row(row[:8], False),
                        Account(int(row[8]), str(row[9]), int(row[10]), int(row[11])),
                        str(row[12]), str(row[13]),
                    )
                    for row in rows
                ],
            )

        return await self._read(op)
