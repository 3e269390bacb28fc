"""URLAUTH mailbox access keys (RFC 4467 §7) on every backend: kept in the
owner's records (imap/urls.py), one per mailbox, reset per mailbox or all."""

from __future__ import annotations

from mailstack.imap import urls


async def test_keys_per_mailbox_kept_and_reset(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "pw")
    inbox = await store.mailbox_get(account.id, "INBOX")
    later = await store.mailbox_create(account.id, "Later")
    assert await urls.mailbox_key(store, inbox) is None
    key = await urls.mailbox_key(store, inbox, create=True)
    assert key is not None and len(key) == 32
    assert await urls.mailbox_key(store, inbox, create=True) == key
    other = await urls.mailbox_key(store, later, create=True)
    assert other is not None and other != key
    await urls.reset_keys(store, account.id, inbox)
    assert await urls.mailbox_key(store, inbox) is None
    assert await urls.mailbox_key(store, later) == other
    fresh = await urls.mailbox_key(store, inbox, create=True)
    assert fresh not in (None, key)
    await urls.reset_keys(store, account.id)
    assert await store.records(account.id, urls.KEY_KIND) == []
