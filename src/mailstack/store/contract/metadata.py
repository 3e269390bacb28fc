"""Server and mailbox annotations (RFC 5464 METADATA): entries named
``/private/...`` (one user's own) and ``/shared/...`` (everyone's who may
read the mailbox), each with an octet value.

Entries are kept by mailbox id, so they follow a mailbox through RENAME and
go when it is deleted; ``SERVER_ENTRIES`` (0) stands for the server itself. A
``/private/`` entry belongs to the account that set it and is seen by no
other; the private entries of an account go when the account is removed.
The store takes names as given (the protocol lower-cases and checks them)
and does not look inside values.

Changes wake listeners (the hook for NOTIFY, RFC 5465 §5.8 and §5.9): a
mailbox's entries changing wakes ``listen(mailbox_id)`` and the mailbox
owner's ``listen_account``; a server entry wakes the setter's
``listen_account``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from mailstack.errors import StoreError

__all__ = [
    "PRIVATE", "SERVER_ENTRIES", "SHARED", "MetadataStore", "TooManyEntries", "entry_owner",
]

SERVER_ENTRIES = 0
PRIVATE = "/private/"
SHARED = "/shared/"


def entry_owner(name: str, account_id: int) -> int:
    """What a backend keys an entry's owner by: the account for a
    ``/private/`` entry, 0 for a ``/shared/`` one."""
    return account_id if name.startswith(PRIVATE) else 0


class TooManyEntries(StoreError):
    """The mailbox (or the server) would have more entries than allowed."""


class MetadataStore(Protocol):
    async def metadata_get(self, mailbox_id: int, account_id: int) -> dict[str, bytes]:
        """The entries of the mailbox (``SERVER_ENTRIES``: of the server) that the
        account sees: every ``/shared/`` one and its own ``/private/`` ones."""
        ...

    async def metadata_get_many(
        self, mailbox_ids: Collection[int], account_id: int
    ) -> dict[int, dict[str, bytes]]:
        """``metadata_get`` of several mailboxes in one read (NOTIFY compares
        them at each change): by mailbox id, one with no entries absent."""
        ...

    async def metadata_set(
        self,
        mailbox_id: int,
        account_id: int,
        entries: Mapping[str, bytes | None],
        *,
        max_entries: int | None = None,
    ) -> None:
        """Set (a value) or remove (None) entries, all or none. Raises
        NotFound when the mailbox does not exist, TooManyEntries when the
        entries the account sees there would number more than
        ``max_entries``."""
        ...
