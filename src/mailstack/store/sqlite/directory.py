"""The directory part of the SQLite store: domains, accounts, aliases and
recipient resolution, with the recipient answers kept between directory
changes (see ``resolve_local`` and the directory mark in ``marks``)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

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
from mailstack.store.sqlite.engine import Engine, WriteConnection
from mailstack.store.sqlite.keys import insert_key
from mailstack.store.sqlite.mailboxes import create_mailbox, drop_mailbox
from mailstack.store.sqlite.marks import mark_version
from mailstack.store.sqlite.zones import add_to_zone
from mailstack.store.sqltext import like_suffix

ACCOUNT_COLUMNS = "id, address, quota, used, admin, disabled"


def account_from_row(row: Sequence[Any]) -> Account:
    """An Account from the ACCOUNT_COLUMNS of a row (booleans kept as 0/1)."""
    return Account(int(row[0]), str(row[1]), int(row[2]), int(row[3]), bool(row[4]), bool(row[5]))


# resolve_local keeps at most this many answers (a dictionary attack on RCPT
# must not grow memory without bound), then starts over.
RECIPIENTS_KEPT = 10_000


def _domain_exists(c: sqlite3.Connection, domain: str) -> bool:
    return c.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone() is not None


def _account_exists(c: sqlite3.Connection, address: str) -> bool:
    return c.execute("SELECT 1 FROM accounts WHERE address = ?", (address,)).fetchone() is not None


def _is_alias_source(c: sqlite3.Connection, address: str) -> bool:
    return c.execute("SELECT 1 FROM aliases WHERE source = ?", (address,)).fetchone() is not None


def _insert_domain(c: WriteConnection, name: str) -> None:
    try:
        c.execute("INSERT INTO domains (name) VALUES (?)", (name,))
    except sqlite3.IntegrityError:
        raise AlreadyExists(f"domain {name} exists") from None
    c.change_directory()


def _insert_alias(c: WriteConnection, source: str, target: str) -> None:
    domain = source.rpartition("@")[2]
    if not _domain_exists(c, domain):
        raise NotFound(f"{domain} is not a local domain")
    if not _domain_exists(c, target.rpartition("@")[2]):
        raise StoreError(
            "an alias target must be a local address (forwarding to other domains "
            "arrives with the outbound queue)"
        )
    if _account_exists(c, source):
        # The account would always win (see _resolve): the alias would be dead.
        raise StoreError(f"{source} is an account; an alias source must not be one")
    try:
        c.execute("INSERT INTO aliases VALUES (?, ?)", (source, target))
    except sqlite3.IntegrityError:
        raise AlreadyExists(f"alias {source} -> {target} exists") from None
    c.change_directory()


class DirectoryPart(Engine):
    _hasher: PasswordHasher
    # resolve_local's answers, valid while the directory mark stays the same.
    _recipients: dict[str, list[Account] | None]
    _recipients_mark: int | None

    # -- domains -------------------------------------------------------------

    async def domain_add(self, name: str) -> None:
        name = name.strip().lower().rstrip(".")

        def op(c: WriteConnection) -> None:
            _insert_domain(c, name)

        await self._write(op)

    async def domain_create(self, new: NewDomain) -> dict[str, int]:
        name = new.name.strip().lower().rstrip(".")
        now = int(time.time())
        keys = [canonical_key(key, key.created or now) for key in new.dkim_keys]
        if any(key.domain != name for key in keys):
            raise StoreError(f"the DKIM keys of a new domain are {name}'s")
        postmaster = normalize_address(new.postmaster) if new.postmaster else None

        def op(c: WriteConnection) -> dict[str, int]:
            _insert_domain(c, name)
            for key in keys:
                insert_key(c, key)
            if postmaster is not None:
                _insert_alias(c, f"postmaster@{name}", postmaster)
            return {addition.origin: add_to_zone(c, addition) for addition in new.zones}

        return await self._write(op)

    async def domain_remove(self, name: str) -> None:
        name = name.strip().lower().rstrip(".")

        def op(c: WriteConnection) -> None:
            users = c.execute(
                "SELECT count(*) FROM accounts WHERE address LIKE ? ESCAPE '\\'",
                (like_suffix(f"@{name}"),),
            ).fetchone()[0]
            if users:
                raise StoreError(f"domain {name} still has {users} account(s)")
            if c.execute("DELETE FROM domains WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no domain {name}")
            c.execute(
                "DELETE FROM aliases WHERE source LIKE ? ESCAPE '\\'", (like_suffix(f"@{name}"),)
            )
            c.change_directory()

        await self._write(op)

    async def domain_list(self) -> list[str]:
        return await self._read(
            lambda c: [r[0] for r in c.execute("SELECT name FROM domains ORDER BY name")]
        )

    async def is_local_domain(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return await self._read(lambda c: _domain_exists(c, name))

    # -- accounts ------------------------------------------------------------

    async def account_add(
        self, address: str, password: str, quota: int = 0, *, postmaster: bool = False
    ) -> Account:
        address = normalize_address(address)
        local, _, domain = address.rpartition("@")
        if not local or not domain:
            raise StoreError(f"not an address: {address}")
        password_hash = await asyncio.to_thread(self._hasher.hash, password)

        def op(c: WriteConnection) -> Account:
            if not _domain_exists(c, domain):
                raise NotFound(f"{domain} is not a local domain (mailstack domain add {domain})")
            if _is_alias_source(c, address):
                raise StoreError(f"{address} is an alias; remove it first to make it an account")
            try:
                cur = c.execute(
                    "INSERT INTO accounts (address, password_hash, quota) VALUES (?, ?, ?)",
                    (address, password_hash, quota),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"account {address} exists") from None
            account_id = cur.lastrowid
            assert account_id is not None
            for name, special_use in DEFAULT_MAILBOXES:
                create_mailbox(c, account_id, name, special_use)
                c.execute("INSERT INTO subscriptions VALUES (?, ?)", (account_id, name))
            c.change_directory()
            if postmaster and not _resolve(c, f"postmaster@{domain}", 0):
                # RFC 5321 §4.5.1: postmaster@ every domain reaches someone.
                c.execute(
                    "DELETE FROM aliases WHERE source = ?", (f"postmaster@{domain}",)
                )
                _insert_alias(c, f"postmaster@{domain}", address)
            return Account(account_id, address, quota, 0)

        return await self._write(op)

    async def account_remove(self, address: str) -> None:
        address = normalize_address(address)

        def op(c: WriteConnection) -> None:
            row = c.execute("SELECT id FROM accounts WHERE address = ?", (address,)).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            for (mailbox_id,) in c.execute(
                "SELECT id FROM mailboxes WHERE account_id = ?", (row[0],)
            ).fetchall():
                drop_mailbox(c, mailbox_id)
            for table in (
                "subscriptions", "email_tombstones", "mailbox_tombstones", "thread_keys",
                "tokens", "records",
            ):
                c.execute(f"DELETE FROM {table} WHERE account_id = ?", (row[0],))
            c.execute("DELETE FROM acl WHERE identifier = ?", (address,))
            c.execute("DELETE FROM metadata WHERE owner_id = ?", (row[0],))
            c.execute("DELETE FROM accounts WHERE id = ?", (row[0],))
            c.execute("DELETE FROM aliases WHERE target = ?", (address,))
            c.change_directory()

        await self._write(op)

    async def account_get(self, address: str) -> Account | None:
        address = normalize_address(address)

        def op(c: sqlite3.Connection) -> Account | None:
            row = c.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?", (address,)
            ).fetchone()
            return account_from_row(row) if row else None

        return await self._read(op)

    async def account_list(self, domain: str | None = None) -> list[Account]:
        def op(c: sqlite3.Connection) -> list[Account]:
            sql = f"SELECT {ACCOUNT_COLUMNS} FROM accounts"
            args: tuple[str, ...] = ()
            if domain:
                sql += " WHERE address LIKE ? ESCAPE '\\'"
                args = (like_suffix(f"@{domain.lower()}"),)
            return [account_from_row(r) for r in c.execute(sql + " ORDER BY address", args)]

        return await self._read(op)

    async def set_password(self, address: str, password: str) -> None:
        address = normalize_address(address)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)

        def op(c: WriteConnection) -> None:
            cur = c.execute(
                "UPDATE accounts SET password_hash = ? WHERE address = ?", (password_hash, address)
            )
            if cur.rowcount == 0:
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

        def op(c: WriteConnection) -> Account:
            for name, value in given.items():
                c.execute(f"UPDATE accounts SET {name} = ? WHERE address = ?", (value, address))
            row = c.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?", (address,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            if given:
                c.change_directory()
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

        def op(c: sqlite3.Connection) -> tuple[Account, str] | None:
            row = c.execute(
                f"SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE address = ?",
                (address,),
            ).fetchone()
            return (account_from_row(row[:6]), str(row[6])) if row else None

        return await self._read(op)

    # -- aliases -------------------------------------------------------------

    async def alias_add(self, source: str, target: str) -> None:
        source, target = normalize_address(source), normalize_address(target)

        def op(c: WriteConnection) -> None:
            _insert_alias(c, source, target)

        await self._write(op)

    async def alias_remove(self, source: str, target: str | None = None) -> None:
        source = normalize_address(source)

        def op(c: WriteConnection) -> None:
            if target is None:
                cur = c.execute("DELETE FROM aliases WHERE source = ?", (source,))
            else:
                cur = c.execute(
                    "DELETE FROM aliases WHERE source = ? AND target = ?",
                    (source, normalize_address(target)),
                )
            if cur.rowcount == 0:
                raise NotFound(f"no alias {source}")
            c.change_directory()

        await self._write(op)

    async def alias_list(self) -> list[Alias]:
        return await self._read(
            lambda c: [
                Alias(*r) for r in c.execute("SELECT source, target FROM aliases ORDER BY 1, 2")
            ]
        )

    # -- recipient resolution ---------------------------------------------------

    async def resolve_recipient(self, address: str) -> list[Account]:
        address = normalize_address(address)
        return await self._read(lambda c: _resolve(c, address, 0))

    async def directory_version(self) -> int | None:
        return mark_version(self.directory_mark)

    async def resolve_local(self, address: str) -> list[Account] | None:
        """Every RCPT asks this, so answers are kept until the directory mark
        says that some store (this process's or another's, such as the CLI)
        changed a domain, account or alias."""
        address = normalize_address(address)
        mark = mark_version(self.directory_mark)
        if mark is not None and mark == self._recipients_mark:
            try:
                return self._recipients[address]
            except KeyError:
                pass
        else:
            self._recipients.clear()
            self._recipients_mark = mark
        domain = address.rpartition("@")[2]

        def op(c: sqlite3.Connection) -> list[Account] | None:
            if not _domain_exists(c, domain):
                return None
            return _resolve(c, address, 0)

        found = await self._read(op)
        if mark is not None and mark == self._recipients_mark:
            if len(self._recipients) >= RECIPIENTS_KEPT:
                self._recipients.clear()
            self._recipients[address] = found
        return found


def _resolve(c: sqlite3.Connection, address: str, depth: int) -> list[Account]:
    if depth > ALIAS_DEPTH:
        return []
    row = c.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?", (address,)
    ).fetchone()
    if row:
        return [account_from_row(row)]
    targets = [r[0] for r in c.execute("SELECT target FROM aliases WHERE source = ?", (address,))]
    local, _, domain = address.rpartition("@")
    if not targets and SUBADDRESS_SEPARATOR in local:
        base = local.split(SUBADDRESS_SEPARATOR, 1)[0]
        if base:
            found = _resolve(c, f"{base}@{domain}", depth + 1)
            if found:
                return found
    if not targets:
        targets = [
            r[0] for r in c.execute("SELECT target FROM aliases WHERE source = ?", (f"@{domain}",))
        ]
    accounts: dict[int, Account] = {}
    for target in targets:
        if target == address:
            continue
        for account in _resolve(c, target, depth + 1):
            accounts.setdefault(account.id, account)
    return list(accounts.values())
