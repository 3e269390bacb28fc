"""Change notification within one process, for both backends: the sessions
waiting on each mailbox (IMAP IDLE, a POP3 lock, a JMAP push), woken once a
commit that touched it is done. The SQLite engine wakes them after its own
commits; the PostgreSQL engine also after other nodes' (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

__all__ = ["Listener", "Listeners"]


class Listener:
    """One waiter on one mailbox (the contract's `changes.Listener`)."""

    def __init__(self, registry: Listeners, mailbox_id: int) -> None:
        self._registry = registry
        self.mailbox_id = mailbox_id
        self.event = asyncio.Event()

    async def wait(self, timeout: float | None = None) -> bool:
        """True when the mailbox changed since the last wait (or creation)."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        self.event.clear()
        return True

    def close(self) -> None:
        self._registry.forget(self)


class Listeners:
    """The listeners of a store, by mailbox."""

    def __init__(self) -> None:
        self._by_mailbox: dict[int, set[Listener]] = {}

    def listen(self, mailbox_id: int) -> Listener:
        listener = Listener(self, mailbox_id)
        self._by_mailbox.setdefault(mailbox_id, set()).add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        waiting = self._by_mailbox.get(listener.mailbox_id)
        if waiting is not None:
            waiting.discard(listener)
            if not waiting:
                del self._by_mailbox[listener.mailbox_id]

    def wake_all(self) -> None:
        """Every listener looks again (changes may have gone unheard)."""
        self.wake(list(self._by_mailbox))

    def wake(self, mailbox_ids: Iterable[int]) -> None:
        for mailbox_id in mailbox_ids:
            for listener in self._by_mailbox.get(mailbox_id, ()):
                listener.event.set()
