"""The counters ids and MODSEQs come from (see ``contract.accounts``): one
change counter per account (a column of its row: taking values locks the
row until the commit, so every node's changes of one account get MODSEQs in
commit order), whose values every message, mailbox and record of the account
gets as its MODSEQ; email ids from the ``email_ids`` sequence."""

from __future__ import annotations

from typing import Any

from mailstack.errors import NotFound
from mailstack.store.postgres.engine import Tx


async def next_modseq(t: Tx, account_id: int, count: int = 1) -> int:
    """Take ``count`` values of the account's counter; the first of them."""
    last = await t.conn.fetchval(
        "UPDATE accounts SET modseq = modseq + $1 WHERE id = $2 RETURNING modseq",
        count, account_id,
    )
    if last is None:
        raise NotFound("no such account")
    t.touch_account(account_id)
    return int(last) - count + 1


async def mailbox_account(c: Any, mailbox_id: int) -> int:
    found = await c.fetchval("SELECT account_id FROM mailboxes WHERE id = $1", mailbox_id)
    if found is None:
        raise NotFound("no such mailbox")
    return int(found)


async def bump_mailbox(t: Tx, mailbox_id: int, count: int = 1) -> int:
    """Take ``count`` MODSEQs for changes of the mailbox's messages (its
    HIGHESTMODSEQ becomes the last); the first of them."""
    first = await next_modseq(t, await mailbox_account(t.conn, mailbox_id), count)
    await t.conn.execute(
        "UPDATE mailboxes SET highest_modseq = $1 WHERE id = $2", first + count - 1, mailbox_id
    )
    t.touch(mailbox_id)
    return first


async def touch_mailbox(t: Tx, mailbox_id: int) -> int:
    """The mailbox's own properties changed (name, subscription, sort order,
    ACL): a MODSEQ for that."""
    modseq = await next_modseq(t, await mailbox_account(t.conn, mailbox_id))
    await t.conn.execute(
        "UPDATE mailboxes SET props_modseq = $1 WHERE id = $2", modseq, mailbox_id
    )
    t.touch(mailbox_id)
    return modseq


async def next_email_ids(c: Any, count: int) -> list[int]:
    rows = await c.fetch("SELECT nextval('email_ids') FROM generate_series(1, $1)", count)
    return [int(r[0]) for r in rows]
