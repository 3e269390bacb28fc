"""Threading new messages in the SQLite store (see ``store.threadkeys``):
the index rows a group of new messages may join are read with one query
per account (``prefetch``), their own rows added with one statement
(``flush``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from mailstack.store.contract.messages import EmailKeys
from mailstack.store.threadkeys import thread_ids, thread_subject

# Message ids per lookup (SQLite's smallest variable limit is 999).
_CHUNK = 900


class Threader:
    def __init__(self, c: sqlite3.Connection) -> None:
        self.c = c
        self.known: dict[tuple[int, str, str], int] = {}
        self.pending: dict[tuple[int, str, str], int] = {}

    def prefetch(self, wanted: Iterable[tuple[int, EmailKeys]]) -> None:
        """Read the index rows of these (account, keys): threads that still
        have an email."""
        by_account: dict[int, set[str]] = {}
        for account_id, keys in wanted:
            if ids := thread_ids(keys):
                by_account.setdefault(account_id, set()).update(ids)
        for account_id, found in by_account.items():
            ids = sorted(found)
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                for msg_id, subject, thread_id in self.c.execute(
                    "SELECT t.message_id, t.subject, min(t.thread_id) FROM thread_keys t"
                    f" WHERE t.account_id = ? AND t.message_id IN ({','.join('?' * len(chunk))})"
                    " AND EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = t.thread_id)"
                    " GROUP BY t.message_id, t.subject",
                    (account_id, *chunk),
                ):
                    self.known[(account_id, msg_id, subject)] = thread_id

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

    def flush(self) -> None:
        if self.pending:
            self.c.executemany(
                "INSERT OR IGNORE INTO thread_keys VALUES (?, ?, ?, ?)",
                [(*key, thread_id) for key, thread_id in self.pending.items()],
            )
            self.pending.clear()
