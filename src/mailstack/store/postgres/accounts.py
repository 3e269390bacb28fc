"""The account-wide part of the PostgreSQL store (``contract.accounts``):
the account's state, emails and threads by id, their changes since a state
(read from MODSEQs and tombstones, paged by ``store.paging``), mailbox
counts and JMAP mailbox updates."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
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
from mailstack.store.postgres.counters import touch_mailbox
from mailstack.store.postgres.engine import PgEngine, Tx
from mailstack.store.postgres.mailboxes import mailbox_row, rename_mailbox
from mailstack.store.sqltext import flags_set

_EMAIL_COLUMNS = (
    "m.email_id, m.thread_id, m.mailbox_id, m.uid, m.flags, m.internaldate, m.size, m.modseq"
)
_OF_ACCOUNT = "m.mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = $1)"
# RFC 8621 §2 unreadEmails: neither $seen nor $draft (IMAP \Seen, \Draft).
_UNREAD = (
    "(position(' \\Seen ' IN ' ' || m.flags || ' ') = 0"
    " AND position(' \\Draft ' IN ' ' || m.flags || ' ') = 0)"
)


def _email(row: Any) -> EmailMeta:
    email_id, thread_id, mailbox_id, uid, flags, internaldate, size, modseq = row
    return EmailMeta(
        int(email_id), int(thread_id), int(mailbox_id), int(uid), flags_set(flags),
        datetime.datetime.fromisoformat(internaldate), int(size), int(modseq),
    )


async def _valid(c: Any, account_id: int, since: int) -> int | None:
    """The account's state, when changes since ``since`` can be told."""
    state = await c.fetchval("SELECT modseq FROM accounts WHERE id = $1", account_id)
    return None if state is None or since < 0 or since > state else int(state)


async def _email_events(c: Any, account_id: int, since: int) -> list[EmailEvent]:
    rows = await c.fetch(
        "SELECT m.email_id, m.thread_id, m.created_modseq, m.modseq, true FROM messages m"
        f" WHERE {_OF_ACCOUNT} AND m.modseq > $2"
        " UNION ALL SELECT email_id, thread_id, created_modseq, modseq, false"
        " FROM email_tombstones WHERE account_id = $1 AND modseq > $2",
        account_id, since,
    )
    return [(int(r[0]), int(r[1]), int(r[2]), int(r[3]), bool(r[4])) for r in rows]


class AccountsPart(PgEngine):
    async def account_state(self, account_id: int) -> int:
        async def op(c: Any) -> int:
            state = await c.fetchval("SELECT modseq FROM accounts WHERE id = $1", account_id)
            if state is None:
                raise NotFound("no such account")
            return int(state)

        return await self._read(op)

    async def emails(self, account_id: int, mailbox_id: int | None = None) -> list[EmailMeta]:
        async def op(c: Any) -> list[EmailMeta]:
            sql = f"SELECT {_EMAIL_COLUMNS} FROM messages m WHERE {_OF_ACCOUNT}"
            if mailbox_id is None:
                rows = await c.fetch(sql + " ORDER BY m.email_id", account_id)
            else:
                rows = await c.fetch(
                    sql + " AND m.mailbox_id = $2 ORDER BY m.email_id", account_id, mailbox_id
                )
            return [_email(r) for r in rows]

        return await self._read(op)

    async def emails_by_id(self, account_id: int, email_ids: Sequence[int]) -> dict[int, EmailMeta]:
        async def op(c: Any) -> dict[int, EmailMeta]:
            rows = await c.fetch(
                f"SELECT {_EMAIL_COLUMNS} FROM messages m WHERE {_OF_ACCOUNT}"
                " AND m.email_id = ANY($2::bigint[])",
                account_id, list(email_ids),
            )
            return {int(r[0]): _email(r) for r in rows}

        return await self._read(op)

    async def thread_emails(
        self, account_id: int, thread_ids: Sequence[int]
    ) -> dict[int, list[EmailMeta]]:
        async def op(c: Any) -> dict[int, list[EmailMeta]]:
            found: dict[int, list[EmailMeta]] = {}
            for row in await c.fetch(
                f"SELECT {_EMAIL_COLUMNS} FROM messages m WHERE {_OF_ACCOUNT}"
                " AND m.thread_id = ANY($2::bigint[])",
                account_id, list(thread_ids),
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
        async def op(c: Any) -> Changes | None:
            state = await _valid(c, account_id, since)
            if state is None:
                return None
            return email_page(state, since, await _email_events(c, account_id, since), limit)

        return await self._read(op)

    async def thread_changes(
        self, account_id: int, since: int, limit: int | None = None
    ) -> Changes | None:
        async def op(c: Any) -> Changes | None:
            state = await _valid(c, account_id, since)
            if state is None:
                return None
            first, born = thread_firsts(since, await _email_events(c, account_id, since))
            alive = {
                int(r[0])
                for r in await c.fetch(
                    "SELECT DISTINCT thread_id FROM messages WHERE thread_id = ANY($1::bigint[])",
                    list(first),
                )
            }
            return thread_page(state, first, born, alive, limit)

        return await self._read(op)

    async def mailbox_changes(
        self, account_id: int, since: int, limit: int | None = None
    ) -> MailboxChanges | None:
        async def op(c: Any) -> MailboxChanges | None:
            state = await _valid(c, account_id, since)
            if state is None:
                return None
            mailboxes = [
                (int(r[0]), int(r[1]), int(r[2]), int(r[3]))
                for r in await c.fetch(
                    "SELECT id, created_modseq, props_modseq, highest_modseq FROM mailboxes"
                    " WHERE account_id = $1",
                    account_id,
                )
            ]
            tombstones = [
                (int(r[0]), int(r[1]), int(r[2]))
                for r in await c.fetch(
                    "SELECT mailbox_id, created_modseq, modseq FROM mailbox_tombstones"
                    " WHERE account_id = $1 AND modseq > $2",
                    account_id, since,
                )
            ]
            return mailbox_page(state, since, mailboxes, tombstones, limit)

        return await self._read(op)

    async def mailbox_counts(self, account_id: int) -> dict[int, MailboxCounts]:
        async def op(c: Any) -> dict[int, MailboxCounts]:
            rows = await c.fetch(
                "SELECT b.id, count(m.uid), count(m.uid) FILTER (WHERE " + _UNREAD + "),"
                " count(DISTINCT m.thread_id),"
                " count(DISTINCT m.thread_id) FILTER (WHERE " + _UNREAD + ")"
                " FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id"
                " WHERE b.account_id = $1 GROUP BY b.id",
                account_id,
            )
            return {int(r[0]): MailboxCounts(*(int(v) for v in r[1:])) for r in rows}

        return await self._read(op)

    async def mailbox_update(
        self,
        account_id: int,
        mailbox_id: int,
        *,
        name: str | None = None,
        sort_order: int | None = None,
    ) -> Mailbox:
        async def op(t: Tx) -> Mailbox:
            mailbox = await mailbox_row(t.conn, mailbox_id)
            if mailbox is None or mailbox.account_id != account_id:
                raise NotFound("no such mailbox")
            if name is not None and canonical_name(name) != mailbox.name:
                if mailbox.name == "INBOX":
                    # RFC 3501 §6.3.5: renaming INBOX makes a new mailbox;
                    # a mailbox updated in place keeps its id, so INBOX stays.
                    raise StoreError("INBOX cannot be renamed in place")
                await rename_mailbox(t, mailbox, canonical_name(name))
            if sort_order is not None and sort_order != mailbox.sort_order:
                await t.conn.execute(
                    "UPDATE mailboxes SET sort_order = $1 WHERE id = $2", sort_order, mailbox_id
                )
                await touch_mailbox(t, mailbox_id)
            updated = await mailbox_row(t.conn, mailbox_id)
            assert updated is not None
            return updated

        return await self._write(op)
