"""changes_since over SQLite: a few changes are read through the modseq
index, many by walking the mailbox; both give the same answer."""

from __future__ import annotations

import asyncio
from typing import Any

from mailstack.store.sqlite import SqliteStore
from mailstack.store.sqlite.messages import _FEW_CHANGES

from support import append


async def test_few_and_many_changes_read_alike(store: SqliteStore[Any]):
    await store.domain_add("example.test")
    account = await store.account_add("ann@example.test", "pw-ann-123")
    inbox = await store.mailbox_get(account.id, "INBOX")
    assert inbox is not None
    count = _FEW_CHANGES + 50
    raws = [b"Subject: m%d\r\n\r\nbody %d\r\n" % (n, n) for n in range(count)]
    for start in range(0, count, 100):
        await asyncio.gather(*(append(store, inbox.id, raw) for raw in raws[start : start + 100]))
    # Every message changed after MODSEQ 0: more than the index path takes.
    changed, vanished = await store.changes_since(inbox.id, 0)
    assert [m.uid for m in changed] == list(range(1, count + 1)) and vanished == []
    before = (await store.mailbox_by_id(inbox.id)).highest_modseq
    # A few changed after before, flagged out of UID order, one expunged.
    await store.store_flags(inbox.id, [900], ["\\Flagged"], "add")
    await store.store_flags(inbox.id, [7, 1000], ["\\Seen", "\\Deleted"], "add")
    await store.expunge(inbox.id, [1000])
    changed, vanished = await store.changes_since(inbox.id, before)
    assert [(m.uid, sorted(m.flags)) for m in changed] == [
        (7, ["\\Deleted", "\\Seen"]),
        (900, ["\\Flagged"]),
    ]
    assert vanished == [1000]
    # Many changed since 0 again: the walk gives the flags and the gap too.
    changed, _vanished = await store.changes_since(inbox.id, 0)
    assert len(changed) == count - 1 and 1000 not in {m.uid for m in changed}
    assert [m.uid for m in changed] == sorted(m.uid for m in changed)
    assert {m.uid: m.flags for m in changed}[900] == frozenset({"\\Flagged"})
