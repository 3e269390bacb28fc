"""The account-wide part of the store contract: what JMAP (RFC 8620, RFC
8621) and IMAP OBJECTID (RFC 8474) see of an account as a whole.

**One change counter per account.** Every MODSEQ given to a message, a
mailbox or a record of an account comes from one counter that the account
keeps (so a mailbox's HIGHESTMODSEQ still only grows, as RFC 7162 asks, but
values may jump). An account's *state* is that counter: a JMAP state string
is its decimal form, and ``*_changes(since)`` lists what changed after it.

**Emails and threads.** Every message has an ``email_id`` unique in the
store and kept across MOVE; a copy is a new email. ``thread_id`` is given at
delivery or append from the ``EmailKeys`` the ``ParseCodec`` reads out of the
parse (see ``messages.EmailKeys``), never recomputed per query. A message
is in exactly one mailbox (JMAP ``maxMailboxesPerEmail`` is 1).

**Tombstones.** Destroyed emails, mailboxes and records are remembered with
the MODSEQ of their destruction, so changes can say ``destroyed``. A backend
may forget tombstones older than some MODSEQ; ``*_changes`` from before that
returns None (JMAP ``cannotCalculateChanges``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailstack.store.contract.changes import Listener
from mailstack.store.contract.messages import Mailbox


@dataclass(frozen=True, slots=True)
class EmailMeta:
    """One email of an account, without its bytes."""

    email_id: int
    thread_id: int
    mailbox_id: int
    uid: int
    flags: frozenset[str]
    internaldate: datetime.datetime
    size: int
    modseq: int


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed after a state, oldest change first, at most ``limit``
    ids in all (``has_more`` then; ``state`` is the state up to which these
    lists are complete, which the next call passes as ``since``). An id
    created and destroyed after ``since`` is in neither list (RFC 8620 §5.2
    allows it in destroyed only; leaving it out is also allowed); an id
    created and later updated is in ``created`` only."""

    state: int
    created: list[int]
    updated: list[int]
    destroyed: list[int]
    has_more: bool = False


@dataclass(frozen=True, slots=True)
class MailboxChanges(Changes):
    """Mailbox changes; ``counts_only``: every updated mailbox changed only
    in its counts (JMAP ``updatedProperties`` then names the four counts)."""

    counts_only: bool = False


@dataclass(frozen=True, slots=True)
class MailboxCounts:
    """RFC 8621 §2: totalEmails, unreadEmails (neither \\Seen nor \\Draft:
    "$seen" and "$draft"), totalThreads, unreadThreads (threads with an
    unread email in this mailbox: the RFC's "simplest solution")."""

    total_emails: int
    unread_emails: int
    total_threads: int
    unread_threads: int


class AccountStore(Protocol):
    async def account_state(self, account_id: int) -> int:
        """The account's change counter: the highest MODSEQ it has given."""
        ...

    async def emails(self, account_id: int, mailbox_id: int | None = None) -> list[EmailMeta]:
        """Every email of the account (or of one of its mailboxes), in one
        consistent read, ordered by email_id."""
        ...

    async def emails_by_id(self, account_id: int, email_ids: Sequence[int]) -> dict[int, EmailMeta]:
        """The account's emails among these ids; others are left out."""
        ...

    async def thread_emails(
        self, account_id: int, thread_ids: Sequence[int]
    ) -> dict[int, list[EmailMeta]]:
        """Each thread's emails, oldest internaldate first (RFC 8621 §3);
        threads with no email are left out."""
        ...

    async def email_changes(
        self, account_id: int, since: int, limit: int | None = None
    ) -> Changes | None:
        """Emails created, updated (flags, moved) and destroyed after since;
        None when since is newer than the state or older than what is kept."""
        ...

    async def thread_changes(
        self, account_id: int, since: int, limit: int | None = None
    ) -> Changes | None:
        """Threads whose emails changed after since: created (its first email
        is new), updated (emails added, removed or changed) or destroyed (no
        email left)."""
        ...

    async def mailbox_changes(
        self, account_id: int, since: int, limit: int | None = None
    ) -> MailboxChanges | None:
        """Mailboxes created, renamed, (un)subscribed, re-sorted or whose
        counts changed, and destroyed, after since."""
        ...

    async def mailbox_counts(self, account_id: int) -> dict[int, MailboxCounts]:
        """The counts of every mailbox of the account, in one read."""
        ...

    async def mailbox_update(
        self,
        account_id: int,
        mailbox_id: int,
        *,
        name: str | None = None,
        sort_order: int | None = None,
    ) -> Mailbox:
        """Rename (as ``mailbox_rename``, inferiors included) and/or set the
        JMAP sortOrder; the mailbox keeps its id. Raises NotFound / Exists."""
        ...

    def listen_account(self, account_id: int) -> Listener:
        """Woken after any change to the account (messages, mailboxes,
        records), from this node or another (JMAP push, RFC 8620 §7)."""
        ...
