"""The Store protocol and its models: the one contract every backend keeps.

Every write that a protocol acknowledges is committed and on stable storage
(fsync) when the awaited call returns. Backends: `sqlite.SqliteStore` (the
embedded default); a PostgreSQL backend must pass the same suite in
tests/contract/.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from mailstack.mime import ParsedMessage

# RFC 6154 special-use mailboxes that every new account gets.
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)

FlagMode = Literal["add", "remove", "replace"]


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str
    quota: int  # octets; 0 = unlimited
    used: int


@dataclass(frozen=True, slots=True)
class Alias:
    source: str  # an address, or "@domain" for a catch-all
    target: str


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    account_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highest_modseq: int
    special_use: str | None
    subscribed: bool


@dataclass(frozen=True, slots=True)
class MessageMeta:
    uid: int
    flags: frozenset[str]
    internaldate: datetime.datetime
    size: int
    modseq: int


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    messages: int
    unseen: int
    deleted: int
    size: int
    uidnext: int
    uidvalidity: int
    highest_modseq: int


@dataclass(frozen=True, slots=True)
class MailboxSync:
    """One consistent snapshot for an IMAP session catching up (RFC 3501 §5.2,
    RFC 7162): the mailbox's HIGHESTMODSEQ, its \\Recent mark (UIDs from
    ``recent_uid`` on are not yet claimed by any session), the messages
    changed after a MODSEQ and the UIDs expunged after it."""

    highest_modseq: int
    recent_uid: int
    changed: list[MessageMeta]
    vanished: list[int]


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """One mailbox a delivered message goes into; `prefix` holds the
    per-recipient trace lines (Return-Path:, Delivered-To:) in front of the
    shared message bytes."""

    account_id: int
    mailbox: str = "INBOX"
    prefix: bytes = b""
    flags: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class FlagResult:
    changed: list[MessageMeta]
    # CONDSTORE (RFC 7162 §3.2): UIDs whose MODSEQ was above UNCHANGEDSINCE
    modified: list[int]


class Listener(Protocol):
    async def wait(self, timeout: float | None = None) -> bool:
        """True when the mailbox changed since the last wait (or creation)."""
        ...

    def close(self) -> None: ...


class Store(Protocol):
    # Lifecycle
    async def close(self) -> None: ...

    # Domains
    async def domain_add(self, name: str) -> None: ...
    async def domain_remove(self, name: str) -> None: ...
    async def domain_list(self) -> list[str]: ...
    async def is_local_domain(self, name: str) -> bool: ...

    # Accounts
    async def account_add(self, address: str, password: str, quota: int = 0) -> Account: ...
    async def account_remove(self, address: str) -> None: ...
    async def account_get(self, address: str) -> Account | None: ...
    async def account_list(self, domain: str | None = None) -> list[Account]: ...
    async def set_password(self, address: str, password: str) -> None: ...
    async def authenticate(self, address: str, password: str) -> Account | None: ...

    # Aliases and recipient resolution
    async def alias_add(self, source: str, target: str) -> None: ...
    async def alias_remove(self, source: str, target: str | None = None) -> None: ...
    async def alias_list(self) -> list[Alias]: ...
    async def resolve_recipient(self, address: str) -> list[Account]: ...
    async def resolve_local(self, address: str) -> list[Account] | None: ...

    # Mailboxes
    async def mailbox_list(self, account_id: int) -> list[Mailbox]: ...
    async def mailbox_get(self, account_id: int, name: str) -> Mailbox | None: ...
    async def mailbox_by_id(self, mailbox_id: int) -> Mailbox | None: ...
    async def mailbox_create(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox: ...
    async def mailbox_delete(self, account_id: int, name: str) -> None: ...
    async def mailbox_rename(self, account_id: int, old: str, new: str) -> None: ...
    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus: ...
    async def subscribe(self, account_id: int, name: str) -> None: ...
    async def unsubscribe(self, account_id: int, name: str) -> None: ...
    async def subscriptions(self, account_id: int) -> list[str]: ...

    # Messages
    async def deliver(
        self, raw: bytes, targets: Sequence[DeliveryTarget]
    ) -> list[tuple[int, int]]: ...
    async def deliver_some(
        self, raw: bytes, targets: Sequence[DeliveryTarget]
    ) -> list[tuple[int, int] | None]:
        """Like deliver(), but a target over its quota is left out (None in
        its place); raises QuotaExceeded only when no target had room."""
        ...
    async def append(
        self,
        mailbox_id: int,
        raw: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime.datetime | None = None,
    ) -> int: ...
    async def messages(self, mailbox_id: int) -> list[MessageMeta]: ...
    async def message_bytes(self, mailbox_id: int, uid: int) -> bytes: ...
    async def message_parsed(self, mailbox_id: int, uid: int) -> ParsedMessage: ...
    async def messages_parsed(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, ParsedMessage]: ...
    async def store_flags(
        self,
        mailbox_id: int,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: FlagMode,
        unchanged_since: int | None = None,
    ) -> FlagResult: ...
    async def expunge(
        self, mailbox_id: int, uids: Iterable[int] | None = None, *, require_deleted: bool = True
    ) -> list[int]: ...
    async def copy(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]: ...
    async def move(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]: ...
    async def claim_recent(self, mailbox_id: int) -> int: ...
    async def changes_since(
        self, mailbox_id: int, modseq: int
    ) -> tuple[list[MessageMeta], list[int]]: ...
    def listen(self, mailbox_id: int) -> Listener: ...
    async def messages_bytes(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        """The bytes of several messages in one round trip (POP3 read-ahead);
        UIDs that do not exist are left out."""
        ...
    async def mailbox_sync(self, mailbox_id: int, modseq: int) -> MailboxSync | None:
        """HIGHESTMODSEQ, the recent mark and the changes after modseq, read in
        one transaction; None when the mailbox no longer exists."""
        ...
    async def account_credentials(self, address: str) -> tuple[Account, str] | None:
        """The account and its stored password hash, or None: lets a cache of
        verified logins notice a changed password or a removed account."""
        ...
