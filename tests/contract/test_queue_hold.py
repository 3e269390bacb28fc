"""Store contract: holding and releasing queued mail (``queue_hold``)."""

from __future__ import annotations

import pytest

from mailstack.errors import NotFound
from mailstack.store import DELIVERED, HELD, QUEUED, NewEntry, NewRecipient, RecipientUpdate

DATA = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\n\r\nHello\r\n"


def entry(*addresses: str, now: float = 1000.0) -> NewEntry:
    recipients = [NewRecipient(a) for a in addresses]
    return NewEntry("alice@crepes.fr", recipients, DATA, now, now + 5 * 86400)


async def test_a_held_entry_is_never_due_until_released(store):
    held = await store.queue_add(entry("bob@hamburger.edu", "carol@hamburger.edu"))
    other = await store.queue_add(entry("dan@hamburger.edu"))
    assert await store.queue_hold(held, True, 1500.0) == 2
    assert {r.state for r in (await store.queue_get(held)).recipients} == {HELD}
    assert [e.id for e in await store.queue_due(10_000.0)] == [other]
    assert await store.queue_next_due() == 1000.0  # the other entry's
    # Retry leaves held mail alone; holding twice changes nothing.
    await store.queue_retry(2000.0)
    assert [e.id for e in await store.queue_due(10_000.0)] == [other]
    assert await store.queue_hold(held, True, 1500.0) == 0
    assert await store.queue_hold(held, False, 3000.0) == 2
    got = await store.queue_get(held)
    assert [(r.state, r.next_attempt) for r in got.recipients] == [(QUEUED, 3000.0)] * 2
    assert {e.id for e in await store.queue_due(3000.0)} == {held, other}
    with pytest.raises(NotFound):
        await store.queue_hold(999_999, True, 1.0)


async def test_an_entry_with_a_held_recipient_stays_in_the_queue(store):
    entry_id = await store.queue_add(entry("bob@hamburger.edu", "carol@hamburger.edu"))
    bob, carol = (await store.queue_get(entry_id)).recipients
    # Carol is held; Bob's delivery, recorded after, must not drop the entry.
    await store.queue_hold(entry_id, True, 1000.0)
    await store.queue_update(
        entry_id, [RecipientUpdate(bob.id, DELIVERED, 1000.0, "250 ok", True)]
    )
    got = await store.queue_get(entry_id)
    assert [r.state for r in got.recipients] == [DELIVERED, HELD]
