"""The mailbox part of the PostgreSQL store: mailboxes, their status and
subscriptions (RFC 3501 §6.3, RFC 6154 special use)."""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from mailstack.errors import AlreadyExists, NotFound, StoreError
from mailstack.store.contract.messages import (
    Mailbox,
    MailboxStatus,
    MailboxSync,
    canonical_name,
    is_inbox,
)
from mailstack.store.postgres.counters import next_modseq, touch_mailbox
from mailstack.store.postgres.engine import PgEngine, Tx
from mailstack.store.postgres.messages import _meta, copy_messages, unref_messages
from mailstack.store.sqltext import like_prefix

# mailbox_sync in one statement: the mailbox's row (kind 0: HIGHESTMODSEQ
# and the recent mark, in the uid and size columns), the messages changed
# after $2 (kind 1, the columns of messages._META) and the UIDs expunged
# after it (kind 2), each in UID order.
_SYNC = (
    "SELECT 0 AS kind, highest_modseq AS uid, NULL::text AS flags, NULL::text AS internaldate,"
    " recent_uid AS size, NULL::bigint AS modseq, NULL::bigint AS email_id,"
    " NULL::bigint AS thread_id FROM mailboxes WHERE id = $1"
    " UNION ALL SELECT 1, uid, flags, internaldate, size, modseq, email_id, thread_id"
    " FROM messages WHERE mailbox_id = $1 AND modseq > $2"
    " UNION ALL SELECT 2, uid, NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM expunged WHERE mailbox_id = $1 AND modseq > $2"
    " ORDER BY 1, 2"
)

MAILBOX_COLUMNS = (
    "id, account_id, name, uidvalidity, uidnext, highest_modseq, special_use, sort_order"
)


def mailbox_from_row(row: Any, subscribed: bool) -> Mailbox:
    return Mailbox(
        int(row[0]), int(row[1]), str(row[2]), int(row[3]), int(row[4]), int(row[5]),
        row[6], subscribed, int(row[7]),
    )


async def _next_uidvalidity(c: Any) -> int:
    # RFC 3501 §2.3.1.1: a name reused must get a new, greater UIDVALIDITY.
    # The upsert locks the row, so nodes creating mailboxes at once never
    # hand out one value twice.
    now = int(time.time())
    value = await c.fetchval(
        "INSERT INTO meta VALUES ('uidvalidity', $1) ON CONFLICT (key) DO UPDATE SET value ="
        " greatest($1, meta.value + 1) RETURNING value",
        now,
    )
    return int(value) & 0xFFFFFFFF or 1


async def create_mailbox(t: Tx, account_id: int, name: str, special_use: str | None) -> Mailbox:
    c = t.conn
    uidvalidity = await _next_uidvalidity(c)
    modseq = await next_modseq(t, account_id)
    try:
        mailbox_id = await c.fetchval(
            "INSERT INTO mailboxes (account_id, name, uidvalidity, highest_modseq,"
            " special_use, created_modseq, props_modseq)"
            " VALUES ($1, $2, $3, $4, $5, $4, $4) RETURNING id",
            account_id, name, uidvalidity, modseq, special_use,
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"mailbox {name} exists") from None
    return Mailbox(int(mailbox_id), account_id, name, uidvalidity, 1, modseq, special_use, False)


async def drop_mailbox(t: Tx, mailbox_id: int) -> None:
    """Delete the mailbox and its messages, leaving tombstones of both."""
    c = t.conn
    account_id, created, count = await c.fetchrow(
        "SELECT account_id, created_modseq,"
        " (SELECT count(*) FROM messages WHERE mailbox_id = $1) FROM mailboxes WHERE id = $1",
        mailbox_id,
    )
    modseq = await next_modseq(t, int(account_id), int(count) + 1)
    await unref_messages(c, mailbox_id, None, modseq)
    await c.execute(
        "INSERT INTO mailbox_tombstones VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (mailbox_id) DO UPDATE SET modseq = excluded.modseq",
        mailbox_id, account_id, created, modseq + int(count),
    )
    await c.execute("DELETE FROM expunged WHERE mailbox_id = $1", mailbox_id)
    await c.execute("DELETE FROM acl WHERE mailbox_id = $1", mailbox_id)
    await c.execute("DELETE FROM metadata WHERE mailbox_id = $1", mailbox_id)
    await c.execute("DELETE FROM mailboxes WHERE id = $1", mailbox_id)
    t.touch(mailbox_id)


# A mailbox's row and whether its name is subscribed, in one statement.
_MAILBOX_SUBSCRIBED = (
    f"SELECT {MAILBOX_COLUMNS}, EXISTS (SELECT 1 FROM subscriptions s"
    " WHERE s.account_id = mailboxes.account_id AND s.name = mailboxes.name) FROM mailboxes"
)


async def mailbox_row(c: Any, mailbox_id: int) -> Mailbox | None:
    """One statement: ``c`` may be the pool itself."""
    row = await c.fetchrow(_MAILBOX_SUBSCRIBED + " WHERE id = $1", mailbox_id)
    return None if row is None else mailbox_from_row(row, bool(row[8]))


async def rename_mailbox(t: Tx, source: Mailbox, new: str) -> None:
    """Rename a mailbox other than INBOX and its inferiors; each keeps its id."""
    c, account_id, old = t.conn, source.account_id, source.name
    if await get_mailbox(c, account_id, new) is not None or is_inbox(new):
        raise AlreadyExists(f"mailbox {new} exists")
    children = await c.fetch(
        "SELECT id, name FROM mailboxes WHERE account_id = $1 AND name LIKE $2",
        account_id, like_prefix(old + "/"),
    )
    for mailbox_id, name in [(source.id, old), *[(r[0], r[1]) for r in children]]:
        renamed = new + name[len(old) :]
        if await get_mailbox(c, account_id, renamed) is not None:
            raise AlreadyExists(f"mailbox {renamed} exists")
        # RFC 3501 lets UIDVALIDITY stay across a rename; we keep it.
        await c.execute("UPDATE mailboxes SET name = $1 WHERE id = $2", renamed, mailbox_id)
        await c.execute(
            "UPDATE subscriptions SET name = $1 WHERE account_id = $2 AND name = $3",
            renamed, account_id, name,
        )
        await touch_mailbox(t, int(mailbox_id))


async def subscription_changed(t: Tx, account_id: int, name: str) -> None:
    """A subscription is a property of the mailbox of that name, if any."""
    found = await t.conn.fetchval(
        "SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2", account_id, name
    )
    if found is not None:
        await touch_mailbox(t, int(found))


async def get_mailbox(c: Any, account_id: int, name: str) -> Mailbox | None:
    """One statement: ``c`` may be the pool itself."""
    name = canonical_name(name)
    row = await c.fetchrow(
        _MAILBOX_SUBSCRIBED + " WHERE account_id = $1 AND name = $2", account_id, name
    )
    return None if row is None else mailbox_from_row(row, bool(row[8]))


class MailboxesPart(PgEngine):
    async def mailbox_list(self, account_id: int) -> list[Mailbox]:
        async def op(c: Any) -> list[Mailbox]:
            subscribed = {
                r[0]
                for r in await c.fetch(
                    "SELECT name FROM subscriptions WHERE account_id = $1", account_id
                )
            }
            rows = await c.fetch(
                f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1"
                ' ORDER BY name COLLATE "C"',
                account_id,
            )
            return [mailbox_from_row(r, r[2] in subscribed) for r in rows]

        return await self._read(op)

    async def mailbox_get(self, account_id: int, name: str) -> Mailbox | None:
        async def op(c: Any) -> Mailbox | None:
            return await get_mailbox(c, account_id, name)

        return await self._read_one(op)

    async def mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        async def op(c: Any) -> Mailbox | None:
            return await mailbox_row(c, mailbox_id)

        return await self._read_one(op)

    async def mailbox_create(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        name = canonical_name(name)

        async def op(t: Tx) -> Mailbox:
            return await create_mailbox(t, account_id, name, special_use)

        return await self._write(op)

    async def mailbox_delete(self, account_id: int, name: str) -> None:
        if is_inbox(name):
            raise StoreError("INBOX cannot be deleted")

        async def op(t: Tx) -> None:
            mailbox = await get_mailbox(t.conn, account_id, name)
            if mailbox is None:
                raise NotFound(f"no mailbox {name}")
            await drop_mailbox(t, mailbox.id)

        await self._write(op)

    async def mailbox_rename(self, account_id: int, old: str, new: str) -> None:
        old, new = canonical_name(old), canonical_name(new)

        async def op(t: Tx) -> None:
            c = t.conn
            source = await get_mailbox(c, account_id, old)
            if source is None:
                raise NotFound(f"no mailbox {old}")
            if old == "INBOX":
                if await get_mailbox(c, account_id, new) is not None or is_inbox(new):
                    raise AlreadyExists(f"mailbox {new} exists")
                # RFC 3501 §6.3.5: renaming INBOX moves its messages to a new mailbox.
                target = await create_mailbox(t, account_id, new, None)
                uids = [
                    int(r[0]) for r in await c.fetch(
                        "SELECT uid FROM messages WHERE mailbox_id = $1 ORDER BY uid", source.id
                    )
                ]
                await copy_messages(t, source.id, uids, target.id, move=True)
                return
            await rename_mailbox(t, source, new)

        await self._write(op)

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        # The counts the schema's triggers keep (step 12): one row.
        rows = await self._read_rows(
            "SELECT messages, unseen, deleted, octets, uidnext, uidvalidity, highest_modseq"
            " FROM mailboxes WHERE id = $1",
            mailbox_id,
        )
        if not rows:
            raise NotFound("no such mailbox")
        return MailboxStatus(*map(int, rows[0]))

    async def mailbox_sync(self, mailbox_id: int, modseq: int) -> MailboxSync | None:
        # IMAP asks this after nearly every command: one statement (one
        # snapshot, one round trip) instead of a read transaction of three.
        rows = await self._read_rows(_SYNC, mailbox_id, modseq)
        if not rows or rows[0][0] != 0:
            return None
        head = rows[0]
        changed = [_meta(r[1:8]) for r in rows if r[0] == 1]
        vanished = [int(r[1]) for r in rows if r[0] == 2]
        return MailboxSync(int(head[1]), int(head[4]), changed, vanished)

    async def subscribe(self, account_id: int, name: str) -> None:
        name = canonical_name(name)

        async def op(t: Tx) -> None:
            added = await t.conn.fetchval(
                "INSERT INTO subscriptions VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
                account_id, name,
            )
            if added is not None:
                await subscription_changed(t, account_id, name)

        await self._write(op)

    async def unsubscribe(self, account_id: int, name: str) -> None:
        name = canonical_name(name)

        async def op(t: Tx) -> None:
            gone = await t.conn.fetch(
                "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2 RETURNING 1",
                account_id, name,
            )
            if not gone:
                raise NotFound(f"not subscribed to {name}")
            await subscription_changed(t, account_id, name)

        await self._write(op)

    async def subscriptions(self, account_id: int) -> list[str]:
        async def op(c: Any) -> list[str]:
            rows = await c.fetch(
                'SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name COLLATE "C"',
                account_id,
            )
            return [str(r[0]) for r in rows]

        return await self._read(op)
