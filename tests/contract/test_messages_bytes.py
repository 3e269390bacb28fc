"""Store contract: messages_bytes, the batched read behind POP3's read-ahead."""

from __future__ import annotations

from mailstack.store import DeliveryTarget

from support import append, deliver


async def test_messages_bytes_returns_what_message_bytes_does(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "hungry")
    inbox = await store.mailbox_get(account.id, "INBOX")
    first = await append(store, inbox.id, b"Subject: one\r\n\r\n1\r\n")
    second = await append(store, inbox.id, b"Subject: two\r\n\r\n2\r\n")
    [(_, delivered)] = await deliver(
        store,
        b"Subject: three\r\n\r\n3\r\n",
        [DeliveryTarget(account.id, prefix=b"Delivered-To: bob@hamburger.edu\r\n")],
    )
    await store.expunge(inbox.id, [second], require_deleted=False)

    got = await store.messages_bytes(inbox.id, [delivered, first, second, 999])
    assert set(got) == {first, delivered}
    for uid in (first, delivered):
        assert got[uid] == await store.message_bytes(inbox.id, uid)
    assert got[delivered].startswith(b"Delivered-To: bob@hamburger.edu\r\nSubject: three")
    assert await store.messages_bytes(inbox.id, []) == {}
    # Long lists (past any backend's bound on query parameters) work too.
    many = await store.messages_bytes(inbox.id, [*range(1000, 2200), delivered])
    assert list(many) == [delivered]
