"""The outbound-queue part of the store contract (every backend must pass)."""

from __future__ import annotations

import pytest

from mailstack.errors import NotFound
from mailstack.store import (
    DELIVERED,
    FAILED,
    QUEUED,
    NewEntry,
    NewRecipient,
    RecipientUpdate,
)

DATA = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\n\r\nHello\r\n"


def entry(*addresses: str, now: float = 1000.0, **kw) -> NewEntry:
    recipients = [NewRecipient(a) for a in addresses or ("bob@hamburger.edu",)]
    return NewEntry("alice@crepes.fr", recipients, DATA, now, now + 5 * 86400, **kw)


async def test_add_then_get_keeps_envelope_and_parameters(store):
    entry_id = await store.queue_add(
        NewEntry(
            "alice@crepes.fr",
            [NewRecipient("bob@hamburger.edu", "SUCCESS,FAILURE", "rfc822;bob@hamburger.edu")],
            DATA,
            1000.0,
            2000.0,
            envid="QQ314159",
            ret="HDRS",
            smtputf8=True,
            body="8BITMIME",
        )
    )
    got = await store.queue_get(entry_id)
    assert (got.mail_from, got.created, got.expires) == ("alice@crepes.fr", 1000.0, 2000.0)
    assert (got.envid, got.ret, got.smtputf8, got.body, got.size) == (
        "QQ314159",
        "HDRS",
        True,
        "8BITMIME",
        len(DATA),
    )
    [rcpt] = got.recipients
    assert (rcpt.address, rcpt.state, rcpt.attempts, rcpt.next_attempt) == (
        "bob@hamburger.edu",
        QUEUED,
        0,
        1000.0,
    )
    assert (rcpt.notify, rcpt.orcpt, rcpt.domain) == (
        "SUCCESS,FAILURE",
        "rfc822;bob@hamburger.edu",
        "hamburger.edu",
    )
    assert await store.queue_data(entry_id) == DATA


async def test_due_lists_only_entries_whose_time_has_come(store):
    early = await store.queue_add(entry(now=1000.0))
    late = await store.queue_add(entry(now=5000.0))
    assert [e.id for e in await store.queue_due(999.0)] == []
    assert [e.id for e in await store.queue_due(1000.0)] == [early]
    assert [e.id for e in await store.queue_due(6000.0)] == [early, late]
    assert await store.queue_next_due() == 1000.0


async def test_temporary_failure_counts_an_attempt_and_reschedules(store):
    entry_id = await store.queue_add(entry())
    [rcpt] = (await store.queue_get(entry_id)).recipients
    await store.queue_update(
        entry_id, [RecipientUpdate(rcpt.id, QUEUED, 1300.0, "451 4.3.0 try later")]
    )
    [rcpt] = (await store.queue_get(entry_id)).recipients
    assert (rcpt.attempts, rcpt.next_attempt, rcpt.last_reply) == (1, 1300.0, "451 4.3.0 try later")
    assert await store.queue_due(1200.0) == []
    assert await store.queue_next_due() == 1300.0


async def test_entry_leaves_when_every_recipient_is_final(store):
    entry_id = await store.queue_add(entry("a@x.example", "b@y.example"))
    first, second = (await store.queue_get(entry_id)).recipients
    await store.queue_update(entry_id, [RecipientUpdate(first.id, DELIVERED, last_reply="250 ok")])
    left = await store.queue_get(entry_id)
    assert [r.state for r in left.recipients] == [DELIVERED, QUEUED]
    assert [r.id for r in left.pending()] == [second.id]
    await store.queue_update(entry_id, [RecipientUpdate(second.id, FAILED, last_reply="550")])
    with pytest.raises(NotFound):
        await store.queue_get(entry_id)
    assert await store.queue_list() == []
    assert await store.queue_next_due() is None


async def test_reports_are_queued_in_the_same_commit(store):
    entry_id = await store.queue_add(entry())
    [rcpt] = (await store.queue_get(entry_id)).recipients
    report = NewEntry("", [NewRecipient("alice@crepes.fr")], b"DSN", 1000.0, 2000.0)
    [report_id] = await store.queue_update(
        entry_id, [RecipientUpdate(rcpt.id, FAILED, last_reply="550 no")], [report]
    )
    [left] = await store.queue_list()
    assert left.id == report_id and left.mail_from == ""
    assert await store.queue_data(report_id) == b"DSN"


async def test_delay_notice_is_remembered_without_counting_an_attempt(store):
    entry_id = await store.queue_add(entry())
    [rcpt] = (await store.queue_get(entry_id)).recipients
    await store.queue_update(
        entry_id,
        [RecipientUpdate(rcpt.id, QUEUED, 1000.0, "", counted=False, delay_notified=True)],
    )
    [rcpt] = (await store.queue_get(entry_id)).recipients
    assert rcpt.delay_notified and rcpt.attempts == 0


async def test_retry_makes_entries_due_now(store):
    one = await store.queue_add(entry(now=1000.0))
    two = await store.queue_add(entry(now=1000.0))
    for entry_id in (one, two):
        [rcpt] = (await store.queue_get(entry_id)).recipients
        await store.queue_update(entry_id, [RecipientUpdate(rcpt.id, QUEUED, 9000.0)])
    assert await store.queue_retry(1500.0, one) == 1
    assert [e.id for e in await store.queue_due(1500.0)] == [one]
    assert await store.queue_retry(1600.0) == 2
    assert [e.id for e in await store.queue_due(1600.0)] == [one, two]
    with pytest.raises(NotFound):
        await store.queue_retry(1600.0, 999)


async def test_remove(store):
    entry_id = await store.queue_add(entry())
    await store.queue_remove(entry_id)
    assert await store.queue_list() == []
    with pytest.raises(NotFound):
        await store.queue_remove(entry_id)
    with pytest.raises(NotFound):
        await store.queue_data(entry_id)


async def test_queue_survives_reopen(backend):
    first = await backend.open()
    entry_id = await first.queue_add(entry())
    await first.close()
    second = await backend.open()
    try:
        got = await second.queue_get(entry_id)
        assert got.recipients[0].state == QUEUED
    finally:
        await second.close()


async def test_list_holds_a_queue_larger_than_one_query_takes(store):
    entries = [
        NewEntry("alice@crepes.fr", [NewRecipient(f"r{n}@poly.edu")], b"Subject: x\r\n\r\nx\r\n",
                 1000.0, 90000.0)
        for n in range(1200)
    ]
    ids = [await store.queue_add(entry) for entry in entries]
    listed = await store.queue_list()
    assert sorted(e.id for e in listed) == sorted(ids)
    assert all(len(e.recipients) == 1 for e in listed)


async def test_queue_ids_are_never_used_again_even_after_a_restart(backend, store):
    first = await store.queue_add(entry())
    second = await store.queue_add(entry())
    await store.queue_remove(second)
    await store.queue_remove(first)
    # The highest id is gone too: "queued as N" still names one message only.
    third = await store.queue_add(entry())
    assert third > second
    await store.queue_remove(third)
    await store.close()
    reopened = await backend.open()
    try:
        assert await reopened.queue_add(entry()) > third
    finally:
        await reopened.close()


async def test_run_numbers_are_never_handed_out_twice(backend, store, other_store):
    runs = [await store.new_run_number(), await other_store.new_run_number()]
    await store.close()
    reopened = await backend.open()
    try:
        runs.append(await reopened.new_run_number())
    finally:
        await reopened.close()
    assert runs == sorted(set(runs)) and runs[0] >= 1
