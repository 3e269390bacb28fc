"""The counters ids and MODSEQs come from (see ``contract.accounts``): one
change counter per account, whose values every message, mailbox and record
of the account gets as its MODSEQ; store-wide counters in ``meta`` for
email and mailbox ids, so that a deleted one's id is never given again; and
each mailbox's STATUS counts."""

from __future__ import annotations

from collections.abc import Iterable

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


def mailbox_modseq(c: WriteConnection, mailbox_id: int, count: int = 1) -> tuple[int, int]:
    """``next_modseq`` of the mailbox's account, in one statement: (the
    account's id, the first MODSEQ)."""
    row = c.execute(
        "UPDATE accounts SET modseq = modseq + ?"
        " WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?) RETURNING id, modseq",
        (count, mailbox_id),
    ).fetchone()
    if row is None:
        raise NotFound("no such mailbox")
    c.touch_account(row[0])
    return int(row[0]), int(row[1]) - count + 1


def mailbox_account(c: WriteConnection, mailbox_id: int) -> int:
    row = c.execute("SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
    if row is None:
        raise NotFound("no such mailbox")
    return int(row[0])


def bump_mailbox(c: WriteConnection, mailbox_id: int, count: int = 1) -> int:
    """Take ``count`` MODSEQs for changes of the mailbox's messages (its
    HIGHESTMODSEQ becomes the last); the first of them."""
    _account, first = mailbox_modseq(c, mailbox_id, count)
    c.execute(
        "UPDATE mailboxes SET highest_modseq = ? WHERE id = ?", (first + count - 1, mailbox_id)
    )
    c.touch(mailbox_id)
    return first


def touch_mailbox(c: WriteConnection, mailbox_id: int) -> int:
    """The mailbox's own properties changed (name, subscription, sort order,
    ACL): a MODSEQ for that."""
    _account, modseq = mailbox_modseq(c, mailbox_id)
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


def counts_of(messages: Iterable[tuple[str, int]]) -> tuple[int, int, int, int]:
    """(messages, octets, unseen, deleted) of (flags text, size) pairs: what
    they add to a mailbox's STATUS counts (schema step 12)."""
    n = octets = unseen = deleted = 0
    for flags, size in messages:
        names = flags.split()
        n += 1
        octets += size
        unseen += "\\Seen" not in names
        deleted += "\\Deleted" in names
    return n, octets, unseen, deleted


def count_messages(
    c: WriteConnection, mailbox_id: int, counts: tuple[int, int, int, int], sign: int = 1
) -> None:
    """Add (sign 1) or take away (sign -1) ``counts`` (``counts_of``) from
    the mailbox's STATUS counts."""
    if any(counts):
        n, octets, unseen, deleted = (sign * x for x in counts)
        c.execute(
            "UPDATE mailboxes SET messages = messages + ?, octets = octets + ?,"
            " unseen = unseen + ?, deleted = deleted + ? WHERE id = ?",
            (n, octets, unseen, deleted, mailbox_id),
        )
