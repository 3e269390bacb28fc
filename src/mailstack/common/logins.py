"""The sessions logged in on this node, by account, and the watch that ends
them when their account is disabled or removed (what Dovecot's ``doveadm
kick`` does by hand).

A password is checked once, at login; an IMAP session, a POP3 session, an
authenticated SMTP submission session (a stolen password sending spam) or a
JMAP push stream can then stay open for days. So each registers at login
(`Logins.hold`) and, whoever disables or removes the account (the admin
pages, ``mailstack user disable`` in another process, another node on the
shared store), its sessions end within about ``CHECK_EVERY`` seconds: while
any session is held, a watch reads the store's directory version (a stat of
a file on SQLite; on PostgreSQL a value kept current by NOTIFY) and, when it
has moved, reads each held account again. A held session's task is
cancelled with `KICKED` as the reason, so the protocol can say goodbye its
way (IMAP's ``* BYE``); nothing of the session's unfinished work is applied
(a POP3 session that never reached QUIT deletes nothing, RFC 1939 §6).

With no session held there is no watch, so an idle node reads nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from mailstack.common.events import log_event
from mailstack.errors import StoreError

if TYPE_CHECKING:
    from mailstack.store.contract import Account

__all__ = ["CHECK_EVERY", "KICKED", "Logins", "answered", "kicked"]

log = logging.getLogger("mailstack.auth")

# Seconds between two reads of the directory version while sessions are held.
CHECK_EVERY = 1.0
# Past this many accounts with sessions, the watch reads every account at
# once rather than one at a time.
READ_ALL_FROM = 20
# The reason a held session's task is cancelled with.
KICKED = "account disabled or removed"


def kicked(exc: asyncio.CancelledError) -> bool:
    """Whether this cancellation is `Logins` ending the session."""
    return KICKED in exc.args


def answered() -> None:
    """The kicked session said goodbye itself and now closes as a session
    does: the cancellation it answered is taken back."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


class Directory(Protocol):
    """What the watch needs of the store."""

    async def directory_version(self) -> int | None: ...

    async def account_get(self, address: str) -> Account | None: ...

    async def account_list(self) -> list[Account]: ...


class Logins:
    def __init__(self, store: Directory, check_every: float = CHECK_EVERY) -> None:
        self.store = store
        self.check_every = check_every
        self._held: dict[str, dict[object, asyncio.Task[object]]] = {}  # address -> tasks
        self._watch: asyncio.Task[None] | None = None
        self._check = asyncio.Event()

    def hold(self, address: str) -> Callable[[], None]:
        """Register the running task as a session logged in to ``address``;
        returns what to call when the session ends."""
        task = asyncio.current_task()
        assert task is not None
        key = address.lower()
        token = object()
        self._held.setdefault(key, {})[token] = task
        if self._watch is None:
            self._watch = asyncio.create_task(self._run(), name="logins-watch")

        def release() -> None:
            tasks = self._held.get(key)
            if tasks is not None:
                tasks.pop(token, None)
                if not tasks:
                    del self._held[key]
            if not self._held and self._watch is not None:
                self._watch.cancel()
                self._watch = None

        return release

    def held(self, address: str) -> int:
        """The sessions held for ``address`` on this node."""
        return len(self._held.get(address.lower(), ()))

    def end(self, address: str) -> int:
        """End every session of ``address`` now; how many there were."""
        tasks = list(self._held.get(address.lower(), {}).values())
        for task in tasks:
            task.cancel(KICKED)
        return len(tasks)

    def check_now(self) -> None:
        """Read the directory version now, not at the next tick (this
        process just changed an account)."""
        self._check.set()

    async def _run(self) -> None:
        version: int | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check.wait(), self.check_every)
            self._check.clear()
            try:
                now = await self.store.directory_version()
            except StoreError:
                continue  # the store is away: ask again next time
            if now is not None and now == version:
                continue
            try:
                accounts = await self._accounts(list(self._held))
            except StoreError:
                continue  # not read: the version is read again next time
            version = now
            for address, account in accounts.items():
                if account is None or account.disabled:
                    ended = self.end(address)
                    log_event(
                        log,
                        logging.INFO,
                        "sessions ended",
                        {"user": address, "sessions": ended, "reason": KICKED},
                    )

    async def _accounts(self, addresses: list[str]) -> dict[str, Account | None]:
        """The held accounts as the store has them now: one read each, or,
        past ``READ_ALL_FROM`` of them, one read of every account."""
        if len(addresses) < READ_ALL_FROM:
            return {address: await self.store.account_get(address) for address in addresses}
        every = {account.address.lower(): account for account in await self.store.account_list()}
        return {address: every.get(address) for address in addresses}
