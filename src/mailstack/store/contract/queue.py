"""The outbound-queue part of the store contract (RFC 5321 §4.5.4 retry, RFC 3461 DSN data).

A queue entry is one message (its envelope sender, the RFC 3461 envelope
parameters RET and ENVID, and the bytes) with one row per recipient: its state,
the number of attempts, when the next attempt is due, the last reply and the
RFC 3461 NOTIFY/ORCPT parameters. Every change is committed and fsynced
(the store's group commit) before the awaited call returns, so an entry is
durable before the submission server says `250`, and a recipient marked
delivered is never sent again after a crash.

Times are POSIX seconds given by the caller (the queue's clock), never read
here, so the policy above can be tested with a fake clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Recipient states. A message leaves the queue when none of its recipients
# is QUEUED or HELD any more (the DSNs for the others were queued in the
# same commit). A HELD recipient is never due: an admin put it on hold
# (``queue_hold``) until released.
QUEUED = "queued"
DELIVERED = "delivered"
FAILED = "failed"
HELD = "held"


@dataclass(frozen=True, slots=True)
class NewRecipient:
    """A recipient to queue, with its RFC 3461 §4.1/§4.2 parameters (as received)."""

    address: str
    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class NewEntry:
    """Everything `queue_add` needs: the envelope, the bytes and the deadlines."""

    mail_from: str
    recipients: Sequence[NewRecipient]
    data: bytes
    now: float
    expires: float
    envid: str | None = None
    ret: str | None = None
    smtputf8: bool = False
    body: str | None = None  # "8BITMIME" or "7BIT" (RFC 6152), None when not given


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    id: int
    address: str
    state: str
    attempts: int
    next_attempt: float
    last_reply: str
    notify: str | None
    orcpt: str | None
    delay_notified: bool

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: int
    mail_from: str
    created: float
    expires: float
    envid: str | None
    ret: str | None
    smtputf8: bool
    body: str | None
    size: int
    recipients: tuple[QueuedRecipient, ...]

    def pending(self) -> list[QueuedRecipient]:
        return [r for r in self.recipients if r.state == QUEUED]


@dataclass(frozen=True, slots=True)
class RecipientUpdate:
    """The outcome of one attempt for one recipient.

    ``state`` is QUEUED (try again at ``next_attempt``), DELIVERED or FAILED;
    ``counted`` says whether this was a delivery attempt (a DSN-only change,
    such as noting that a delay warning went out, is not).
    """

    recipient_id: int
    state: str
    next_attempt: float = 0.0
    last_reply: str = ""
    counted: bool = True
    delay_notified: bool = False


class QueueStore(Protocol):
    async def queue_add(self, entry: NewEntry) -> int:
        """Queue a message for its recipients; durable when this returns.

        The id is never given to another entry of this store, even after
        this one is removed."""
        ...

    async def new_run_number(self) -> int:
        """A number this store never returned before (1, 2, ...), durable when
        this returns: a node takes one at start, so that the ids it gives
        messages ("accepted as 3-17") stay unique for the store's life."""
        ...

    async def queue_get(self, entry_id: int) -> QueueEntry: ...
    async def queue_data(self, entry_id: int) -> bytes: ...
    async def queue_list(self) -> list[QueueEntry]: ...
    async def queue_due(self, now: float, limit: int = 1000) -> list[QueueEntry]:
        """Entries with at least one queued recipient due at ``now``, oldest first.

        A store shared by several nodes claims them for the asking node: to
        the others, a claimed recipient shows due when its lease ends."""
        ...

    async def queue_next_due(self, after: float | None = None) -> float | None:
        """When the earliest queued recipient (due later than ``after``) is due;
        None when there is none."""
        ...

    async def queue_update(
        self, entry_id: int, updates: Sequence[RecipientUpdate], reports: Sequence[NewEntry] = ()
    ) -> list[int]:
        """Record attempt outcomes and queue the DSNs they cause, in one commit.

        When no recipient of the entry is left QUEUED (or HELD) the entry is removed.
        Returns the ids of the queued reports.
        """
        ...

    async def queue_retry(self, now: float, entry_id: int | None = None) -> int:
        """Make queued recipients (of one entry, or all) due at ``now``; how many."""
        ...

    async def queue_hold(self, entry_id: int, held: bool, now: float) -> int:
        """Hold the entry's QUEUED recipients (``held``: they are HELD, never
        due), or release its HELD ones (QUEUED again, due at ``now``); how
        many changed. NotFound when there is no such entry."""
        ...

    async def queue_remove(self, entry_id: int) -> None: ...
    def queue_mark(self) -> int | None:
        """A version that moves whenever any process (the CLI's `queue retry`)
        made queued mail due before its time; None when it cannot be told."""
        ...
