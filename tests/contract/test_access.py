"""Store contract: bearer tokens and mailbox ACLs (contract.access)."""

from __future__ import annotations

import hashlib

import pytest

from mailstack.errors import AlreadyExists, NotFound, StoreError


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def accounts(store):
    await store.domain_add("hamburger.edu")
    bob = await store.account_add("bob@hamburger.edu", "pw")
    alice = await store.account_add("alice@hamburger.edu", "pw")
    return bob, alice


async def test_tokens_are_found_by_digest_listed_and_removed(store):
    bob, alice = await accounts(store)
    first = await store.token_add(bob.id, "phone", digest("s1"))
    second = await store.token_add(alice.id, "laptop", digest("s2"))
    assert first.id != second.id and first.last_used is None and first.name == "phone"
    found = await store.token_find(digest("s1"))
    assert found is not None
    token, account = found
    assert token.id == first.id and account.address == "bob@hamburger.edu"
    assert token.last_used is not None and token.last_used >= first.created
    assert token.used_before is None  # never used before this find
    # Within a minute the time of use is not written again.
    again, _ = await store.token_find(digest("s1"))
    assert again.last_used == token.last_used
    assert again.used_before == token.last_used
    (listed,) = await store.token_list(bob.id)
    assert listed.id == first.id and listed.last_used == token.last_used
    assert [t.id for t in await store.token_list()] == [first.id, second.id]
    assert await store.token_find(digest("nope")) is None
    with pytest.raises(AlreadyExists):
        await store.token_add(alice.id, "dup", digest("s1"))
    with pytest.raises(NotFound):
        await store.token_add(999_999, "x", digest("s3"))
    assert await store.token_remove(first.id)
    assert not await store.token_remove(first.id)
    assert await store.token_find(digest("s1")) is None
    await store.account_remove("alice@hamburger.edu")
    assert await store.token_find(digest("s2")) is None


async def test_acl_set_get_and_shared_with_including_anyone(store):
    bob, alice = await accounts(store)
    carol = await store.account_add("carol@hamburger.edu", "pw")
    bobs_inbox = await store.mailbox_get(bob.id, "INBOX")
    bobs_sent = await store.mailbox_get(bob.id, "Sent")
    before = await store.account_state(bob.id)
    await store.acl_set(bobs_inbox.id, "Alice@Hamburger.EDU", "rl")
    assert await store.acl_get(bobs_inbox.id) == {"alice@hamburger.edu": "lr"}
    # An ACL change is a change of the mailbox's own properties.
    changes = await store.mailbox_changes(bob.id, before)
    assert changes.updated == [bobs_inbox.id] and not changes.counts_only
    await store.acl_set(bobs_sent.id, "anyone", "lr")
    await store.acl_set(bobs_sent.id, "alice@hamburger.edu", "lrsw")

    shared = {s.mailbox.id: s for s in await store.acl_shared_with("alice@hamburger.edu")}
    assert set(shared) == {bobs_inbox.id, bobs_sent.id}
    assert shared[bobs_inbox.id].rights == "lr"
    assert shared[bobs_sent.id].rights == "lrsw"  # her own entry wins over anyone's
    assert shared[bobs_sent.id].owner.address == "bob@hamburger.edu"
    assert shared[bobs_sent.id].mailbox.name == "Sent"
    for_carol = await store.acl_shared_with("carol@hamburger.edu")
    assert [(s.mailbox.id, s.rights) for s in for_carol] == [(bobs_sent.id, "lr")]
    # The owner's own mailboxes are not "shared with" him.
    assert await store.acl_shared_with("bob@hamburger.edu") == []
    assert carol.id  # carol has no entry of her own

    await store.acl_set(bobs_inbox.id, "alice@hamburger.edu", "")
    assert await store.acl_get(bobs_inbox.id) == {}
    with pytest.raises(StoreError):
        await store.acl_set(bobs_inbox.id, "alice@hamburger.edu", "lz")
    with pytest.raises(NotFound):
        await store.acl_set(999_999, "alice@hamburger.edu", "l")
    # A deleted mailbox takes its ACL with it; so does a removed account its entries.
    await store.mailbox_create(bob.id, "Temp")
    temp = await store.mailbox_get(bob.id, "Temp")
    await store.acl_set(temp.id, "alice@hamburger.edu", "l")
    await store.mailbox_delete(bob.id, "Temp")
    await store.account_remove("alice@hamburger.edu")
    assert await store.acl_get(bobs_sent.id) == {"anyone": "lr"}
    assert alice.id


async def test_acl_change_wakes_the_account_it_is_shared_with(store):
    bob, alice = await accounts(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    listener = store.listen_account(alice.id)
    try:
        await store.acl_set(inbox.id, "alice@hamburger.edu", "lr")
        assert await listener.wait(5)
    finally:
        listener.close()
