"""The directory part of the store contract: domains, accounts, aliases and
recipient resolution.

Addresses are compared case-insensitively (local parts folded too, as most
MTAs do); passwords are kept as Argon2id hashes (RFC 9106), never as text.
A recipient resolves through its account, its aliases, its sub-address
(``bob+tag@`` is ``bob@``) and its domain's catch-all alias (``@domain``).

An address is an account or the source of aliases, never both: an alias
whose source is an account would never be followed, so it is refused, and so
is an account whose address is an alias's source.

``domain_create`` makes a mail domain whole in one transaction (all or
nothing): the domain, its DKIM keys, its records in the zones the node serves
and its ``postmaster@`` alias. RFC 5321 §4.5.1 requires ``postmaster`` at
every domain: the alias goes to the address the caller names, else (with
``account_add(..., postmaster=True)``) to the domain's first account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailstack.store.contract.keys import DkimKey
from mailstack.store.contract.zones import ZoneRecord

# How deep aliases are followed, and the separator of a sub-address.
ALIAS_DEPTH = 8
SUBADDRESS_SEPARATOR = "+"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str
    quota: int  # octets; 0 = unlimited
    used: int
    # The admin role: the admin pages and /admin/api (mailstack.admin).
    admin: bool = False
    # A disabled account logs in nowhere but still receives mail.
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Alias:
    source: str  # an address, or "@domain" for a catch-all
    target: str


@dataclass(frozen=True, slots=True)
class ZoneAddition:
    """Records to add to a managed zone, created (with ``nameservers`` as its
    NS and ``hostmaster`` in its SOA) if the node does not serve it yet.
    Records the zone already has are not added twice."""

    origin: str
    records: Sequence[ZoneRecord]
    nameservers: Sequence[str]
    hostmaster: str


@dataclass(frozen=True, slots=True)
class NewDomain:
    """A mail domain and everything made with it (see ``domain_create``)."""

    name: str
    dkim_keys: Sequence[DkimKey] = ()
    zones: Sequence[ZoneAddition] = ()
    # The target of the postmaster@name alias; None: the first account's
    # (``account_add(..., postmaster=True)``).
    postmaster: str | None = None


def normalize_address(address: str) -> str:
    """Domains are case-insensitive; we fold local parts too (as most MTAs do)."""
    return address.strip().lower()


class DirectoryStore(Protocol):
    # Domains
    async def domain_add(self, name: str) -> None: ...
    async def domain_remove(self, name: str) -> None: ...
    async def domain_list(self) -> list[str]: ...
    async def is_local_domain(self, name: str) -> bool: ...
    async def domain_create(self, new: NewDomain) -> dict[str, int]:
        """Add the domain, its DKIM keys, its zone records and its postmaster
        alias in one transaction: all of it or, on any error, none. Returns
        the new serial of each zone changed."""
        ...

    # Accounts
    async def account_add(
        self, address: str, password: str, quota: int = 0, *, postmaster: bool = False
    ) -> Account:
        """A new account with the default mailboxes. ``postmaster``: when
        postmaster@ its domain reaches no one yet, alias it to this account
        in the same transaction."""
        ...

    async def account_remove(self, address: str) -> None: ...
    async def account_get(self, address: str) -> Account | None: ...
    async def account_list(self, domain: str | None = None) -> list[Account]: ...
    async def set_password(self, address: str, password: str) -> None: ...
    async def account_set(
        self,
        address: str,
        *,
        quota: int | None = None,
        admin: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        """Change what is given (not None) of an account; the account as it
        now is. NotFound when there is no such account."""
        ...

    async def authenticate(self, address: str, password: str) -> Account | None: ...
    async def directory_version(self) -> int | None:
        """A number that moves whenever a domain, account or alias changes,
        in this process or another (the CLI, another node); None when it
        cannot be read now (then assume it moved)."""
        ...

    async def account_credentials(self, address: str) -> tuple[Account, str] | None:
        """The account and its stored password hash, or None: lets a cache of
        verified logins notice a changed password or a removed account."""
        ...

    # Aliases and recipient resolution
    async def alias_add(self, source: str, target: str) -> None: ...
    async def alias_remove(self, source: str, target: str | None = None) -> None: ...
    async def alias_list(self) -> list[Alias]: ...
    async def resolve_recipient(self, address: str) -> list[Account]:
        """The accounts a local address delivers to: the account itself, its
        aliases (followed up to ALIAS_DEPTH), sub-addresses and a domain's
        catch-all alias, in that order of preference."""
        ...

    async def resolve_local(self, address: str) -> list[Account] | None:
        """resolve_recipient in one round trip, None when the domain is not
        local; asked at every RCPT, so a backend may keep answers until the
        directory changes (the quota and usage in them may then be old:
        deliveries check those when they commit)."""
        ...
