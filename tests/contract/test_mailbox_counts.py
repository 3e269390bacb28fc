"""STATUS counts (MESSAGES, UNSEEN, DELETED, SIZE) are kept by the store as
messages come, change and go: after every kind of change, mailbox_status
agrees with a count of the mailbox's messages."""

from __future__ import annotations

from typing import Any

import pytest

from mailstack.errors import NotFound
from mailstack.store import DeliveryTarget

from support import append, deliver


def _raw(n: int) -> bytes:
    return b"From: a@example.test\r\nSubject: m%d\r\n\r\n%s\r\n" % (n, b"x" * (n * 37))


async def _agrees(store: Any, mailbox_id: int) -> tuple[int, int, int, int]:
    """mailbox_status's counts, checked against the messages listed."""
    metas = await store.messages(mailbox_id)
    status = await store.mailbox_status(mailbox_id)
    counted = (
        len(metas),
        sum("\\Seen" not in m.flags for m in metas),
        sum("\\Deleted" in m.flags for m in metas),
        sum(m.size for m in metas),
    )
    assert (status.messages, status.unseen, status.deleted, status.size) == counted
    return counted


async def test_counts_follow_every_change(store):
    await store.domain_add("example.test")
    account = await store.account_add("cat@example.test", "pw-cat-123")
    inbox = await store.mailbox_get(account.id, "INBOX")
    lists = await store.mailbox_create(account.id, "Lists")
    assert await _agrees(store, inbox.id) == (0, 0, 0, 0)
    for n in range(1, 6):
        await append(store, inbox.id, _raw(n), flags=["\\Seen"] if n % 2 else [])
    await deliver(store, _raw(9), [DeliveryTarget(account.id), DeliveryTarget(account.id, "Lists")])
    messages, unseen, deleted, size = await _agrees(store, inbox.id)
    assert (messages, unseen, deleted) == (6, 3, 0) and size > 0
    assert (await _agrees(store, lists.id))[:3] == (1, 1, 0)
    # Flags: add, remove, replace, on several messages at once.
    await store.store_flags(inbox.id, [1, 2, 3], ["\\Deleted"], "add")
    await store.store_flags(inbox.id, [1], ["\\Seen"], "remove")
    await store.store_flags(inbox.id, [2, 4], ["\\Seen", "$x"], "replace")
    await store.store_flags(inbox.id, [4], ["\\Seen"], "add")  # no change
    assert (await _agrees(store, inbox.id))[:3] == (6, 2, 2)
    # Expunge, copy and move.
    assert await store.expunge(inbox.id) == [1, 3]
    assert (await _agrees(store, inbox.id))[:3] == (4, 1, 0)
    await store.copy(inbox.id, [2, 5], lists.id)
    await store.move(inbox.id, [4, 6], lists.id)
    assert (await _agrees(store, inbox.id))[:3] == (2, 0, 0)
    assert (await _agrees(store, lists.id))[:3] == (5, 2, 0)
    # Renaming INBOX moves its messages to the new name; INBOX is left empty.
    await store.mailbox_rename(account.id, "INBOX", "Old")
    old = await store.mailbox_get(account.id, "Old")
    assert (await _agrees(store, old.id))[:3] == (2, 0, 0)
    inbox = await store.mailbox_get(account.id, "INBOX")
    assert await _agrees(store, inbox.id) == (0, 0, 0, 0)
    # A mailbox deleted and made again under its name starts from nothing.
    await store.mailbox_delete(account.id, "Lists")
    again = await store.mailbox_create(account.id, "Lists")
    assert await _agrees(store, again.id) == (0, 0, 0, 0)
    assert (await _agrees(store, old.id))[:3] == (2, 0, 0)
    with pytest.raises(NotFound):
        await store.mailbox_status(lists.id)  # the deleted one
