"""The mailbox part of the SQLite store: mailboxes, their status and
subscriptions (RFC 3501 §6.3, RFC 6154 special use)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from mailstack.errors import AlreadyExists, NotFound, StoreError
from mailstack.store.contract.messages import (
    Mailbox,
    MailboxStatus,
    MailboxSync,
    canonical_name,
    is_inbox,
)
from mailstack.store.sqlite.counters import next_id, next_modseq, touch_mailbox
from mailstack.store.sqlite.engine import Engine, WriteConnection
from mailstack.store.sqlite.messages import changes, copy_messages, unref_messages
from mailstack.store.sqltext import like_prefix

MAILBOX_COLUMNS = (
    "id, account_id, name, uidvalidity, uidnext, highest_modseq, special_use, sort_order"
)


def mailbox_from_row(row: tuple[Any, ...], subscribed: bool) -> Mailbox:
    return Mailbox(row[0], row[1], row[2], row[3], row[4], row[5], row[6], subscribed, row[7])


def _next_uidvalidity(c: sqlite3.Connection) -> int:
    # RFC 3501 §2.3.1.1: a name reused must get a new, greater UIDVALIDITY.
    row = c.execute("SELECT value FROM meta WHERE key = 'uidvalidity'").fetchone()
    value = max(int(time.time()), (row[0] + 1) if row else 1) & 0xFFFFFFFF or 1
    c.execute("INSERT OR REPLACE INTO meta VALUES ('uidvalidity', ?)", (value,))
    return value


def create_mailbox(
    c: WriteConnection, account_id: int, name: str, special_use: str | None
) -> Mailbox:
    if c.execute(
        "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, name)
    ).fetchone():
        raise AlreadyExists(f"mailbox {name} exists")
    uidvalidity = _next_uidvalidity(c)
    mailbox_id = next_id(c, "mailbox_id")
    modseq = next_modseq(c, account_id)
    c.execute(
        "INSERT INTO mailboxes (id, account_id, name, uidvalidity, highest_modseq, special_use,"
        " created_modseq, props_modseq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (mailbox_id, account_id, name, uidvalidity, modseq, special_use, modseq, modseq),
    )
    return Mailbox(mailbox_id, account_id, name, uidvalidity, 1, modseq, special_use, False)


def drop_mailbox(c: WriteConnection, mailbox_id: int) -> None:
    """Delete the mailbox and its messages, leaving tombstones of both."""
    account_id, created = c.execute(
        "SELECT account_id, created_modseq FROM mailboxes WHERE id = ?", (mailbox_id,)
    ).fetchone()
    (count,) = c.execute(
        "SELECT count(*) FROM messages WHERE mailbox_id = ?", (mailbox_id,)
    ).fetchone()
    modseq = next_modseq(c, account_id, count + 1)
    unref_messages(c, mailbox_id, None, modseq)
    c.execute(
        "INSERT OR REPLACE INTO mailbox_tombstones VALUES (?, ?, ?, ?)",
        (mailbox_id, account_id, created, modseq + count),
    )
    c.execute("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox_id,))
    c.execute("DELETE FROM acl WHERE mailbox_id = ?", (mailbox_id,))
    c.execute("DELETE FROM metadata WHERE mailbox_id = ?", (mailbox_id,))
    c.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))
    c.touch(mailbox_id)


def get_mailbox(c: sqlite3.Connection, account_id: int, name: str) -> Mailbox | None:
    name = canonical_name(name)
    row = c.execute(
        f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? AND name = ?",
        (account_id, name),
    ).fetchone()
    if row is None:
        return None
    subscribed = c.execute(
        "SELECT 1 FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name)
    ).fetchone()
    return mailbox_from_row(row, subscribed is not None)


def rename_mailbox(c: WriteConnection, source: Mailbox, new: str) -> None:
    """Rename a mailbox other than INBOX and its inferiors; each keeps its id."""
    account_id, old = source.account_id, source.name
    if get_mailbox(c, account_id, new) is not None or is_inbox(new):
        raise AlreadyExists(f"mailbox {new} exists")
    children = c.execute(
        "SELECT id, name FROM mailboxes WHERE account_id = ? AND name LIKE ? ESCAPE '\\'",
        (account_id, like_prefix(old + "/")),
    ).fetchall()
    for mailbox_id, name in [(source.id, old), *children]:
        renamed = new + name[len(old) :]
        if get_mailbox(c, account_id, renamed) is not None:
            raise AlreadyExists(f"mailbox {renamed} exists")
        # A renamed mailbox is a different mailbox for clients that
        # cached it by name: RFC 3501 lets UIDVALIDITY stay; we keep it.
        c.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (renamed, mailbox_id))
        c.execute(
            "UPDATE subscriptions SET name = ? WHERE account_id = ? AND name = ?",
            (renamed, account_id, name),
        )
        touch_mailbox(c, mailbox_id)


def subscription_changed(c: WriteConnection, account_id: int, name: str) -> None:
    """A subscription is a property of the mailbox of that name, if any."""
    row = c.execute(
        "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, name)
    ).fetchone()
    if row is not None:
        touch_mailbox(c, row[0])


def mailbox_row(c: sqlite3.Connection, mailbox_id: int) -> Mailbox | None:
    row = c.execute(
        f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?", (mailbox_id,)
    ).fetchone()
    if row is None:
        return None
    subscribed = c.execute(
        "SELECT 1 FROM subscriptions WHERE account_id = ? AND name = ?", (row[1], row[2])
    ).fetchone()
    return mailbox_from_row(row, subscribed is not None)


def _rename_inbox(c: WriteConnection, account_id: int, inbox: Mailbox, new: str) -> None:
    """RFC 3501 §6.3.5: renaming INBOX moves its messages to a new mailbox."""
    target = create_mailbox(c, account_id, new, None)
    uids = [
        r[0]
        for r in c.execute(
            "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (inbox.id,)
        )
    ]
    copy_messages(c, inbox.id, uids, target.id, move=True)


class MailboxesPart(Engine):
    async def mailbox_list(self, account_id: int) -> list[Mailbox]:
        def op(c: sqlite3.Connection) -> list[Mailbox]:
            subscribed = {
                r[0]
                for r in c.execute(
                    "SELECT name FROM subscriptions WHERE account_id = ?", (account_id,)
                )
            }
            rows = c.execute(
                f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? ORDER BY name",
                (account_id,),
            )
            return [mailbox_from_row(r, r[2] in subscribed) for r in rows]

        return await self._read(op)

    async def mailbox_get(self, account_id: int, name: str) -> Mailbox | None:
        return await self._read(lambda c: get_mailbox(c, account_id, name))

    async def mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        return await self._read(lambda c: mailbox_row(c, mailbox_id))

    async def mailbox_create(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        name = canonical_name(name)
        return await self._write(lambda c: create_mailbox(c, account_id, name, special_use))

    async def mailbox_delete(self, account_id: int, name: str) -> None:
        if is_inbox(name):
            raise StoreError("INBOX cannot be deleted")

        def op(c: WriteConnection) -> None:
            mailbox = get_mailbox(c, account_id, name)
            if mailbox is None:
                raise NotFound(f"no mailbox {name}")
            drop_mailbox(c, mailbox.id)

        await self._write(op)

    async def mailbox_rename(self, account_id: int, old: str, new: str) -> None:
        old, new = canonical_name(old), canonical_name(new)

        def op(c: WriteConnection) -> None:
            source = get_mailbox(c, account_id, old)
            if source is None:
                raise NotFound(f"no mailbox {old}")
            if old == "INBOX":
                if get_mailbox(c, account_id, new) is not None or is_inbox(new):
                    raise AlreadyExists(f"mailbox {new} exists")
                _rename_inbox(c, account_id, source, new)
                return
            rename_mailbox(c, source, new)

        await self._write(op)

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        def op(c: sqlite3.Connection) -> MailboxStatus:
            # The counts the schema's triggers keep (step 12): one row.
            row = c.execute(
                "SELECT messages, unseen, deleted, octets, uidnext, uidvalidity, highest_modseq"
                " FROM mailboxes WHERE id = ?",
                (mailbox_id,),
            ).fetchone()
            if row is None:
                raise NotFound("no such mailbox")
            return MailboxStatus(*row)

        return await self._read(op)

    async def mailbox_sync(self, mailbox_id: int, modseq: int) -> MailboxSync | None:
        def op(c: sqlite3.Connection) -> MailboxSync | None:
            row = c.execute(
                "SELECT highest_modseq, recent_uid FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if row is None:
                return None
            changed, vanished = changes(c, mailbox_id, modseq)
            return MailboxSync(int(row[0]), int(row[1]), changed, vanished)

        return await self._read(op)

    async def subscribe(self, account_id: int, name: str) -> None:
        name = canonical_name(name)
        def op(c: WriteConnection) -> None:
            if c.execute(
                "INSERT OR IGNORE INTO subscriptions VALUES (?, ?)", (account_id, name)
            ).rowcount:
                subscription_changed(c, account_id, name)

        await self._write(op)

    async def unsubscribe(self, account_id: int, name: str) -> None:
        name = canonical_name(name)

        def op(c: WriteConnection) -> None:
            cur = c.execute(
                "DELETE FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name)
            )
            if cur.rowcount == 0:
                raise NotFound(f"not subscribed to {name}")
            subscription_changed(c, account_id, name)

        await self._write(op)

    async def subscriptions(self, account_id: int) -> list[str]:
        return await self._read(
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name",
                    (account_id,),
                )
            ]
        )
