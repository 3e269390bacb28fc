"""Store contract: the methods IMAP added (mailbox_sync, account_credentials,
messages_sort_records)."""

from __future__ import annotations

from mailstack.mime.sortkeys import SortKeys
from mailstack.store import DeliveryTarget

from support import append, deliver

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


THREADED = (
    b"From: =?utf-8?q?Ren=C3=A9e?= <renee@crepes.fr>\r\nTo: Bob <bob@hamburger.edu>\r\n"
    b"Cc: carol@poly.edu\r\nSubject: Re: [lunch] Fwd: Crepes (fwd)\r\n"
    b"Date: Tue, 8 Feb 1994 10:00:00 +0100\r\nMessage-ID: <r2@crepes.fr>\r\n"
    b"References: <r0@crepes.fr> <r1@crepes.fr>\r\n\r\nyes\r\n"
)


async def test_sort_records_are_kept_at_delivery(store):
    """Every way a message arrives (append, deliver to several mailboxes
    with trace prefixes, copy, move) leaves the SORT/THREAD record the codec
    makes of its parse; expunged and unknown UIDs have none."""
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "pw")
    inbox = await store.mailbox_get(account.id, "INBOX")
    work = await store.mailbox_create(account.id, "Work")
    first = await append(store, inbox.id, THREADED)
    second = await append(store, inbox.id, RAW)
    (delivered, filed) = await deliver(store, THREADED.replace(b"r2@", b"r3@"), [
        DeliveryTarget(account.id, "INBOX", b"Delivered-To: bob@hamburger.edu\r\n"),
        DeliveryTarget(account.id, "Work"),
    ])  # fmt: skip
    expected = {
        first: SortKeys.of(await store.message_parsed(inbox.id, first)),
        second: SortKeys.of(await store.message_parsed(inbox.id, second)),
        delivered[1]: SortKeys.of(await store.message_parsed(inbox.id, delivered[1])),
    }
    records = await store.messages_sort_records(inbox.id, [first, second, delivered[1], 99])
    assert {uid: SortKeys.from_record(r) for uid, r in records.items()} == expected
    keys = expected[first]
    assert keys.subject == "CREPES" and keys.reply
    assert (keys.from_, keys.display_from, keys.to, keys.display_to, keys.cc) == (
        "RENEE", "RENéE", "BOB", "BOB", "CAROL"
    )
    assert keys.sent == 760698000.0
    assert keys.message_id == "r2@crepes.fr"
    assert keys.references == ("r0@crepes.fr", "r1@crepes.fr")
    assert SortKeys.from_record(
        (await store.messages_sort_records(work.id, [filed[1]]))[filed[1]]
    ).message_id == "r3@crepes.fr"
    ((_, copied),) = await store.copy(inbox.id, [first], work.id)
    ((_, moved),) = await store.move(inbox.id, [second], work.id)
    records = await store.messages_sort_records(work.id, [copied, moved])
    assert SortKeys.from_record(records[copied]) == expected[first]
    assert SortKeys.from_record(records[moved]) == expected[second]
    await store.expunge(inbox.id, [first], require_deleted=False)
    assert await store.messages_sort_records(inbox.id, [first, second]) == {}
    await store.expunge(work.id, [copied], require_deleted=False)
    assert await store.messages_sort_records(work.id, [copied]) == {}


async def test_sort_records_of_deliveries_filed_together(store):
    """Deliveries that share one commit (the writer files them as a group)
    each get their record."""
    import asyncio

    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "pw")
    inbox = await store.mailbox_get(account.id, "INBOX")
    raws = [THREADED.replace(b"r2@", b"g%d@" % n) for n in range(12)]
    placed = await asyncio.gather(
        *(deliver(store, raw, [DeliveryTarget(account.id)]) for raw in raws)
    )
    uids = [where[0][1] for where in placed]
    records = await store.messages_sort_records(inbox.id, uids)
    assert sorted(records) == sorted(uids)
    ids = {SortKeys.from_record(records[u]).message_id for u in uids}
    assert ids == {f"g{n}@crepes.fr" for n in range(12)}
