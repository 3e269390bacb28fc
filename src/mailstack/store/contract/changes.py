"""The change-notification part of the store contract.

A session waits for "something changed in mailbox X" (IMAP IDLE, RFC 2177;
a POP3 maildrop lock; a webmail refresh). The SQLite backend wakes listeners
in its own process after each commit; a shared backend (PostgreSQL) hears
other nodes through LISTEN/NOTIFY.
"""

from __future__ import annotations

from typing import Protocol


class Listener(Protocol):
    async def wait(self, timeout: float | None = None) -> bool:
        """True when the mailbox changed since the last wait (or creation)."""
        ...

    def close(self) -> None: ...


class ChangeStore(Protocol):
    def listen(self, mailbox_id: int) -> Listener: ...
