"""The account-wide part of the SQLite store (``contract.accounts``): the
account's state, emails and threads by id, their changes since a state
(read from MODSEQs and tombstones, paged by ``store.paging``), mailbox
counts and JMAP mailbox updates."""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from mailstack.errors import NotFound, StoreError
from mailstack.store.contract.accounts import Changes, EmailMeta, MailboxChanges, MailboxCounts
from mailstack.store.contract.messages import Mailbox, canonical_name
from mailstack.store.paging import (
    EmailEvent,
    email_page,
    mailbox_page,
    thread_firsts,
    thread_page,
)
from mailstack.store.sqlite.counters import touch_mailbox
from mailstack.store.sqlite.engine import Engine, WriteConnection
from mailstack.store.sqlite.mailboxes import mailbox_row, rename_mailbox
from mailstack.store.sqltext import flags_set

_EMAIL_COLUMNS = (
    "m.email_id, m.thread_id, m.mailbox_id, m.uid, m.flags, m.internaldate, m.size, m.modseq"
)
_OF_ACCOUNT = "m.mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?)"
# RFC 8621 §2 unreadEmails: neither $seen nor $draft (IMAP \Seen, \Draft).
_UNREAD = (
    "(instr(' ' || m.flags || ' ', ' \\Seen ') = 0"
    " AND instr(' ' || m.flags || ' ', ' \\Draft ') = 0)"
)
_CHUNK = 500


def _email(row: tuple[Any, ...]) -> EmailMeta:
    email_id, thread_id, mailbox_id, uid, flags, internaldate, size, modseq = row
    return EmailMeta(
        email_id, thread_id, mailbox_id, uid, flags_set(flags),
        datetime.datetime.fromisoformat(internaldate), size, modseq,
    )


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = sorted(set(ids))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def _state(c: sqlite3.Connection, account_id: int) -> int | None:
    row = c.execute("SELECT modseq FROM accounts WHERE id = ?", (account_id,)).fetchone()
    return None if row is None else int(row[0])


def _email_events(c: sqlite3.Connection, account_id: int, since: int) -> list[EmailEvent]:
    events: list[EmailEvent] = [
        (*row, True)
        for row in c.execute(
            "SELECT m.email_id, m.thread_id, m.created_modseq, m.modseq FROM messages m"
            f" WHERE {_OF_ACCOUNT} AND m.modseq > ?",
            (account_id, since),
        )
    ]
    events += [
        (*row, False)
        for row in c.execute(
            "SELECT email_id, thread_id, created_modseq, modseq FROM email_tombstones"
            " WHERE account_id = ? AND modseq > ?",
            (account_id, since),
        )
    ]
    return events


def _valid(c: sqlite3.Connection, account_id: int, since: int) -> int | None:
    """The account's state, when changes since ``since`` can be told."""
    state = _state(c, account_id)
    return None if state is None or since < 0 or since > state else state


def email_changes(
    c: sqlite3.Connection, account_id: int, since: int, limit: int | None
) -> Changes | None:
    state = _valid(c, account_id, since)
    if state is None:
        return None
    return email_page(state, since, _email_events(c, account_id, since), limit)


def thread_changes(
    c: sqlite3.Connection, account_id: int, since: int, limit: int | None
) -> Changes | None:
    state = _valid(c, account_id, since)
    if state is None:
        return None
    first, born = thread_firsts(since, _email_events(c, account_id, since))
    alive: set[int] = set()
    for chunk in _chunks(list(first)):
        alive.update(
            r[0]
            for r in c.execute(
                "SELECT DISTINCT thread_id FROM messages"
                f" WHERE thread_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
        )
    return thread_page(state, first, born, alive, limit)


def mailbox_changes(
    c: sqlite3.Connection, account_id: int, since: int, limit: int | None
) -> MailboxChanges | None:
    state = _valid(c, account_id, since)
    if state is None:
        return None
    mailboxes = c.execute(
        "SELECT id, created_modseq, props_modseq, highest_modseq FROM mailboxes"
        " WHERE account_id = ?",
        (account_id,),
    ).fetchall()
    tombstones = c.execute(
        "SELECT mailbox_id, created_modseq, modseq FROM mailbox_tombstones"
        " WHERE account_id = ? AND modseq > ?",
        (account_id, since),
    ).fetchall()
    return mailbox_page(state, since, mailboxes, tombstones, limit)


class AccountsPart(Engine):
    async def account_state(self, account_id: int) -> int:
        def op(c: sqlite3.Connection) -> int:
            state = _state(c, account_id)
            if state is None:
                raise NotFound("no such account")
            return state

        return await self._read(op)

    async def emails(self, account_id: int, mailbox_id: int | None = None) -> list[EmailMeta]:
        sql = f"SELECT {_EMAIL_COLUMNS} FROM messages m WHERE {_OF_ACCOUNT}"
        args: tuple[int, ...] = (account_id,)
        if mailbox_id is not None:
            sql += " AND m.mailbox_id = ?"
            args += (mailbox_id,)
        return await self._read(
            lambda c: [_email(r) for r in c.execute(sql + " ORDER BY m.email_id", args)]
        )

    async def emails_by_id(self, account_id: int, email_ids: Sequence[int]) -> dict[int, EmailMeta]:
        def op(c: sqlite3.Connection) -> dict[int, EmailMeta]:
            found: dict[int, EmailMeta] = {}
            for chunk in _chunks(email_ids):
                for row in c.execute(
                    f"SELECT {_EMAIL_COLUMNS} FROM messages m WHERE {_OF_ACCOUNT}"
                    f" AND m.email_id IN ({','.join('?' * len(chunk))})",
                    (account_id, *chunk),
                ):
                    found[row[0]] = _email(row)
            return found

        return await self._read(op)

    async def thread_emails(
        self, account_id: int, thread_ids: Sequence[int]
    ) -> dict[int, list[EmailMeta]]:
        def op(c: sqlite3.Connection) -> dict[int, list[EmailMeta]]:
            found: dict[int, list[EmailMeta]] = {}
            for chunk in _chunks(thread_ids):
                for row in c.execute(
                    f"SELECT {_EMAIL_COLUMNS} FROM messages m WHERE {_OF_ACCOUNT}"
                    f" AND m.thread_id IN ({','.join('?' * len(chunk))})",
                    (account_id, *chunk),
                ):
                    email = _email(row)
                    found.setdefault(email.thread_id, []).append(email)
            for emails in found.values():
                emails.sort(key=lambda e: (e.internaldate, e.email_id))
            return found

        return await self._read(op)

    async def email_changes(
        self, account_id: int, since: int, limit: int | None = None
    ) -> Changes | None:
        return await self._read(lambda c: email_changes(c, account_id, since, limit))

    async def thread_changes(
        self, account_id: int, since: int, limit: int | None = None
    ) -> Changes | None:
        return await self._read(lambda c: thread_changes(c, account_id, since, limit))

    async def mailbox_changes(
        self, account_id: int, since: int, limit: int | None = None
    ) -> MailboxChanges | None:
        return await self._read(lambda c: mailbox_changes(c, account_id, since, limit))

    async def mailbox_counts(self, account_id: int) -> dict[int, MailboxCounts]:
        def op(c: sqlite3.Connection) -> dict[int, MailboxCounts]:
            return {
                row[0]: MailboxCounts(*row[1:])
                for row in c.execute(
                    "SELECT b.id, count(m.uid),"
                    f" coalesce(sum(m.uid IS NOT NULL AND {_UNREAD}), 0),"
                    " count(DISTINCT m.thread_id),"
                    f" count(DISTINCT CASE WHEN {_UNREAD} THEN m.thread_id END)"
                    " FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id"
                    " WHERE b.account_id = ? GROUP BY b.id",
                    (account_id,),
                )
            }

        return await self._read(op)

    async def mailbox_update(
        self,
        account_id: int,
        mailbox_id: int,
        *,
        name: str | None = None,
        sort_order: int | None = None,
    ) -> Mailbox:
        def op(c: WriteConnection) -> Mailbox:
            mailbox = mailbox_row(c, mailbox_id)
            if mailbox is None or mailbox.account_id != account_id:
                raise NotFound("no such mailbox")
            if name is not None and canonical_name(name) != mailbox.name:
                if mailbox.name == "INBOX":
                    # RFC 3501 §6.3.5: renaming INBOX makes a new mailbox;
                    # a mailbox updated in place keeps its id, so INBOX stays.
                    raise StoreError("INBOX cannot be renamed in place")
                rename_mailbox(c, mailbox, canonical_name(name))
            if sort_order is not None and sort_order != mailbox.sort_order:
                c.execute(
                    "UPDATE mailboxes SET sort_order = ? WHERE id = ?", (sort_order, mailbox_id)
                )
                touch_mailbox(c, mailbox_id)
            updated = mailbox_row(c, mailbox_id)
            assert updated is not None
            return updated

        return await self._write(op)

