"""Small per-account objects kept as JSON text with change tracking: JMAP
Identity, VacationResponse, EmailSubmission, PushSubscription (RFC 8620 §7.2,
RFC 8621 §6-8) and whatever else a protocol needs to keep per account.

A record is ``(account_id, kind, id) -> data``; ids are unique per store and
never reused. Every create, update and destroy takes a MODSEQ from the
account's counter (see ``accounts``), so ``record_changes`` works like
``email_changes``. The store does not look inside ``data``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailstack.store.contract.accounts import Changes


@dataclass(frozen=True, slots=True)
class Record:
    id: int
    account_id: int
    kind: str
    data: str  # JSON text
    modseq: int


class RecordStore(Protocol):
    async def record_create(self, account_id: int, kind: str, data: str) -> Record: ...
    async def record_update(self, account_id: int, kind: str, record_id: int, data: str) -> Record:
        """Replace the data; raises NotFound."""
        ...

    async def record_destroy(self, account_id: int, kind: str, record_id: int) -> bool: ...
    async def records(
        self, account_id: int, kind: str, ids: Sequence[int] | None = None
    ) -> list[Record]:
        """The account's records of this kind (those among ids), by id."""
        ...

    async def record_state(self, account_id: int, kind: str) -> int:
        """The highest MODSEQ a record of this kind was created, changed or
        destroyed at (0 if never): the JMAP state of that type."""
        ...

    async def record_changes(
        self, account_id: int, kind: str, since: int, limit: int | None = None
    ) -> Changes | None: ...
