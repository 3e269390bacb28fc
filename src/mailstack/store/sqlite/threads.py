"""Threading new messages in the SQLite store (see ``store.threadkeys``)."""

from __future__ import annotations

import sqlite3

from mailstack.store.contract.messages import EmailKeys
from mailstack.store.threadkeys import thread_ids, thread_subject


class Threader:
    """Files the new emails of one write into threads; ``flush`` adds their
    ids to the index (one statement for all of them)."""

    def __init__(self, c: sqlite3.Connection) -> None:
        self.c = c
        self.pending: dict[tuple[int, str, str], int] = {}

    def thread(self, account_id: int, keys: EmailKeys, email_id: int) -> int:
        ids = thread_ids(keys)
        if not ids:
            return email_id
        subject = thread_subject(keys)
        found = [
            self.pending[key]
            for key in ((account_id, msg_id, subject) for msg_id in ids)
            if key in self.pending
        ]
        if not found:
            row = self.c.execute(
                "SELECT min(t.thread_id) FROM thread_keys t WHERE t.account_id = ?"
                f" AND t.subject = ? AND t.message_id IN ({','.join('?' * len(ids))})"
                " AND EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = t.thread_id)",
                (account_id, subject, *ids),
            ).fetchone()
            if row[0] is not None:
                found.append(int(row[0]))
        thread_id = min(found) if found else email_id
        for msg_id in ids:
            self.pending.setdefault((account_id, msg_id, subject), thread_id)
        return thread_id

    def flush(self) -> None:
        if self.pending:
            self.c.executemany(
                "INSERT OR IGNORE INTO thread_keys VALUES (?, ?, ?, ?)",
                [(*key, thread_id) for key, thread_id in self.pending.items()],
            )
            self.pending.clear()
