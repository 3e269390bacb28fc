"""The directory part of the PostgreSQL store: domains, accounts, aliases and
recipient resolution, with the recipient answers kept while the directory
version (``meta.directory``, moved in the commit of every directory change
by any node) stays the same: an RCPT then costs one single-statement read."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailstack.errors import AlreadyExists, NotFound, StoreError
from mailstack.store.contract.directory import (
    ALIAS_DEPTH,
    SUBADDRESS_SEPARATOR,
    Account,
    Alias,
    NewDomain,
    normalize_address,
)
from mailstack.store.contract.keys import canonical_key
from mailstack.store.contract.messages import DEFAULT_MAILBOXES
from mailstack.store.postgres.engine import DIRECTORY_VERSION, PgEngine, Tx
from mailstack.store.postgres.keys import insert_key
from mailstack.store.postgres.mailboxes import create_mailbox, drop_mailbox
from mailstack.store.postgres.zones import add_to_zone
from mailstack.store.sqltext import like_suffix

# resolve_local keeps at most this many answers (a dictionary attack on RCPT
# must not grow memory without bound), then starts over.
RECIPIENTS_KEPT = 10_000
ACCOUNT_COLUMNS = "id, address, quota, used, admin, disabled"
_ACCOUNT = f"SELECT {ACCOUNT_COLUMNS} FROM accounts"


def _seen(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def account_from_row(row: Any) -> Account:
    """An Account from the ACCOUNT_COLUMNS of a row."""
    return Account(int(row[0]), str(row[1]), int(row[2]), int(row[3]), bool(row[4]), bool(row[5]))


async def _domain_exists(c: Any, domain: str) -> bool:
    return await c.fetchval("SELECT 1 FROM domains WHERE name = $1", domain) is not None


async def _insert_domain(c: Any, name: str) -> None:
    try:
        await c.execute("INSERT INTO domains (name) VALUES ($1)", name)
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"domain {name} exists") from None


async def _insert_alias(c: Any, source: str, target: str) -> None:
    domain = source.rpartition("@")[2]
    if not await _domain_exists(c, domain):
        raise NotFound(f"{domain} is not a local domain")
    if not await _domain_exists(c, target.rpartition("@")[2]):
        raise StoreError(
            "an alias target must be a local address (forwarding to other domains "
            "arrives with the outbound queue)"
        )
    if await c.fetchval("SELECT 1 FROM accounts WHERE address = $1", source) is not None:
        # The account would always win (see _resolve): the alias would be dead.
        raise StoreError(f"{source} is an account; an alias source must not be one")
    try:
        await c.execute("INSERT INTO aliases VALUES ($1, $2)", source, target)
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"alias {source} -> {target} exists") from None


class DirectoryPart(PgEngine):
    _hasher: PasswordHasher
    # resolve_local's answers, valid while the directory version stays the same.
    _recipients: dict[str, list[Account] | None]
    _recipients_version: int | None
    # The shared read of the directory version: who waits for the next one,
    # and the task that reads them one after another.
    _version_next: asyncio.Future[int] | None = None
    _version_reader: asyncio.Task[None] | None = None

    # -- domains -------------------------------------------------------------

    async def domain_add(self, name: str) -> None:
        name = name.strip().lower().rstrip(".")

        async def op(t: Tx) -> None:
            await _insert_domain(t.conn, name)
            t.change_directory()

        await self._write(op)

    async def domain_create(self, new: NewDomain) -> dict[str, int]:
        name = new.name.strip().lower().rstrip(".")
        now = int(time.time())
        keys = [canonical_key(key, key.created or now) for key in new.dkim_keys]
        if any(key.domain != name for key in keys):
            raise StoreError(f"the DKIM keys of a new domain are {name}'s")
        postmaster = normalize_address(new.postmaster) if new.postmaster else None

        async def op(t: Tx) -> dict[str, int]:
            await _insert_domain(t.conn, name)
            t.change_directory()
            for key in keys:
                await insert_key(t.conn, key)
            if postmaster is not None:
                await _insert_alias(t.conn, f"postmaster@{name}", postmaster)
            return {addition.origin: await add_to_zone(t.conn, addition) for addition in new.zones}

        return await self._write(op)

    async def domain_remove(self, name: str) -> None:
        name = name.strip().lower().rstrip(".")

        async def op(t: Tx) -> None:
            c = t.conn
            users = await c.fetchval(
                "SELECT count(*) FROM accounts WHERE address LIKE $1", like_suffix(f"@{name}")
            )
            if users:
                raise StoreError(f"domain {name} still has {users} account(s)")
            if await c.fetchval("DELETE FROM domains WHERE name = $1 RETURNING 1", name) is None:
                raise NotFound(f"no domain {name}")
            await c.execute("DELETE FROM aliases WHERE source LIKE $1", like_suffix(f"@{name}"))
            t.change_directory()

        await self._write(op)

    async def domain_list(self) -> list[str]:
        async def op(c: Any) -> list[str]:
            return [str(r[0]) for r in await c.fetch("SELECT name FROM domains ORDER BY name")]

        return await self._read(op)

    async def is_local_domain(self, name: str) -> bool:
        name = name.lower().rstrip(".")

        async def op(c: Any) -> bool:
            return await _domain_exists(c, name)

        return await self._read(op)

    # -- accounts ------------------------------------------------------------

    async def account_add(
        self, address: str, password: str, quota: int = 0, *, postmaster: bool = False
    ) -> Account:
        address = normalize_address(address)
        local, _, domain = address.rpartition("@")
        if not local or not domain:
            raise StoreError(f"not an address: {address}")
        password_hash = await asyncio.to_thread(self._hasher.hash, password)

        async def op(t: Tx) -> Account:
            c = t.conn
            if not await _domain_exists(c, domain):
                raise NotFound(f"{domain} is not a local domain (mailstack domain add {domain})")
            if await c.fetchval("SELECT 1 FROM aliases WHERE source = $1", address) is not None:
                raise StoreError(f"{address} is an alias; remove it first to make it an account")
            try:
                account_id = int(await c.fetchval(
                    "INSERT INTO accounts (address, password_hash, quota) VALUES ($1, $2, $3)"
                    " RETURNING id",
                    address, password_hash, quota,
                ))
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"account {address} exists") from None
            t.change_directory()
            for name, special_use in DEFAULT_MAILBOXES:
                await create_mailbox(t, account_id, name, special_use)
                await c.execute("INSERT INTO subscriptions VALUES ($1, $2)", account_id, name)
            if postmaster and not await _resolve(c, f"postmaster@{domain}", 0):
                # RFC 5321 §4.5.1: postmaster@ every domain reaches someone.
                await c.execute("DELETE FROM aliases WHERE source = $1", f"postmaster@{domain}")
                await _insert_alias(c, f"postmaster@{domain}", address)
            return Account(account_id, address, quota, 0)

        return await self._write(op)

    async def account_remove(self, address: str) -> None:
        address = normalize_address(address)

        async def op(t: Tx) -> None:
            c = t.conn
            account_id = await c.fetchval("SELECT id FROM accounts WHERE address = $1", address)
            if account_id is None:
                raise NotFound(f"no account {address}")
            for row in await c.fetch("SELECT id FROM mailboxes WHERE account_id = $1", account_id):
                await drop_mailbox(t, int(row[0]))
            for table in (
                "subscriptions", "email_tombstones", "mailbox_tombstones", "thread_keys",
                "tokens", "records",
            ):
                await c.execute(f"DELETE FROM {table} WHERE account_id = $1", account_id)
            await c.execute("DELETE FROM acl WHERE identifier = $1", address)
            await c.execute("DELETE FROM metadata WHERE owner_id = $1", account_id)
            await c.execute("DELETE FROM accounts WHERE id = $1", account_id)
            await c.execute("DELETE FROM aliases WHERE target = $1", address)
            t.change_directory()

        await self._write(op)

    async def account_get(self, address: str) -> Account | None:
        address = normalize_address(address)

        async def op(c: Any) -> Account | None:
            row = await c.fetchrow(_ACCOUNT + " WHERE address = $1", address)
            return account_from_row(row) if row else None

        return await self._read(op)

    async def account_list(self, domain: str | None = None) -> list[Account]:
        async def op(c: Any) -> list[Account]:
            if domain:
                rows = await c.fetch(
                    _ACCOUNT + " WHERE address LIKE $1 ORDER BY address",
                    like_suffix(f"@{domain.lower()}"),
                )
            else:
                rows = await c.fetch(_ACCOUNT + " ORDER BY address")
            return [account_from_row(r) for r in rows]

        return await self._read(op)

    async def set_password(self, address: str, password: str) -> None:
        address = normalize_address(address)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)

        async def op(t: Tx) -> None:
            done = await t.conn.fetchval(
                "UPDATE accounts SET password_hash = $1 WHERE address = $2 RETURNING 1",
                password_hash, address,
            )
            if done is None:
                raise NotFound(f"no account {address}")

        await self._write(op)

    async def account_set(
        self,
        address: str,
        *,
        quota: int | None = None,
        admin: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        address = normalize_address(address)
        changes = {"quota": quota, "admin": admin, "disabled": disabled}
        given = {name: value for name, value in changes.items() if value is not None}

        async def op(t: Tx) -> Account:
            for name, value in given.items():
                await t.conn.execute(
                    f"UPDATE accounts SET {name} = $1 WHERE address = $2", value, address
                )
            row = await t.conn.fetchrow(_ACCOUNT + " WHERE address = $1", address)
            if row is None:
                raise NotFound(f"no account {address}")
            if given:
                t.change_directory()
            return account_from_row(row)

        return await self._write(op)

    async def authenticate(self, address: str, password: str) -> Account | None:
        found = await self.account_credentials(address)
        if found is None:
            return None
        account, password_hash = found
        try:
            await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return account

    async def account_credentials(self, address: str) -> tuple[Account, str] | None:
        address = normalize_address(address)

        async def op(c: Any) -> tuple[Account, str] | None:
            row = await c.fetchrow(
                f"SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE address = $1",
                address,
            )
            return (account_from_row(row), str(row[6])) if row else None

        return await self._read(op)

    # -- aliases -------------------------------------------------------------

    async def alias_add(self, source: str, target: str) -> None:
        source, target = normalize_address(source), normalize_address(target)

        async def op(t: Tx) -> None:
            await _insert_alias(t.conn, source, target)
            t.change_directory()

        await self._write(op)

    async def alias_remove(self, source: str, target: str | None = None) -> None:
        source = normalize_address(source)

        async def op(t: Tx) -> None:
            if target is None:
                gone = await t.conn.fetch(
                    "DELETE FROM aliases WHERE source = $1 RETURNING 1", source
                )
            else:
                gone = await t.conn.fetch(
                    "DELETE FROM aliases WHERE source = $1 AND target = $2 RETURNING 1",
                    source, normalize_address(target),
                )
            if not gone:
                raise NotFound(f"no alias {source}")
            t.change_directory()

        await self._write(op)

    async def alias_list(self) -> list[Alias]:
        async def op(c: Any) -> list[Alias]:
            rows = await c.fetch("SELECT source, target FROM aliases ORDER BY 1, 2")
            return [Alias(str(r[0]), str(r[1])) for r in rows]

        return await self._read(op)

    # -- recipient resolution ---------------------------------------------------

    async def resolve_recipient(self, address: str) -> list[Account]:
        address = normalize_address(address)

        async def op(c: Any) -> list[Account]:
            return await _resolve(c, address, 0)

        return await self._read(op)

    async def directory_version(self) -> int | None:
        return await self._directory_version()

    async def resolve_local(self, address: str) -> list[Account] | None:
        """Every RCPT asks this, so answers are kept until the directory
        version says that some node (or the CLI) changed a domain, account
        or alias."""
        address = normalize_address(address)
        version = await self._directory_version()
        if version == self._recipients_version:
            try:
                return self._recipients[address]
            except KeyError:
                pass
        else:
            self._recipients.clear()
            self._recipients_version = version
        found = await self._resolve_local(address)
        # Kept only under the version read before it (another call may have
        # seen a newer one meanwhile); an answer newer than its version goes
        # when the version is next seen to move.
        if version == self._recipients_version:
            if len(self._recipients) >= RECIPIENTS_KEPT:
                self._recipients.clear()
            self._recipients[address] = found
        return found

    async def _directory_version(self) -> int:
        """The directory version, read after the call began (so a change
        committed before it is seen), but shared: calls that come while a
        read is on its way wait for the next one, which all of them share.
        At most one read is out at a time, however many RCPTs come at once,
        and none is answered from a read older than itself."""
        if self._version_next is None:
            self._version_next = asyncio.get_running_loop().create_future()
            # Nobody may be left to look at an error: say it was seen.
            self._version_next.add_done_callback(_seen)
            if self._version_reader is None:
                self._version_reader = asyncio.create_task(self._read_versions())
        return int(await asyncio.shield(self._version_next))

    async def _read_versions(self) -> None:
        try:
            while self._version_next is not None:
                waiting, self._version_next = self._version_next, None
                try:
                    waiting.set_result(int(await self._read_value(DIRECTORY_VERSION)))
                except Exception as exc:
                    waiting.set_exception(exc)
        finally:
            self._version_reader = None

    async def _resolve_local(self, address: str) -> list[Account] | None:
        domain = address.rpartition("@")[2]

        async def op(c: Any) -> list[Account] | None:
            if not await _domain_exists(c, domain):
                return None
            return await _resolve(c, address, 0)

        return await self._read(op)


async def _resolve(c: Any, address: str, depth: int) -> list[Account]:
    if depth > ALIAS_DEPTH:
        return []
    row = await c.fetchrow(_ACCOUNT + " WHERE address = $1", address)
    if row:
        return [account_from_row(row)]
    select = "SELECT target FROM aliases WHERE source = $1 ORDER BY target"
    targets = [str(r[0]) for r in await c.fetch(select, address)]
    local, _, domain = address.rpartition("@")
    if not targets and SUBADDRESS_SEPARATOR in local:
        base = local.split(SUBADDRESS_SEPARATOR, 1)[0]
        if base:
            found = await _resolve(c, f"{base}@{domain}", depth + 1)
            if found:
                return found
    if not targets:
        targets = [str(r[0]) for r in await c.fetch(select, f"@{domain}")]
    accounts: dict[int, Account] = {}
    for target in targets:
        if target == address:
            continue
        for account in await _resolve(c, target, depth + 1):
            accounts.setdefault(account.id, account)
    return list(accounts.values())
