"""Store contract: server and mailbox annotations (contract.metadata, RFC 5464)."""

from __future__ import annotations

import pytest

from mailstack.errors import NotFound
from mailstack.store import SERVER_ENTRIES, TooManyEntries


async def accounts(store):
    await store.domain_add("hamburger.edu")
    bob = await store.account_add("bob@hamburger.edu", "pw")
    alice = await store.account_add("alice@hamburger.edu", "pw")
    return bob, alice


async def test_private_and_shared_entries(store, other_store):
    bob, alice = await accounts(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    assert await store.metadata_get(inbox.id, bob.id) == {}
    await store.metadata_set(
        inbox.id, bob.id, {"/shared/comment": b"team inbox", "/private/comment": b"mine"}
    )
    await store.metadata_set(inbox.id, alice.id, {"/private/comment": b"alice's note"})
    assert await store.metadata_get(inbox.id, bob.id) == {
        "/shared/comment": b"team inbox", "/private/comment": b"mine",
    }
    # Another process sees the same; alice sees the shared entry and her own.
    assert await other_store.metadata_get(inbox.id, alice.id) == {
        "/shared/comment": b"team inbox", "/private/comment": b"alice's note",
    }
    # Values are octets, any of them; replacing and removing (None).
    await store.metadata_set(inbox.id, bob.id, {"/private/comment": b"\x00\xff\r\n"})
    await store.metadata_set(inbox.id, bob.id, {"/shared/comment": None, "/shared/x": None})
    assert await store.metadata_get(inbox.id, bob.id) == {"/private/comment": b"\x00\xff\r\n"}
    assert await store.metadata_get(inbox.id, alice.id) == {"/private/comment": b"alice's note"}


async def test_entries_of_several_mailboxes_in_one_read(store, other_store):
    bob, alice = await accounts(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    await store.mailbox_create(bob.id, "Work")
    await store.mailbox_create(bob.id, "Empty")
    work = await store.mailbox_get(bob.id, "Work")
    empty = await store.mailbox_get(bob.id, "Empty")
    await store.metadata_set(inbox.id, bob.id, {"/shared/a": b"1", "/private/b": b"2"})
    await store.metadata_set(work.id, alice.id, {"/private/c": b"alice's"})
    await store.metadata_set(work.id, bob.id, {"/private/c": b"bob's"})
    await store.metadata_set(SERVER_ENTRIES, bob.id, {"/private/s": b"server"})
    ids = [inbox.id, work.id, empty.id, inbox.id]
    assert await other_store.metadata_get_many(ids, bob.id) == {
        inbox.id: {"/shared/a": b"1", "/private/b": b"2"},
        work.id: {"/private/c": b"bob's"},
    }
    assert await store.metadata_get_many([work.id, inbox.id], alice.id) == {
        work.id: {"/private/c": b"alice's"}, inbox.id: {"/shared/a": b"1"},
    }
    assert await store.metadata_get_many([], bob.id) == {}
    # The same as metadata_get, one mailbox at a time.
    for box in (inbox, work):
        many = await store.metadata_get_many([box.id], bob.id)
        assert many[box.id] == await store.metadata_get(box.id, bob.id)


async def test_server_entries_are_apart_from_mailboxes(store):
    bob, alice = await accounts(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    await store.metadata_set(SERVER_ENTRIES, bob.id, {"/private/vendor/x/theme": b"dark"})
    await store.metadata_set(SERVER_ENTRIES, alice.id, {"/shared/comment": b"hello"})
    assert await store.metadata_get(SERVER_ENTRIES, bob.id) == {
        "/private/vendor/x/theme": b"dark", "/shared/comment": b"hello",
    }
    assert await store.metadata_get(SERVER_ENTRIES, alice.id) == {"/shared/comment": b"hello"}
    assert await store.metadata_get(inbox.id, bob.id) == {}


async def test_entries_follow_rename_and_go_with_the_mailbox(store):
    bob, alice = await accounts(store)
    await store.mailbox_create(bob.id, "Work")
    work = await store.mailbox_get(bob.id, "Work")
    await store.metadata_set(work.id, bob.id, {"/shared/comment": b"w", "/private/comment": b"p"})
    await store.mailbox_rename(bob.id, "Work", "Job")
    job = await store.mailbox_get(bob.id, "Job")
    assert await store.metadata_get(job.id, bob.id) == {
        "/shared/comment": b"w", "/private/comment": b"p",
    }
    await store.mailbox_delete(bob.id, "Job")
    await store.mailbox_create(bob.id, "Job")
    again = await store.mailbox_get(bob.id, "Job")
    assert await store.metadata_get(again.id, bob.id) == {}
    assert await store.metadata_get(job.id, bob.id) == {}
    with pytest.raises(NotFound):
        await store.metadata_set(job.id, bob.id, {"/shared/comment": b"x"})


async def test_removing_an_account_removes_its_private_entries(store):
    bob, alice = await accounts(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    await store.metadata_set(inbox.id, alice.id, {"/private/comment": b"a"})
    await store.metadata_set(SERVER_ENTRIES, alice.id, {"/private/comment": b"s"})
    await store.account_remove("alice@hamburger.edu")
    carol = await store.account_add("carol@hamburger.edu", "pw")
    assert await store.metadata_get(SERVER_ENTRIES, alice.id) == {}
    assert await store.metadata_get(inbox.id, alice.id) == {}
    assert await store.metadata_get(SERVER_ENTRIES, carol.id) == {}


async def test_too_many_entries_changes_nothing(store):
    bob, alice = await accounts(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    await store.metadata_set(inbox.id, bob.id, {"/private/a": b"1", "/shared/b": b"2"},
                             max_entries=3)
    with pytest.raises(TooManyEntries):
        await store.metadata_set(
            inbox.id, bob.id, {"/private/c": b"3", "/private/d": b"4", "/private/a": None},
            max_entries=2,
        )
    assert await store.metadata_get(inbox.id, bob.id) == {"/private/a": b"1", "/shared/b": b"2"}
    # Replacing a value or removing never counts against the limit.
    await store.metadata_set(inbox.id, bob.id, {"/private/a": b"new"}, max_entries=2)
    # Each user counts the entries they see: alice has room of her own.
    await store.metadata_set(inbox.id, alice.id, {"/private/c": b"3"}, max_entries=2)


async def test_changes_wake_listeners(store):
    """The hook for NOTIFY (RFC 5465): the mailbox's and the owner's listeners."""
    bob, alice = await accounts(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    mailbox = store.listen(inbox.id)
    owner = store.listen_account(bob.id)
    setter = store.listen_account(alice.id)
    await store.metadata_set(inbox.id, alice.id, {"/private/comment": b"x"})
    assert await mailbox.wait(1)
    assert await owner.wait(1)
    await store.metadata_set(SERVER_ENTRIES, alice.id, {"/private/comment": b"x"})
    assert await setter.wait(1)
    for listener in (mailbox, owner, setter):
        listener.close()
