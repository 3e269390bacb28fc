"""Change notification within a process: the one Listeners registry both
backends wake after their commits."""

from __future__ import annotations

from mailstack.store.listeners import Listeners


async def test_a_listener_wakes_for_its_mailbox_only_and_once_per_change():
    listeners = Listeners()
    inbox, sent = listeners.listen(1), listeners.listen(2)
    listeners.wake([1])
    assert await inbox.wait(0.01) is True
    assert await inbox.wait(0.01) is False  # the change was taken
    assert await sent.wait(0.01) is False


async def test_wake_all_reaches_every_listener_and_closed_ones_are_forgotten():
    listeners = Listeners()
    first, second = listeners.listen(1), listeners.listen(7)
    second.close()
    listeners.wake_all()
    assert await first.wait(0.01) is True
    assert await second.wait(0.01) is False
    first.close()
    assert not listeners._by_mailbox  # nothing kept for mailboxes nobody waits on
