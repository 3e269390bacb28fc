"""Store contract: the methods IMAP added (mailbox_sync, account_credentials)."""

from __future__ import annotations

from support import append

RAW = b"From: a@crepes.fr\r\nSubject: s\r\n\r\nbody\r\n"


async def test_mailbox_sync_snapshot(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "pw")
    inbox = await store.mailbox_get(account.id, "INBOX")
    uids = [await append(store, inbox.id, RAW) for _ in range(3)]
    first = await store.mailbox_sync(inbox.id, 0)
    assert [m.uid for m in first.changed] == uids and first.vanished == []
    assert first.recent_uid == 1
    assert first.highest_modseq == (await store.mailbox_by_id(inbox.id)).highest_modseq
    assert await store.claim_recent(inbox.id) == 1
    await store.store_flags(inbox.id, [uids[0]], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    await store.store_flags(inbox.id, [uids[1]], ["\\Seen"], "add")
    later = await store.mailbox_sync(inbox.id, first.highest_modseq)
    assert [m.uid for m in later.changed] == [uids[1]]
    assert later.changed[0].flags == {"\\Seen"}
    assert later.vanished == [uids[0]]
    assert later.recent_uid == uids[-1] + 1
    assert later.highest_modseq > first.highest_modseq
    nothing = await store.mailbox_sync(inbox.id, later.highest_modseq)
    assert nothing.changed == [] and nothing.vanished == []
    await store.mailbox_create(account.id, "Gone")
    gone = await store.mailbox_get(account.id, "Gone")
    await store.mailbox_delete(account.id, "Gone")
    assert await store.mailbox_sync(gone.id, 0) is None


async def test_account_credentials_follow_password_changes(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "pw")
    found, first_hash = await store.account_credentials("Bob@Hamburger.EDU")
    assert found == account and first_hash.startswith("$argon2id$")
    await store.set_password("bob@hamburger.edu", "new")
    _, second_hash = await store.account_credentials("bob@hamburger.edu")
    assert second_hash != first_hash
    await store.account_remove("bob@hamburger.edu")
    assert await store.account_credentials("bob@hamburger.edu") is None
