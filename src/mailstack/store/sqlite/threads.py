"""Threads, computed once when a message arrives (RFC 8621 §3; RFC 5256 §2.1
base subjects), with an index per account: ``thread_keys`` maps every
message id a message carries (its own Message-ID, and those of In-Reply-To
and References) with its base subject to its thread.

A new message joins the thread of an earlier message of the account when one
of its ids is one of the other's (it refers to the earlier one, the earlier
one refers to it, or both refer to the same message) and their base subjects
agree; else it starts a thread whose id is its own email id. A thread with
no email left is never joined again. A thread is never split or merged.
"""

from __future__ import annotations

import sqlite3

from mailstack.store.contract.messages import EmailKeys

# Ids of a message that go into the index: its own, the first of References
# (the thread's root) and the nearest ancestors; a long References field of
# a deep thread would otherwise cost a row per ancestor per message.
MAX_THREAD_KEYS = 20
# Octets of base subject kept in the index (the rest is never compared).
MAX_SUBJECT = 256


def thread_ids(keys: EmailKeys) -> list[str]:
    refs = list(keys.references)
    if len(refs) > MAX_THREAD_KEYS - 1:
        refs = refs[:1] + refs[-(MAX_THREAD_KEYS - 2) :]
    own = [keys.message_id] if keys.message_id else []
    return list(dict.fromkeys(own + refs))


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
        subject = keys.base_subject[:MAX_SUBJECT]
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
