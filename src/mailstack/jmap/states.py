"""What push reports (RFC 8620 §7.1): the state of each data type in an
account, and ``StateWatch``, the StateChanges of some accounts as they come.

``StateWatch`` listens to the store's account changes (``listen_account``,
which hears other nodes too) and, on each, reads the state of every data
type (``TYPE_STATES``) and reports the types whose state string moved. A
type's state comes from the function registered for it; the mail types share
the account's change counter, the record types (Identity, EmailSubmission,
VacationResponse) their kind's ``record_state``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from mailstack.jmap import ids

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.store.contract.changes import Listener

Args = dict[str, Any]


async def _account_state(node: Node, account: int) -> str:
    assert node.store is not None
    return str(await node.store.account_state(account))


def _record_state(kind: str) -> Callable[[Node, int], Awaitable[str]]:
    async def state(node: Node, account: int) -> str:
        assert node.store is not None
        return str(await node.store.record_state(account, kind))

    return state


# JMAP data type -> its state string in an account (what /get answers as
# ``state``), for the types that push reports.
TYPE_STATES: Mapping[str, Callable[[Node, int], Awaitable[str]]] = {
    "Mailbox": _account_state,
    "Thread": _account_state,
    "Email": _account_state,
    "Identity": _record_state("Identity"),
    "EmailSubmission": _record_state("EmailSubmission"),
    "VacationResponse": _record_state("VacationResponse"),
}


async def type_states(node: Node, account: int, types: frozenset[str] | None) -> dict[str, str]:
    return {
        name: await state(node, account)
        for name, state in TYPE_STATES.items()
        if types is None or name in types
    }


def state_change(changed: Mapping[int, Mapping[str, str]]) -> Args:
    """The StateChange object (RFC 8620 §7.1)."""
    return {
        "@type": "StateChange",
        "changed": {ids.encode(ids.ACCOUNT, a): dict(s) for a, s in changed.items() if s},
    }


class StateWatch:
    """The state changes of some accounts, restricted to some types (None:
    all), from the moment it starts."""

    def __init__(self, node: Node, accounts: list[int], types: frozenset[str] | None) -> None:
        self.node = node
        self.accounts = accounts
        self.types = types
        self.states: dict[int, dict[str, str]] = {}
        self._listeners: dict[int, Listener] = {}
        self._changed: asyncio.Queue[int] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        store = self.node.store
        assert store is not None
        for account in self.accounts:
            self._listeners[account] = store.listen_account(account)
            self.states[account] = await type_states(self.node, account, self.types)
            self._tasks.append(asyncio.create_task(self._listen(account)))

    async def _listen(self, account: int) -> None:
        listener = self._listeners[account]
        while True:
            if await listener.wait():
                self._changed.put_nowait(account)

    async def next(self, timeout: float | None) -> Args | None:
        """The next StateChange with something in it; None when ``timeout``
        seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                account = await asyncio.wait_for(self._changed.get(), left)
            except TimeoutError:
                return None
            accounts = {account}
            while not self._changed.empty():
                accounts.add(self._changed.get_nowait())
            changed: dict[int, dict[str, str]] = {}
            for account in sorted(accounts):
                now = await type_states(self.node, account, self.types)
                before = self.states.get(account, {})
                moved = {name: value for name, value in now.items() if before.get(name) != value}
                self.states[account] = now
                if moved:
                    changed[account] = moved
            if changed:
                return state_change(changed)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for listener in self._listeners.values():
            listener.close()
        self._tasks.clear()
        self._listeners.clear()
