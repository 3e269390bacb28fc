"""The mailbox and message part of the store contract (RFC 3501, RFC 6154,
RFC 7162).

Mailboxes per account: name, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the
subscription and the special use. Messages: a UID strictly ascending per
mailbox and never reused, flags, INTERNALDATE, size and MODSEQ; expunged UIDs
are remembered with their MODSEQ (QRESYNC). A message's bytes are kept once
however many recipients share them, each copy with its own trace prefix.

The store never parses a message. The caller hands it the parse with the
bytes (``mailstack.mime.parse_for_store``: encoded, not yet packed); the
``ParseCodec`` that opened the store packs it on the store's writer thread
and reads it back on a reader thread, so FETCH and SEARCH never re-parse and
the event loop never decodes.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

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

Parsed = TypeVar("Parsed")
Parsed_co = TypeVar("Parsed_co", covariant=True)


def new_flags(flags: frozenset[str], given: frozenset[str], mode: FlagMode) -> frozenset[str]:
    """A message's flags after STORE FLAGS / +FLAGS / -FLAGS (RFC 3501 §6.4.6)."""
    if mode == "add":
        return flags | given
    if mode == "remove":
        return flags - given
    return given


def is_inbox(name: str) -> bool:
    return name.upper() == "INBOX"


def canonical_name(name: str) -> str:
    """RFC 3501 §5.1: INBOX is case-insensitive."""
    return "INBOX" if is_inbox(name) else name


class ParseCodec(Protocol[Parsed_co]):
    """How a store keeps a message's parse and reads it back; supplied by
    whoever opens the store (``mailstack.mime.PARSE_CODEC``)."""

    def pack(self, encoded: bytes) -> bytes:
        """What the store keeps of the caller's encoded parse (on the writer thread)."""
        ...

    def unpack(self, stored: bytes, prefix: bytes) -> Parsed_co:
        """The parse of ``prefix + raw`` from what ``pack`` kept of raw's
        (on a reader thread)."""
        ...

    def keys(self, encoded: bytes) -> EmailKeys:
        """What threading needs of the caller's encoded parse, or of what
        ``pack`` kept of one (on the writer thread): the store files each new
        message into a thread with them. Raises ValueError on a parse it
        cannot read."""
        ...

    def search_text(self, stored: bytes) -> tuple[str, str]:
        """What SEARCH matches of what ``pack`` kept: the top-level header
        as decoded ``Name: value`` lines, and the body's searchable text (on
        the writer thread: the full-text index keeps them). Raises
        ValueError on a parse it cannot read."""
        ...

    def prefix_text(self, prefix: bytes) -> str:
        """The decoded ``Name: value`` lines of a message's trace prefix
        (what ``unpack`` puts in front of the shared header)."""
        ...

    def sort_record(self, stored: bytes) -> bytes:
        """What SORT and THREAD read of a message, from what ``pack`` kept of
        its parse (on the writer thread): the store keeps it beside the
        message and gives it back by ``messages_sort_records``. Raises
        ValueError on a parse it cannot read."""
        ...


@dataclass(frozen=True, slots=True)
class EmailKeys:
    """What a message is threaded by (RFC 8621 §3, RFC 5256 §2.1): its
    Message-ID, the ids it refers to (In-Reply-To and References, without
    angle brackets) and its base subject. The store puts a new message in
    the thread of an earlier message of the same account that it refers to
    or that refers to it, when their base subjects agree; else in a new
    thread. A thread is never split or merged afterwards."""

    message_id: str | None
    references: tuple[str, ...]
    base_subject: str


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
    sort_order: int = 0  # JMAP sortOrder (RFC 8621 §2)


@dataclass(frozen=True, slots=True)
class MessageMeta:
    uid: int
    flags: frozenset[str]
    internaldate: datetime.datetime
    size: int
    modseq: int
    # Account-wide ids (JMAP Email and Thread ids, IMAP OBJECTID RFC 8474):
    # a message keeps its email_id when it is moved (MOVE, JMAP mailboxIds),
    # a copy gets a new one; thread_id is given at delivery from EmailKeys.
    email_id: int = 0
    thread_id: int = 0


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


class MailboxStore(Protocol):
    async def mailbox_list(self, account_id: int) -> list[Mailbox]: ...
    async def mailbox_get(self, account_id: int, name: str) -> Mailbox | None: ...
    async def mailbox_by_id(self, mailbox_id: int) -> Mailbox | None: ...
    async def mailbox_create(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox: ...
    async def mailbox_delete(self, account_id: int, name: str) -> None: ...
    async def mailbox_rename(self, account_id: int, old: str, new: str) -> None:
        """Rename a mailbox and its inferiors (delimiter "/"); renaming INBOX
        moves its messages to a new mailbox and leaves INBOX empty (RFC 3501
        §6.3.5)."""
        ...

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus: ...
    async def mailbox_sync(self, mailbox_id: int, modseq: int) -> MailboxSync | None:
        """HIGHESTMODSEQ, the recent mark and the changes after modseq, read in
        one transaction; None when the mailbox no longer exists."""
        ...

    async def subscribe(self, account_id: int, name: str) -> None: ...
    async def unsubscribe(self, account_id: int, name: str) -> None: ...
    async def subscriptions(self, account_id: int) -> list[str]: ...


class MessageStore(Protocol[Parsed]):
    async def deliver(
        self, raw: bytes, parsed: bytes, targets: Sequence[DeliveryTarget]
    ) -> list[tuple[int, int]]:
        """Keep raw once and file it into every target; (mailbox_id, uid) each.
        ``parsed`` is raw's parse, encoded (``mailstack.mime.parse_for_store``)."""
        ...

    async def deliver_some(
        self, raw: bytes, parsed: bytes, targets: Sequence[DeliveryTarget]
    ) -> list[tuple[int, int] | None]:
        """Like deliver(), but a target over its quota is left out (None in
        its place); raises QuotaExceeded only when no target had room."""
        ...

    async def append(
        self,
        mailbox_id: int,
        raw: bytes,
        parsed: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime.datetime | None = None,
    ) -> int: ...
    async def messages(self, mailbox_id: int) -> list[MessageMeta]: ...
    async def message_bytes(self, mailbox_id: int, uid: int) -> bytes: ...
    async def messages_bytes(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        """The bytes of several messages in one round trip (POP3 read-ahead);
        UIDs that do not exist are left out."""
        ...

    def message_chunks(
        self, mailbox_id: int, uid: int, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Octets ``start`` to ``end`` (the end by default) of the message as
        it is read back (its prefix, then the shared bytes), a bounded chunk
        at a time, each read in its own short read transaction: a slow reader
        holds neither the whole message in memory nor the WAL back. Raises
        NotFound before the first chunk, or between chunks when the message
        is expunged meanwhile."""
        ...

    async def message_parsed(self, mailbox_id: int, uid: int) -> Parsed: ...
    async def messages_parsed(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, Parsed]: ...
    async def search_text(self, mailbox_id: int, field: str, needle: str) -> set[int] | None:
        """The UIDs of the mailbox's messages whose searchable text holds
        ``needle`` as a case-insensitive (``casefold``) substring, from the
        full-text index kept at delivery (``store/fulltext.py``): ``field``
        "body" is the body text, "header" the decoded header lines (trace
        prefix included), "text" both, as IMAP SEARCH BODY and TEXT match
        them. None when the index cannot answer (a needle under three
        characters or holding a line break): the caller scans."""
    async def messages_sort_records(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, bytes]:
        """The SORT/THREAD records (``ParseCodec.sort_record``) made when
        the messages were kept, by UID; a UID that does not exist, or whose
        parse the codec could not read, is left out."""
        ...
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
    ) -> list[int]:
        """Remove messages; by default only those flagged \\Deleted (restricted
        to uids when given). Their UIDs are remembered with the MODSEQ."""
        ...

    async def copy(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]: ...
    async def move(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]: ...
    async def claim_recent(self, mailbox_id: int) -> int:
        """The first UID that is \\Recent for the calling session: messages
        from it up to UIDNEXT are recent to this session and to no other."""
        ...

    async def changes_since(
        self, mailbox_id: int, modseq: int
    ) -> tuple[list[MessageMeta], list[int]]:
        """Messages changed after modseq, and UIDs expunged after it (RFC 7162)."""
        ...

    async def message_savedates(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, datetime.datetime]:
        """RFC 8514 save dates of those of ``uids`` still there: when each
        message came into this mailbox (delivery, APPEND, COPY, MOVE); for a
        message kept from before save dates were, its internal date."""
        ...
