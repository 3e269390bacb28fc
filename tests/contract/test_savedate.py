"""Store contract: RFC 8514 save dates (``message_savedates``): when a
message came into its mailbox, by delivery, APPEND, COPY or MOVE."""

from __future__ import annotations

import asyncio
import datetime

from mailstack.store import DeliveryTarget

from support import append, deliver

RAW = b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n"
LONG_AGO = datetime.datetime(2001, 9, 9, 1, 46, 40, tzinfo=datetime.UTC)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def test_save_dates_of_append_delivery_copy_and_move(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "pw")
    inbox = await store.mailbox_get(account.id, "INBOX")
    await store.mailbox_create(account.id, "Kept")
    kept = await store.mailbox_get(account.id, "Kept")
    other = await store.account_add("alice@hamburger.edu", "pw")
    elsewhere = await store.mailbox_get(other.id, "INBOX")

    before = now()
    # APPEND with an old internal date: saved now all the same.
    old = await append(store, inbox.id, RAW, (), LONG_AGO)
    [(_box, delivered)] = await deliver(store, RAW, [DeliveryTarget(account.id)])
    saved = await store.message_savedates(inbox.id, [old, delivered, 999])
    assert set(saved) == {old, delivered}
    for when in saved.values():
        assert before - datetime.timedelta(seconds=1) <= when <= now()
    metas = {m.uid: m for m in await store.messages(inbox.id)}
    assert metas[old].internaldate == LONG_AGO

    await asyncio.sleep(0.05)
    [(_, copied)] = await store.copy(inbox.id, [old], kept.id)
    [(_, moved)] = await store.move(inbox.id, [delivered], kept.id)
    [(_, across)] = await store.move(kept.id, [copied], elsewhere.id)
    in_kept = await store.message_savedates(kept.id, [moved, copied])
    assert list(in_kept) == [moved]  # the copy moved on to alice
    # Saved anew: after the first save (RFC 8514 §3).
    assert in_kept[moved] > saved[delivered]
    assert (await store.message_savedates(elsewhere.id, [across]))[across] > saved[old]
    # The original stays as it was saved.
    assert (await store.message_savedates(inbox.id, [old]))[old] == saved[old]
    assert await store.message_savedates(inbox.id, []) == {}
