"""The counters ids and MODSEQs come from (see ``contract.accounts``): one
change counter per account, whose values every message, mailbox and record
of the account gets as its MODSEQ; and store-wide counters in ``meta`` for
email and mailbox ids, so that a deleted one's id is never given again."""

from __future__ import annotations

from mailstack.errors import NotFound
from mailstack.store.sqlite.engine import WriteConnection


def next_modseq(c: WriteConnection, account_id: int, count: int = 1) -> int:
    """Take ``count`` values of the account's counter; the first of them.
    The account's listeners wake after the commit."""
    row = c.execute(
        "UPDATE accounts SET modseq = modseq + ? WHERE id = ? RETURNING modseq",
        (count, account_id),
    ).fetchone()
    if row is None:
        raise NotFound("no such account")
    c.touch_account(account_id)
    return int(row[0]) - count + 1


def mailbox_account(c: WriteConnection, mailbox_id: int) -> int:
    row = c.execute("SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
    if row is None:
        raise NotFound("no such mailbox")
    return int(row[0])


def bump_mailbox(c: WriteConnection, mailbox_id: int, count: int = 1) -> int:
    """Take ``count`` MODSEQs for changes of the mailbox's messages (its
    HIGHESTMODSEQ becomes the last); the first of them."""
    first = next_modseq(c, mailbox_account(c, mailbox_id), count)
    c.execute(
        "UPDATE mailboxes SET highest_modseq = ? WHERE id = ?", (first + count - 1, mailbox_id)
    )
    c.touch(mailbox_id)
    return first


def touch_mailbox(c: WriteConnection, mailbox_id: int) -> int:
    """The mailbox's own properties changed (name, subscription, sort order,
    ACL): a MODSEQ for that."""
    modseq = next_modseq(c, mailbox_account(c, mailbox_id))
    c.execute("UPDATE mailboxes SET props_modseq = ? WHERE id = ?", (modseq, mailbox_id))
    c.touch(mailbox_id)
    return modseq


def next_id(c: WriteConnection, counter: str, count: int = 1) -> int:
    """Take ``count`` ids of a store-wide counter ('email_id', 'mailbox_id');
    the first of them."""
    row = c.execute(
        "UPDATE meta SET value = value + ? WHERE key = ? RETURNING value", (count, counter)
    ).fetchone()
    if row is None:
        c.execute("INSERT INTO meta VALUES (?, ?)", (counter, count))
        return 1
    return int(row[0]) - count + 1
