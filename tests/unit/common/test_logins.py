"""`Logins`: the sessions held for an account end when the directory
version moves and the account reads back disabled or gone; the others go
on; a store that is away ends nothing; with nothing held, nothing watches."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mailstack.common.logins import READ_ALL_FROM, Logins, kicked
from mailstack.errors import StoreUnavailable


@dataclass
class Account:
    address: str
    disabled: bool = False


class Directory:
    def __init__(self) -> None:
        self.version = 1
        self.accounts = {"a@x.org": Account("a@x.org"), "b@x.org": Account("b@x.org")}
        self.away = False
        self.accounts_away = False
        self.reads = 0
        self.lists = 0

    async def directory_version(self) -> int | None:
        if self.away:
            raise StoreUnavailable("away")
        return self.version

    async def account_get(self, address: str) -> Account | None:
        self.reads += 1
        if self.accounts_away:
            raise StoreUnavailable("away")
        return self.accounts.get(address)

    async def account_list(self) -> list[Account]:
        self.lists += 1
        return list(self.accounts.values())


async def session(logins: Logins, address: str, ended: list[str]) -> None:
    release = logins.hold(address)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError as exc:
        ended.append(address if kicked(exc) else "shutdown")
        raise
    finally:
        release()


async def test_only_the_disabled_accounts_sessions_end() -> None:
    store = Directory()
    logins = Logins(store, check_every=0.01)  # type: ignore[arg-type]
    ended: list[str] = []
    tasks = [
        asyncio.create_task(session(logins, address, ended))
        for address in ("a@x.org", "A@x.org", "b@x.org")
    ]
    await asyncio.sleep(0.05)
    assert logins.held("a@x.org") == 2 and logins.held("b@x.org") == 1
    reads = store.reads
    await asyncio.sleep(0.05)
    assert store.reads == reads  # the version did not move: no account read
    store.away = True
    store.accounts["a@x.org"].disabled = True
    store.version = 2
    await asyncio.sleep(0.05)
    assert ended == []  # the store is away: nothing ended on a guess
    store.away = False
    await asyncio.sleep(0.05)
    assert ended == ["a@x.org", "A@x.org"]  # the address is case-blind
    assert logins.held("a@x.org") == 0 and logins.held("b@x.org") == 1
    del store.accounts["b@x.org"]
    store.version = 3
    await asyncio.sleep(0.05)
    assert ended[-1] == "b@x.org"
    assert all(task.done() for task in tasks)
    assert logins._watch is None  # nothing held: nothing watches


async def test_end_ends_at_once_and_the_watch_stops_with_the_last_session() -> None:
    logins = Logins(Directory(), check_every=60)  # type: ignore[arg-type]
    ended: list[str] = []
    task = asyncio.create_task(session(logins, "a@x.org", ended))
    await asyncio.sleep(0)
    assert logins._watch is not None
    assert logins.end("a@x.org") == 1
    await asyncio.gather(task, return_exceptions=True)
    assert ended == ["a@x.org"] and logins._watch is None


async def test_many_accounts_with_sessions_are_read_in_one_go() -> None:
    store = Directory()
    names = [f"u{n}@x.org" for n in range(READ_ALL_FROM + 5)]
    store.accounts = {name: Account(name) for name in names}
    logins = Logins(store, check_every=0.01)  # type: ignore[arg-type]
    ended: list[str] = []
    tasks = [asyncio.create_task(session(logins, name, ended)) for name in names]
    await asyncio.sleep(0.05)
    assert store.reads == 0 and store.lists >= 1
    store.accounts["u3@x.org"].disabled = True
    del store.accounts["u4@x.org"]
    store.version = 2
    await asyncio.sleep(0.05)
    assert sorted(ended) == ["u3@x.org", "u4@x.org"]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert logins._watch is None


async def test_an_account_that_cannot_be_read_is_read_again_later() -> None:
    """The version moved but the accounts could not be read: nothing ends
    on a guess, and the next tick reads them again though the version has
    not moved since."""
    store = Directory()
    logins = Logins(store, check_every=0.01)  # type: ignore[arg-type]
    ended: list[str] = []
    task = asyncio.create_task(session(logins, "a@x.org", ended))
    await asyncio.sleep(0.05)
    store.accounts_away = True
    store.accounts["a@x.org"].disabled = True
    store.version = 2
    await asyncio.sleep(0.05)
    assert ended == [] and not task.done()
    store.accounts_away = False
    await asyncio.sleep(0.05)
    assert ended == ["a@x.org"]
    await asyncio.gather(task, return_exceptions=True)
