"""Store contract: the account as a whole (contract.accounts): one change
counter, email and thread ids, changes since a state with paging, mailbox
counts and updates, and listen_account."""

from __future__ import annotations

import asyncio

import pytest

from mailstack.errors import AlreadyExists, NotFound, StoreError
from mailstack.store import DeliveryTarget

from support import append, deliver


def message(subject: str, msg_id: str, *refs: str, extra: str = "") -> bytes:
    head = f"From: a@crepes.fr\r\nSubject: {subject}\r\nMessage-ID: <{msg_id}>\r\n"
    if refs:
        head += f"References: {' '.join(f'<{r}>' for r in refs)}\r\n"
        head += f"In-Reply-To: <{refs[-1]}>\r\n"
    return (head + extra + "\r\nbody\r\n").encode()


async def bob(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add("bob@hamburger.edu", "pw")
    inbox = await store.mailbox_get(account.id, "INBOX")
    return account, inbox


async def test_one_counter_gives_every_modseq_and_mailbox_highestmodseq_only_grows(store):
    account, inbox = await bob(store)
    start = await store.account_state(account.id)
    archive = await store.mailbox_get(account.id, "Archive")
    uid = await append(store, inbox.id, message("a", "a@x"))
    after_append = await store.account_state(account.id)
    assert after_append == start + 1
    (meta,) = await store.messages(inbox.id)
    assert meta.modseq == after_append
    assert (await store.mailbox_by_id(inbox.id)).highest_modseq == after_append
    before = (await store.mailbox_by_id(archive.id)).highest_modseq
    await append(store, archive.id, message("b", "b@x"))
    assert (await store.mailbox_by_id(archive.id)).highest_modseq > before
    flagged = await store.store_flags(inbox.id, [uid], ["\\Seen"], "add")
    assert flagged.changed[0].modseq == await store.account_state(account.id)
    with pytest.raises(NotFound):
        await store.account_state(account.id + 1000)


async def test_emails_carry_ids_move_keeps_them_copy_makes_new(store):
    account, inbox = await bob(store)
    archive = await store.mailbox_get(account.id, "Archive")
    uids = [await append(store, inbox.id, message(f"s{n}", f"m{n}@x")) for n in range(3)]
    emails = await store.emails(account.id)
    assert len({e.email_id for e in emails}) == 3
    assert [e.email_id for e in emails] == sorted(e.email_id for e in emails)
    metas = await store.messages(inbox.id)
    assert {m.email_id for m in metas} == {e.email_id for e in emails}
    moved_id = next(m.email_id for m in metas if m.uid == uids[0])
    copied_id = next(m.email_id for m in metas if m.uid == uids[1])

    [(_, new_uid)] = await store.move(inbox.id, [uids[0]], archive.id)
    found = await store.emails_by_id(account.id, [moved_id])
    assert found[moved_id].mailbox_id == archive.id and found[moved_id].uid == new_uid
    [(_, copy_uid)] = await store.copy(inbox.id, [uids[1]], archive.id)
    in_archive = {e.uid: e for e in await store.emails(account.id, archive.id)}
    assert in_archive[copy_uid].email_id not in {e.email_id for e in emails}
    original = (await store.emails_by_id(account.id, [copied_id]))[copied_id]
    assert in_archive[copy_uid].thread_id == original.thread_id  # a copy stays in its thread
    assert set(await store.emails_by_id(account.id, [moved_id, 999_999])) == {moved_id}


async def test_emails_of_another_account_are_not_found(store):
    account, inbox = await bob(store)
    other = await store.account_add("alice@hamburger.edu", "pw")
    await append(store, inbox.id, message("a", "a@x"))
    (email,) = await store.emails(account.id)
    assert await store.emails_by_id(other.id, [email.email_id]) == {}
    assert await store.thread_emails(other.id, [email.thread_id]) == {}
    assert await store.emails(other.id) == []


async def test_threads_follow_references_both_ways_when_subjects_agree(store):
    account, inbox = await bob(store)
    sent = await store.mailbox_get(account.id, "Sent")
    await append(store, inbox.id, message("Lunch", "root@x"))
    # A reply filed in another mailbox, with a reply prefix and another case.
    await append(store, sent.id, message("Re: LUNCH", "reply@x", "root@x"))
    # A message that an earlier one refers to, arriving later.
    await append(store, inbox.id, message("Dinner", "child@x", "late-parent@x"))
    await append(store, inbox.id, message("Fwd: dinner", "late-parent@x"))
    # Refers to the thread but its subject disagrees: a new thread.
    await append(store, inbox.id, message("Something else", "other@x", "root@x"))
    # No ids at all: a thread of its own.
    await append(store, inbox.id, b"Subject: Alone\r\n\r\nno ids\r\n")
    by_subject = {}
    for email in await store.emails(account.id):
        parsed = await store.message_parsed(email.mailbox_id, email.uid)
        by_subject[parsed.envelope.subject] = email
    lunch = by_subject["Lunch"]
    assert by_subject["Re: LUNCH"].thread_id == lunch.thread_id
    assert by_subject["Fwd: dinner"].thread_id == by_subject["Dinner"].thread_id
    assert by_subject["Dinner"].thread_id != lunch.thread_id
    assert by_subject["Something else"].thread_id not in {lunch.thread_id,
                                                          by_subject["Dinner"].thread_id}
    threads = await store.thread_emails(account.id, [lunch.thread_id])
    assert [e.email_id for e in threads[lunch.thread_id]] == sorted(
        [lunch.email_id, by_subject["Re: LUNCH"].email_id]
    )
    assert len({e.thread_id for e in by_subject.values()}) == 4
    assert by_subject["Alone"].thread_id == by_subject["Alone"].email_id


async def test_threads_at_delivery_including_within_one_group_commit(store):
    account, _inbox = await bob(store)
    target = [DeliveryTarget(account.id)]
    await asyncio.gather(
        deliver(store, message("Plan", "p1@x"), target),
        deliver(store, message("Re: Plan", "p2@x", "p1@x"), target),
        deliver(store, message("Re: Plan", "p3@x", "p1@x", "p2@x"), target),
        deliver(store, message("Unrelated", "u@x"), target),
    )
    threads = {}
    for email in await store.emails(account.id):
        threads.setdefault(email.thread_id, []).append(email.email_id)
    assert sorted(len(ids) for ids in threads.values()) == [1, 3]


async def test_thread_emails_oldest_first(store):
    import datetime

    account, inbox = await bob(store)
    later = datetime.datetime(2024, 5, 2, tzinfo=datetime.UTC)
    earlier = datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)
    await append(store, inbox.id, message("T", "t1@x"), internaldate=later)
    await append(store, inbox.id, message("Re: T", "t2@x", "t1@x"), internaldate=earlier)
    (first, second) = await store.emails(account.id)
    threads = await store.thread_emails(account.id, [first.thread_id, 424242])
    assert list(threads) == [first.thread_id]
    assert [e.email_id for e in threads[first.thread_id]] == [second.email_id, first.email_id]


async def test_email_changes_created_updated_destroyed(store):
    account, inbox = await bob(store)
    archive = await store.mailbox_get(account.id, "Archive")
    keep, flag, gone = [await append(store, inbox.id, message(f"s{n}", f"c{n}@x"))
                        for n in range(3)]
    ids = {m.uid: m.email_id for m in await store.messages(inbox.id)}
    since = await store.account_state(account.id)
    nothing = await store.email_changes(account.id, since)
    assert (nothing.created, nothing.updated, nothing.destroyed) == ([], [], [])
    assert nothing.state == since and not nothing.has_more

    await store.store_flags(inbox.id, [flag], ["\\Flagged"], "add")
    await store.move(inbox.id, [keep], archive.id)
    await store.expunge(inbox.id, [gone], require_deleted=False)
    new_uid = await append(store, inbox.id, message("new", "new@x"))
    # Created then updated: created only. Created then destroyed: in no list.
    await store.store_flags(inbox.id, [new_uid], ["\\Seen"], "add")
    brief = await append(store, inbox.id, message("brief", "brief@x"))
    await store.expunge(inbox.id, [brief], require_deleted=False)
    new_id = next(m.email_id for m in await store.messages(inbox.id) if m.uid == new_uid)

    changes = await store.email_changes(account.id, since)
    assert changes.state == await store.account_state(account.id)
    assert changes.created == [new_id]
    assert sorted(changes.updated) == sorted([ids[flag], ids[keep]])
    assert changes.destroyed == [ids[gone]]
    assert not changes.has_more
    # A state from the future, or one that never was: cannot calculate.
    assert await store.email_changes(account.id, changes.state + 1) is None
    assert await store.email_changes(account.id, -1) is None


async def test_email_changes_page_with_a_correct_intermediate_state(store):
    account, inbox = await bob(store)
    since = await store.account_state(account.id)
    for n in range(5):
        await append(store, inbox.id, message(f"p{n}", f"p{n}@x"))
    metas = await store.messages(inbox.id)
    ids = [m.email_id for m in metas]
    # The first two are then changed again: they still come in order of creation.
    await store.store_flags(inbox.id, [metas[0].uid], ["\\Seen"], "add")
    seen, state, pages = [], since, 0
    while True:
        page = await store.email_changes(account.id, state, limit=2)
        assert len(page.created) + len(page.updated) + len(page.destroyed) <= 2
        seen += page.created
        assert page.updated == [] or page.updated == [ids[0]]
        state, pages = page.state, pages + 1
        if not page.has_more:
            break
        assert page.state < await store.account_state(account.id)
    assert seen == ids and pages == 3
    assert state == await store.account_state(account.id)
    # Going on from an intermediate state finds what changed after it.
    first = await store.email_changes(account.id, since, limit=2)
    await store.expunge(inbox.id, [metas[0].uid], require_deleted=False)
    rest = await store.email_changes(account.id, first.state)
    assert ids[0] in rest.destroyed and set(rest.created) == set(ids[2:])


async def test_thread_changes(store):
    account, inbox = await bob(store)
    await append(store, inbox.id, message("Old", "old@x"))
    await append(store, inbox.id, message("Doomed", "doomed@x"))
    old, doomed = await store.emails(account.id)
    since = await store.account_state(account.id)
    await append(store, inbox.id, message("Re: Old", "old2@x", "old@x"))
    await append(store, inbox.id, message("Fresh", "fresh@x"))
    await store.expunge(inbox.id, [doomed.uid], require_deleted=False)
    fresh = next(e for e in await store.emails(account.id) if e.email_id > old.email_id + 1
                 and e.thread_id != old.thread_id)
    changes = await store.thread_changes(account.id, since)
    assert changes.created == [fresh.thread_id]
    assert changes.updated == [old.thread_id]
    assert changes.destroyed == [doomed.thread_id]
    assert changes.state == await store.account_state(account.id)
    assert await store.thread_changes(account.id, changes.state + 5) is None


async def test_mailbox_changes_created_updated_counts_only_destroyed(store):
    account, inbox = await bob(store)
    since = await store.account_state(account.id)
    await append(store, inbox.id, message("a", "a@x"))
    counts = await store.mailbox_changes(account.id, since)
    assert counts.updated == [inbox.id] and counts.counts_only
    assert counts.created == [] and counts.destroyed == []

    mid = counts.state
    work = await store.mailbox_create(account.id, "Work")
    renamed = await store.mailbox_update(account.id, inbox.id, sort_order=5)
    assert renamed.sort_order == 5 and renamed.id == inbox.id
    props = await store.mailbox_changes(account.id, mid)
    assert props.created == [work.id] and props.updated == [inbox.id]
    assert not props.counts_only

    junk = await store.mailbox_get(account.id, "Junk")
    before_brief = await store.account_state(account.id)
    doomed = await store.mailbox_create(account.id, "Brief")
    await store.mailbox_delete(account.id, "Brief")
    await store.mailbox_delete(account.id, "Junk")
    gone = await store.mailbox_changes(account.id, before_brief)
    assert gone.destroyed == [junk.id]  # Brief was created after, so in no list
    assert doomed.id not in gone.created + gone.updated + gone.destroyed
    assert await store.mailbox_changes(account.id, gone.state + 1) is None
    # Subscribing is a property of the mailbox.
    state = gone.state
    await store.subscribe(account.id, "Work")
    sub = await store.mailbox_changes(account.id, state)
    assert sub.updated == [work.id] and not sub.counts_only


async def test_mailbox_changes_page(store):
    account, _inbox = await bob(store)
    since = await store.account_state(account.id)
    made = [(await store.mailbox_create(account.id, f"Box{n}")).id for n in range(5)]
    first = await store.mailbox_changes(account.id, since, limit=3)
    assert first.created == made[:3] and first.has_more
    rest = await store.mailbox_changes(account.id, first.state, limit=3)
    assert rest.created == made[3:] and not rest.has_more


async def test_deleted_mailbox_leaves_tombstones_of_its_emails(store):
    account, _inbox = await bob(store)
    box = await store.mailbox_create(account.id, "Projects")
    for n in range(3):
        await append(store, box.id, message(f"x{n}", f"x{n}@x"))
    ids = sorted(e.email_id for e in await store.emails(account.id, box.id))
    threads = {e.thread_id for e in await store.emails(account.id, box.id)}
    since = await store.account_state(account.id)
    await store.mailbox_delete(account.id, "Projects")
    changes = await store.email_changes(account.id, since)
    assert sorted(changes.destroyed) == ids and changes.created == changes.updated == []
    thread_changes = await store.thread_changes(account.id, since)
    assert set(thread_changes.destroyed) == threads
    boxes = await store.mailbox_changes(account.id, since)
    assert boxes.destroyed == [box.id]
    # Paged one at a time, every tombstone comes, each once.
    state, found = since, []
    while True:
        page = await store.email_changes(account.id, state, limit=1)
        found += page.destroyed
        state = page.state
        if not page.has_more:
            break
    assert sorted(found) == ids


async def test_mailbox_counts(store):
    account, inbox = await bob(store)
    await append(store, inbox.id, message("T", "t1@x"))
    await append(store, inbox.id, message("Re: T", "t2@x", "t1@x"), flags=["\\Seen"])
    await append(store, inbox.id, message("U", "u@x"), flags=["\\Seen"])
    await append(store, inbox.id, message("Draft", "d@x"), flags=["\\Draft"])
    counts = await store.mailbox_counts(account.id)
    assert set(counts) == {b.id for b in await store.mailbox_list(account.id)}
    mine = counts[inbox.id]
    assert (mine.total_emails, mine.unread_emails) == (4, 1)  # a draft is not unread
    assert (mine.total_threads, mine.unread_threads) == (3, 1)
    trash = await store.mailbox_get(account.id, "Trash")
    assert counts[trash.id].total_emails == 0 and counts[trash.id].unread_threads == 0


async def test_mailbox_update_renames_in_place_with_inferiors(store):
    account, inbox = await bob(store)
    parent = await store.mailbox_create(account.id, "Clients")
    child = await store.mailbox_create(account.id, "Clients/Acme")
    await append(store, child.id, message("c", "c@x"))
    (email,) = await store.emails(account.id, child.id)
    updated = await store.mailbox_update(account.id, parent.id, name="Customers", sort_order=3)
    assert (updated.id, updated.name, updated.sort_order) == (parent.id, "Customers", 3)
    moved_child = await store.mailbox_by_id(child.id)
    assert moved_child.name == "Customers/Acme"
    assert (await store.emails_by_id(account.id, [email.email_id]))[email.email_id].mailbox_id \
        == child.id
    with pytest.raises(AlreadyExists):
        await store.mailbox_update(account.id, parent.id, name="Sent")
    with pytest.raises(NotFound):
        await store.mailbox_update(account.id, 999_999, name="X")
    other = await store.account_add("carol@hamburger.edu", "pw")
    with pytest.raises(NotFound):
        await store.mailbox_update(other.id, parent.id, sort_order=1)
    with pytest.raises(StoreError):
        await store.mailbox_update(account.id, inbox.id, name="Old")
    assert (await store.mailbox_update(account.id, inbox.id, name="inbox")).name == "INBOX"


async def test_listen_account_wakes_on_every_kind_of_change(store):
    account, inbox = await bob(store)
    listener = store.listen_account(account.id)
    try:
        assert not await listener.wait(0.05)
        await append(store, inbox.id, message("a", "a@x"))
        assert await listener.wait(5)
        await store.mailbox_create(account.id, "New")
        assert await listener.wait(5)
        await store.record_create(account.id, "Identity", "{}")
        assert await listener.wait(5)
        assert not await listener.wait(0.05)
    finally:
        listener.close()
