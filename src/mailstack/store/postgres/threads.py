"""Threading new messages in the PostgreSQL store (see ``store.threadkeys``):
the index rows a group of new messages may join are fetched in one round
trip (``prefetch``), their own rows added in one more (``flush``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mailstack.store.contract.messages import EmailKeys
from mailstack.store.threadkeys import thread_ids, thread_subject


class Threader:
    def __init__(self, c: Any) -> None:
        self.c = c
        self.known: dict[tuple[int, str, str], int] = {}
        self.pending: dict[tuple[int, str, str], int] = {}

    async def prefetch(self, wanted: Iterable[tuple[int, EmailKeys]]) -> None:
        """Read the index rows of these (account, keys): threads that still
        have an email."""
        accounts: list[int] = []
        ids: list[str] = []
        for account_id, keys in wanted:
            for msg_id in thread_ids(keys):
                accounts.append(account_id)
                ids.append(msg_id)
        if not ids:
            return
        for account_id, msg_id, subject, thread_id in await self.c.fetch(
            "SELECT t.account_id, t.message_id, t.subject, min(t.thread_id) FROM thread_keys t"
            " JOIN unnest($1::bigint[], $2::text[]) AS k(a, id)"
            " ON t.account_id = k.a AND t.message_id = k.id"
            " WHERE EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = t.thread_id)"
            " GROUP BY 1, 2, 3",
            accounts, ids,
        ):
            self.known[(int(account_id), msg_id, subject)] = int(thread_id)

    def thread(self, account_id: int, keys: EmailKeys, email_id: int) -> int:
        """The thread of a new email (after ``prefetch`` of its keys)."""
        ids = thread_ids(keys)
        if not ids:
            return email_id
        subject = thread_subject(keys)
        wanted = [(account_id, msg_id, subject) for msg_id in ids]
        found = [
            table[key] for table in (self.pending, self.known) for key in wanted if key in table
        ]
        thread_id = min(found) if found else email_id
        for key in wanted:
            self.pending.setdefault(key, thread_id)
        return thread_id

    async def flush(self) -> None:
        if not self.pending:
            return
        rows = list(self.pending.items())
        await self.c.execute(
            "INSERT INTO thread_keys SELECT * FROM"
            " unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) ON CONFLICT DO NOTHING",
            [key[0] for key, _ in rows], [key[1] for key, _ in rows],
            [key[2] for key, _ in rows], [thread_id for _, thread_id in rows],
        )
        self.pending.clear()
