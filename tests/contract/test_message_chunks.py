"""Store contract: message_chunks, the bounded read behind streamed FETCH
BODY[] and POP3 RETR of big messages."""

from __future__ import annotations

import os

import pytest

from mailstack.errors import NotFound
from mailstack.store import DeliveryTarget

from support import append, deliver

PREFIX = b"Delivered-To: bob@hamburger.edu\r\n"


async def _collect(store, mailbox_id, uid, start=0, end=None):
    return [chunk async for chunk in store.message_chunks(mailbox_id, uid, start, end)]


async def test_chunks_join_to_the_message_and_are_bounded(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "hungry")
    inbox = await store.mailbox_get(account.id, "INBOX")
    # Random octets: a chunk boundary inside the prefix, the body, anywhere.
    raw = b"Subject: big\r\n\r\n" + os.urandom(1_000_003)
    [(_, uid)] = await deliver(store, raw, [DeliveryTarget(account.id, prefix=PREFIX)])
    whole = await store.message_bytes(inbox.id, uid)
    assert whole == PREFIX + raw

    chunks = await _collect(store, inbox.id, uid)
    assert b"".join(chunks) == whole
    assert len(chunks) > 2
    assert max(map(len, chunks)) <= 256 * 1024
    for start, end in [(0, 10), (5, len(PREFIX) + 7), (len(PREFIX), None), (999_000, None),
                       (300_000, 700_001), (len(whole) - 1, None), (len(whole), None),
                       (10, 10 ** 9)]:
        assert b"".join(await _collect(store, inbox.id, uid, start, end)) == whole[start:end]


async def test_chunks_of_a_message_without_prefix_and_of_none(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "hungry")
    inbox = await store.mailbox_get(account.id, "INBOX")
    uid = await append(store, inbox.id, b"Subject: small\r\n\r\nhi\r\n")
    assert await _collect(store, inbox.id, uid) == [b"Subject: small\r\n\r\nhi\r\n"]
    with pytest.raises(NotFound):
        await _collect(store, inbox.id, uid + 1)


async def test_an_expunge_between_chunks_ends_the_read(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "hungry")
    inbox = await store.mailbox_get(account.id, "INBOX")
    uid = await append(store, inbox.id, b"Subject: big\r\n\r\n" + b"x" * 600_000)
    chunks = store.message_chunks(inbox.id, uid)
    first = await anext(chunks)
    assert first.startswith(b"Subject: big")
    await store.expunge(inbox.id, [uid], require_deleted=False)
    # Another message may now hold the blob id; it is never read on.
    await append(store, inbox.id, b"Subject: secret\r\n\r\n" + b"s" * 600_000)
    with pytest.raises(NotFound):
        async for chunk in chunks:
            assert b"s" * 100 not in chunk
