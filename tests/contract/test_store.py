"""The Store contract: every backend must pass this suite (the `store` fixture
gives the backend under test, see conftest.py). How a backend keeps one copy
of shared bytes is its own business: tests/unit/store checks SQLite's."""

from __future__ import annotations

import asyncio

import pytest

from mailstack.errors import AlreadyExists, NotFound, QuotaExceeded, StoreError
from mailstack.store import DEFAULT_MAILBOXES, DeliveryTarget

from support import append, deliver, deliver_some

RAW = (
    b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: ketchup\r\n\r\n"
    b"Do you like ketchup?\r\n"
)


async def bob(store):
    await store.domain_add("hamburger.edu")
    return await store.account_add("bob@hamburger.edu", "hungry")


async def test_domains(store):
    await store.domain_add("Hamburger.EDU")
    assert await store.domain_list() == ["hamburger.edu"]
    assert await store.is_local_domain("HAMBURGER.edu")
    with pytest.raises(AlreadyExists):
        await store.domain_add("hamburger.edu")
    await store.domain_remove("hamburger.edu")
    assert not await store.is_local_domain("hamburger.edu")
    with pytest.raises(NotFound):
        await store.domain_remove("hamburger.edu")


async def test_account_needs_local_domain_and_gets_special_use_mailboxes(store):
    with pytest.raises(NotFound):
        await store.account_add("bob@hamburger.edu", "hungry")
    account = await bob(store)
    boxes = {m.name: m.special_use for m in await store.mailbox_list(account.id)}
    assert boxes == dict(DEFAULT_MAILBOXES)
    with pytest.raises(AlreadyExists):
        await store.account_add("BOB@hamburger.edu", "x")
    with pytest.raises(StoreError):
        await store.domain_remove("hamburger.edu")


async def test_passwords_are_argon2id_and_verify(store):
    account = await bob(store)
    assert (await store.authenticate("bob@hamburger.edu", "hungry")).id == account.id
    assert await store.authenticate("bob@hamburger.edu", "wrong") is None
    assert await store.authenticate("nobody@hamburger.edu", "hungry") is None
    _, password_hash = await store.account_credentials("bob@hamburger.edu")
    assert password_hash.startswith("$argon2id$")
    await store.set_password("bob@hamburger.edu", "thirsty")
    assert await store.authenticate("bob@hamburger.edu", "hungry") is None
    assert await store.authenticate("bob@hamburger.edu", "thirsty") is not None


async def test_resolve_recipient_aliases_subaddress_catchall(store):
    account = await bob(store)
    ids = lambda accounts: [a.id for a in accounts]  # noqa: E731
    assert ids(await store.resolve_recipient("Bob@Hamburger.edu")) == [account.id]
    assert ids(await store.resolve_recipient("bob+ketchup@hamburger.edu")) == [account.id]
    assert await store.resolve_recipient("alice@hamburger.edu") == []
    await store.alias_add("postmaster@hamburger.edu", "bob@hamburger.edu")
    assert ids(await store.resolve_recipient("postmaster@hamburger.edu")) == [account.id]
    await store.alias_add("@hamburger.edu", "bob@hamburger.edu")
    assert ids(await store.resolve_recipient("anyone@hamburger.edu")) == [account.id]
    with pytest.raises(StoreError):
        await store.alias_add("x@hamburger.edu", "someone@elsewhere.example")
    await store.alias_remove("@hamburger.edu")
    assert await store.resolve_recipient("anyone@hamburger.edu") == []
    # A loop of aliases ends.
    await store.alias_add("a@hamburger.edu", "b@hamburger.edu")
    await store.alias_add("b@hamburger.edu", "a@hamburger.edu")
    assert await store.resolve_recipient("a@hamburger.edu") == []


async def test_deliver_stores_bytes_once_for_all_recipients(store):
    b = await bob(store)
    alice = await store.account_add("alice@hamburger.edu", "x")
    placed = await deliver(
        store,
        RAW,
        [
            DeliveryTarget(b.id, prefix=b"Delivered-To: bob@hamburger.edu\r\n"),
            DeliveryTarget(alice.id, prefix=b"Delivered-To: alice@hamburger.edu\r\n"),
        ],
    )
    assert len(placed) == 2
    (mailbox_id, uid) = placed[0]
    data = await store.message_bytes(mailbox_id, uid)
    assert data == b"Delivered-To: bob@hamburger.edu\r\n" + RAW
    parsed = await store.message_parsed(mailbox_id, uid)
    assert parsed.size == len(data)
    meta = (await store.messages(mailbox_id))[0]
    assert meta.size == len(data) and meta.uid == uid and meta.flags == frozenset()


async def test_uids_ascend_and_are_never_reused(store):
    account = await bob(store)
    inbox = await store.mailbox_get(account.id, "inbox")
    uids = [await append(store, inbox.id, RAW) for _ in range(3)]
    assert uids == sorted(uids) and len(set(uids)) == 3
    await store.store_flags(inbox.id, [uids[-1]], ["\\Deleted"], "add")
    assert await store.expunge(inbox.id) == [uids[-1]]
    new_uid = await append(store, inbox.id, RAW)
    assert new_uid > uids[-1]
    assert (await store.mailbox_get(account.id, "INBOX")).uidnext == new_uid + 1


async def test_uidvalidity_changes_when_a_name_is_reused(store):
    account = await bob(store)
    first = await store.mailbox_create(account.id, "Lists")
    await store.mailbox_delete(account.id, "Lists")
    second = await store.mailbox_create(account.id, "Lists")
    assert second.uidvalidity > first.uidvalidity
    with pytest.raises(AlreadyExists):
        await store.mailbox_create(account.id, "Lists")
    with pytest.raises(StoreError):
        await store.mailbox_delete(account.id, "INBOX")


async def test_flags_modseq_and_condstore(store):
    account = await bob(store)
    inbox = await store.mailbox_get(account.id, "INBOX")
    uid = await append(store, inbox.id, RAW, flags=["\\Seen"])
    before = (await store.messages(inbox.id))[0].modseq
    result = await store.store_flags(inbox.id, [uid], ["\\Flagged", "$label1"], "add")
    assert result.changed[0].flags == {"\\Seen", "\\Flagged", "$label1"}
    assert result.changed[0].modseq > before
    # No change, no new MODSEQ.
    again = await store.store_flags(inbox.id, [uid], ["\\Flagged"], "add")
    assert again.changed == []
    stale = await store.store_flags(inbox.id, [uid], ["\\Seen"], "remove", unchanged_since=before)
    assert stale.modified == [uid] and stale.changed == []
    replaced = await store.store_flags(inbox.id, [uid], ["\\Answered"], "replace")
    assert replaced.changed[0].flags == {"\\Answered"}
    status = await store.mailbox_status(inbox.id)
    assert (
        status.messages == 1
        and status.unseen == 1
        and status.highest_modseq >= replaced.changed[0].modseq
    )


async def test_expunged_uids_are_remembered_with_modseq(store):
    account = await bob(store)
    inbox = await store.mailbox_get(account.id, "INBOX")
    uids = [await append(store, inbox.id, RAW) for _ in range(3)]
    mark = (await store.mailbox_get(account.id, "INBOX")).highest_modseq
    await store.store_flags(inbox.id, uids[:2], ["\\Deleted"], "add")
    assert await store.expunge(inbox.id, [uids[0]]) == [uids[0]]
    changed, vanished = await store.changes_since(inbox.id, mark)
    assert vanished == [uids[0]]
    assert [m.uid for m in changed] == [uids[1]]
    # POP3 deletes without the flag.
    assert await store.expunge(inbox.id, [uids[2]], require_deleted=False) == [uids[2]]


async def test_copy_and_move_share_bytes(store):
    account = await bob(store)
    inbox = await store.mailbox_get(account.id, "INBOX")
    archive = await store.mailbox_get(account.id, "Archive")
    uid = await append(store, inbox.id, RAW, flags=["\\Seen"])
    [(src, dst)] = await store.copy(inbox.id, [uid], archive.id)
    assert src == uid
    assert await store.message_bytes(archive.id, dst) == RAW
    assert (await store.messages(archive.id))[0].flags == {"\\Seen"}
    [(src, moved)] = await store.move(inbox.id, [uid], archive.id)
    assert await store.messages(inbox.id) == []
    assert moved > dst
    with pytest.raises(NotFound):
        await store.message_bytes(inbox.id, uid)


async def test_rename_moves_children_and_inbox_rename_empties_inbox(store):
    account = await bob(store)
    await store.mailbox_create(account.id, "Work")
    await store.mailbox_create(account.id, "Work/2026")
    await store.mailbox_rename(account.id, "Work", "Job")
    names = {m.name for m in await store.mailbox_list(account.id)}
    assert {"Job", "Job/2026"} <= names and "Work" not in names
    inbox = await store.mailbox_get(account.id, "INBOX")
    await append(store, inbox.id, RAW)
    await store.mailbox_rename(account.id, "INBOX", "Old")
    old = await store.mailbox_get(account.id, "Old")
    assert len(await store.messages(old.id)) == 1
    assert await store.messages(inbox.id) == []


async def test_subscriptions(store):
    account = await bob(store)
    await store.subscribe(account.id, "Lists/python")  # may name a mailbox that does not exist
    assert "Lists/python" in await store.subscriptions(account.id)
    await store.unsubscribe(account.id, "Lists/python")
    with pytest.raises(NotFound):
        await store.unsubscribe(account.id, "Lists/python")


async def test_recent_is_claimed_once(store):
    account = await bob(store)
    inbox = await store.mailbox_get(account.id, "INBOX")
    uid = await append(store, inbox.id, RAW)
    first = await store.claim_recent(inbox.id)
    assert first <= uid
    assert await store.claim_recent(inbox.id) > uid


async def test_quota(store):
    await store.domain_add("hamburger.edu")
    small = await store.account_add("small@hamburger.edu", "x", quota=len(RAW) + 10)
    inbox = await store.mailbox_get(small.id, "INBOX")
    await append(store, inbox.id, RAW)
    with pytest.raises(QuotaExceeded):
        await append(store, inbox.id, RAW)
    with pytest.raises(QuotaExceeded):
        await deliver(store, RAW, [DeliveryTarget(small.id)])


async def test_listen_wakes_on_change(store):
    account = await bob(store)
    inbox = await store.mailbox_get(account.id, "INBOX")
    listener = store.listen(inbox.id)
    assert not await listener.wait(0.05)
    await append(store, inbox.id, RAW)
    assert await listener.wait(1)
    listener.close()


async def test_concurrent_writes_share_commits_and_all_land(store):
    account = await bob(store)
    inbox = await store.mailbox_get(account.id, "INBOX")
    uids = await asyncio.gather(*(append(store, inbox.id, RAW) for _ in range(100)))
    assert len(set(uids)) == 100
    assert len(await store.messages(inbox.id)) == 100


async def test_a_failing_write_does_not_spoil_its_batch(store):
    account = await bob(store)
    inbox = await store.mailbox_get(account.id, "INBOX")
    results = await asyncio.gather(
        append(store, inbox.id, RAW),
        store.mailbox_create(account.id, "INBOX"),
        append(store, inbox.id, RAW),
        return_exceptions=True,
    )
    assert isinstance(results[1], AlreadyExists)
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert len(await store.messages(inbox.id)) == 2


async def test_resolve_local_tells_foreign_domains_apart(store):
    account = await bob(store)
    assert await store.resolve_local("someone@elsewhere.example") is None
    assert await store.resolve_local("nobody@hamburger.edu") == []
    assert [a.id for a in await store.resolve_local("bob+x@hamburger.edu")] == [account.id]


async def test_resolve_local_sees_changes_made_through_another_store(store, other_store):
    """Answers may be kept, but never past a change by anyone (the CLI is
    another process with its own store on the same data)."""
    assert await store.resolve_local("bob@hamburger.edu") is None
    await other_store.domain_add("hamburger.edu")
    assert await store.resolve_local("bob@hamburger.edu") == []
    account = await other_store.account_add("bob@hamburger.edu", "hungry")
    assert [a.id for a in await store.resolve_local("bob@hamburger.edu")] == [account.id]
    assert await store.resolve_local("chef@hamburger.edu") == []
    await other_store.alias_add("chef@hamburger.edu", "bob@hamburger.edu")
    assert [a.id for a in await store.resolve_local("chef@hamburger.edu")] == [account.id]
    await other_store.alias_remove("chef@hamburger.edu")
    assert await store.resolve_local("chef@hamburger.edu") == []
    await other_store.account_remove("bob@hamburger.edu")
    assert await store.resolve_local("bob@hamburger.edu") == []
    await other_store.domain_remove("hamburger.edu")
    assert await store.resolve_local("bob@hamburger.edu") is None


async def test_messages_parsed_many_at_once(store):
    account = await bob(store)
    inbox = await store.mailbox_get(account.id, "INBOX")
    uids = [await append(store, inbox.id, RAW.replace(b"ketchup", b"k%d" % i)) for i in range(3)]
    await store.store_flags(inbox.id, [uids[1]], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    found = await store.messages_parsed(inbox.id, [*uids, 999])
    assert sorted(found) == [uids[0], uids[2]]
    assert found[uids[2]].header_value("subject") == "k2"


async def test_concurrent_deliveries_get_distinct_ascending_uids_and_exact_usage(store):
    """Many deliveries at once (they share commits, and may be filed together)."""
    bob_account = await bob(store)
    mary = await store.account_add("mary@hamburger.edu", "hungry")
    bodies = [RAW.replace(b"ketchup", b"ketchup %d" % n) for n in range(60)]

    def targets(n):
        prefix = b"Delivered-To: n%d@hamburger.edu\r\n" % n
        both = [DeliveryTarget(bob_account.id, "INBOX", prefix)]
        if n % 2:
            both.append(DeliveryTarget(mary.id, "Junk" if n % 3 else "INBOX", prefix,
                                       frozenset({"$Junk"}) if n % 3 else frozenset()))
        return both

    placed = await asyncio.gather(*(deliver(store, body, targets(n))
                                     for n, body in enumerate(bodies)))
    expected_use = {bob_account.id: 0, mary.id: 0}
    for n, (body, where) in enumerate(zip(bodies, placed, strict=True)):
        assert len(where) == len(targets(n))
        for (mailbox_id, uid), target in zip(where, targets(n), strict=True):
            assert await store.message_bytes(mailbox_id, uid) == target.prefix + body
            parsed = await store.message_parsed(mailbox_id, uid)
            assert parsed.envelope.subject == body.split(b"Subject: ")[1].split(b"\r\n")[0].decode()
            expected_use[target.account_id] += len(target.prefix) + len(body)
    for account in (bob_account, mary):
        assert (await store.account_get(account.address)).used == expected_use[account.id]
        for name in ("INBOX", "Junk"):
            box = await store.mailbox_get(account.id, name)
            metas = await store.messages(box.id)
            uids = [m.uid for m in metas]
            assert uids == list(range(1, len(uids) + 1))
            modseqs = [m.modseq for m in metas]
            assert modseqs == sorted(set(modseqs))
            status = await store.mailbox_status(box.id)
            assert status.uidnext == len(uids) + 1
            assert status.highest_modseq == (modseqs[-1] if modseqs else status.highest_modseq)
            if name == "Junk":
                assert all(m.flags == {"$Junk"} for m in metas)
    assert sum(len(w) for w in placed) == 60 + 30


async def test_concurrent_deliveries_over_quota_fail_alone(store):
    await bob(store)
    size = len(RAW) + len(b"Delivered-To: x\r\n")
    tight = await store.account_add("tight@hamburger.edu", "hungry", quota=3 * size)
    roomy = await store.account_get("bob@hamburger.edu")

    async def deliver_to(account):
        target = DeliveryTarget(account.id, "INBOX", b"Delivered-To: x\r\n")
        return await deliver(store, RAW, [target])

    results = await asyncio.gather(
        *(deliver_to(tight if n % 2 else roomy) for n in range(12)), return_exceptions=True
    )
    tight_results = results[1::2]
    assert sum(isinstance(r, QuotaExceeded) for r in tight_results) == 3
    assert all(isinstance(r, list) for r in results[0::2])
    assert (await store.account_get("tight@hamburger.edu")).used == 3 * size
    inbox = await store.mailbox_get(tight.id, "INBOX")
    assert [m.uid for m in await store.messages(inbox.id)] == [1, 2, 3]
    bob_inbox = await store.mailbox_get(roomy.id, "INBOX")
    assert [m.uid for m in await store.messages(bob_inbox.id)] == [1, 2, 3, 4, 5, 6]


async def test_deliver_some_leaves_out_only_the_full_mailboxes(store):
    roomy = await bob(store)
    prefix = b"Delivered-To: x\r\n"
    tight = await store.account_add("tight@hamburger.edu", "hungry", quota=len(prefix + RAW))
    targets = [DeliveryTarget(tight.id, "INBOX", prefix), DeliveryTarget(roomy.id, "INBOX", prefix)]
    placed = await deliver_some(store, RAW * 2, targets)
    assert placed[0] is None and placed[1] is not None
    mailbox_id, uid = placed[1]
    assert await store.message_bytes(mailbox_id, uid) == prefix + RAW * 2
    assert (await store.account_get("tight@hamburger.edu")).used == 0
    assert (await store.account_get("bob@hamburger.edu")).used == len(prefix + RAW * 2)
    # The shared bytes are gone with the last message that holds them.
    await store.store_flags(mailbox_id, [uid], ["\\Deleted"], "add")
    assert await store.expunge(mailbox_id) == [uid]
    with pytest.raises(QuotaExceeded):
        await deliver_some(store, RAW * 2, targets[:1])
    # Where everything fits, it is deliver() (and concurrent ones may share statements).
    results = await asyncio.gather(*(deliver_some(store, RAW, targets) for _ in range(5)))
    assert sum(where[0] is not None for where in results) == 1
    assert all(where[1] is not None for where in results)


async def test_a_copy_must_fit_whole_in_the_quota(store):
    owner = await bob(store)
    inbox = await store.mailbox_get(owner.id, "INBOX")
    uids = [await append(store, inbox.id, RAW) for _ in range(2)]
    tight = await store.account_add("tight@hamburger.edu", "hungry", quota=len(RAW) * 3 // 2)
    target = await store.mailbox_get(tight.id, "INBOX")
    with pytest.raises(QuotaExceeded):
        await store.copy(inbox.id, uids, target.id)  # each would fit, both do not
    assert await store.messages(target.id) == []
    assert (await store.account_get("tight@hamburger.edu")).used == 0
    assert len(await store.copy(inbox.id, uids[:1], target.id)) == 1


async def test_a_domain_name_is_not_a_pattern(store):
    """"_" in a LIKE pattern matches any character: a_c.test is not abc.test."""
    await store.domain_add("abc.test")
    await store.domain_add("a_c.test")
    await store.account_add("bob@abc.test", "hungry")
    await store.alias_add("chef@abc.test", "bob@abc.test")
    assert [a.address for a in await store.account_list("a_c.test")] == []
    await store.domain_remove("a_c.test")
    assert [a.source for a in await store.alias_list()] == ["chef@abc.test"]


async def test_a_closed_store_refuses_reads_and_writes(backend):
    closed = await backend.open()
    await closed.close()
    with pytest.raises(StoreError):
        await asyncio.wait_for(closed.domain_list(), 5)
    with pytest.raises(StoreError):
        await asyncio.wait_for(closed.domain_add("x.test"), 5)
