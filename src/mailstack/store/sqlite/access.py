"""Bearer tokens and mailbox ACLs in the SQLite store (``contract.access``)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from typing import Any

from mailstack.errors import AlreadyExists, NotFound
from mailstack.store.access import TOKEN_TOUCH, acl_identifier, acl_rights, shared_rights
from mailstack.store.contract.access import SharedMailbox, Token
from mailstack.store.contract.directory import Account
from mailstack.store.sqlite.counters import touch_mailbox
from mailstack.store.sqlite.directory import ACCOUNT_COLUMNS, account_from_row
from mailstack.store.sqlite.engine import Engine, WriteConnection
from mailstack.store.sqlite.mailboxes import MAILBOX_COLUMNS, mailbox_from_row, mailbox_row

_TOKEN_COLUMNS = "t.id, t.account_id, t.name, t.created, t.last_used"
_ACCOUNT = ", ".join(f"a.{name}" for name in ACCOUNT_COLUMNS.split(", "))


def _token(row: tuple[Any, ...]) -> Token:
    return Token(*row)


class AccessPart(Engine):
    async def token_add(self, account_id: int, name: str, digest: bytes) -> Token:
        now = time.time()

        def op(c: WriteConnection) -> Token:
            if c.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
                raise NotFound("no such account")
            try:
                cur = c.execute(
                    "INSERT INTO tokens (account_id, name, digest, created) VALUES (?, ?, ?, ?)",
                    (account_id, name, digest, now),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists("a token with this secret exists") from None
            assert cur.lastrowid is not None
            return Token(cur.lastrowid, account_id, name, now, None)

        return await self._write(op)

    async def token_find(self, digest: bytes) -> tuple[Token, Account] | None:
        row = await self._read(
            lambda c: c.execute(
                f"SELECT {_TOKEN_COLUMNS}, {_ACCOUNT} FROM tokens t"
                " JOIN accounts a ON a.id = t.account_id WHERE t.digest = ?",
                (digest,),
            ).fetchone()
        )
        if row is None:
            return None
        token, account = _token(row[:5]), account_from_row(row[5:])
        now = time.time()
        before = token.last_used
        if token.last_used is None or now - token.last_used >= TOKEN_TOUCH:
            await self._write(
                lambda c: c.execute(
                    "UPDATE tokens SET last_used = ? WHERE id = ?", (now, token.id)
                )
            )
            token = Token(token.id, token.account_id, token.name, token.created, now)
        return replace(token, used_before=before), account

    async def token_list(self, account_id: int | None = None) -> list[Token]:
        sql = f"SELECT {_TOKEN_COLUMNS} FROM tokens t"
        args: tuple[int, ...] = ()
        if account_id is not None:
            sql += " WHERE t.account_id = ?"
            args = (account_id,)
        return await self._read(
            lambda c: [_token(r) for r in c.execute(sql + " ORDER BY t.id", args)]
        )

    async def token_remove(self, token_id: int) -> bool:
        return await self._write(
            lambda c: c.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount > 0
        )

    async def acl_set(self, mailbox_id: int, identifier: str, rights: str) -> None:
        who, letters = acl_identifier(identifier), acl_rights(rights)

        def op(c: WriteConnection) -> None:
            if mailbox_row(c, mailbox_id) is None:
                raise NotFound("no such mailbox")
            if letters:
                c.execute(
                    "INSERT OR REPLACE INTO acl VALUES (?, ?, ?)", (mailbox_id, who, letters)
                )
            elif not c.execute(
                "DELETE FROM acl WHERE mailbox_id = ? AND identifier = ?", (mailbox_id, who)
            ).rowcount:
                return
            touch_mailbox(c, mailbox_id)
            # The account it is shared with sees a mailbox come or go.
            sharee = c.execute("SELECT id FROM accounts WHERE address = ?", (who,)).fetchone()
            if sharee is not None:
                c.touch_account(sharee[0])

        await self._write(op)

    async def acl_get(self, mailbox_id: int) -> dict[str, str]:
        return await self._read(
            lambda c: dict(
                c.execute(
                    "SELECT identifier, rights FROM acl WHERE mailbox_id = ? ORDER BY identifier",
                    (mailbox_id,),
                ).fetchall()
            )
        )

    async def acl_shared_with(self, address: str) -> list[SharedMailbox]:
        who = acl_identifier(address)
        columns = ", ".join(f"b.{name.strip()}" for name in MAILBOX_COLUMNS.split(","))

        def op(c: sqlite3.Connection) -> list[SharedMailbox]:
            rows = c.execute(
                f"SELECT {columns}, a.id, a.address, a.quota, a.used, acl.identifier, acl.rights"
                " FROM acl JOIN mailboxes b ON b.id = acl.mailbox_id"
                " JOIN accounts a ON a.id = b.account_id"
                " WHERE acl.identifier IN (?, 'anyone') AND a.address != ?"
                " ORDER BY a.address, b.name",
                (who, who),
            ).fetchall()
            return shared_rights(
                who,
                [
                    (mailbox_from_row(row[:8], False), Account(*row[8:12]), row[12], row[13])
                    for row in rows
                ],
            )

        return await self._read(op)
