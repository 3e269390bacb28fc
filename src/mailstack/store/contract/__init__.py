"""The store contract: what every backend keeps, one module per part.

* ``directory``: domains, accounts (Argon2id hashes, quotas), aliases and
  recipient resolution;
* ``messages``: mailboxes (RFC 3501, RFC 6154 special use), messages with
  UIDs, flags and MODSEQs (RFC 7162), delivery, and the ``ParseCodec``
  through which the store keeps the parse a caller hands it;
* ``queue``: the outbound queue (RFC 5321 §4.5.4, RFC 3461);
* ``zones``: the DNS zones mailstack manages, with serials (RFC 1982) and the
  journal IXFR serves (RFC 1995);
* ``keys``: DKIM signing keys (RFC 6376, RFC 8463);
* ``changes``: "mailbox X changed" for IDLE and friends;
* ``accounts``: the account as a whole (one change counter, emails and
  threads by account-wide id, changes since a state): JMAP and OBJECTID;
* ``access``: bearer tokens and mailbox ACLs (sharing);
* ``records``: small per-account JSON objects with changes (JMAP
  Identity, VacationResponse, EmailSubmission, PushSubscription);
* ``metadata``: server and mailbox annotations (RFC 5464).

``Store`` composes them. Every write that a protocol acknowledges is
committed and on stable storage (fsync) when the awaited call returns. Every
backend passes the same suite, tests/contract/.
"""

from __future__ import annotations

from typing import Protocol

from mailstack.store.contract.access import ALL_RIGHTS, AccessStore, SharedMailbox, Token
from mailstack.store.contract.accounts import (
    AccountStore,
    Changes,
    EmailMeta,
    MailboxChanges,
    MailboxCounts,
)
from mailstack.store.contract.changes import ChangeStore, Listener
from mailstack.store.contract.directory import (
    Account,
    Alias,
    DirectoryStore,
    NewDomain,
    ZoneAddition,
)
from mailstack.store.contract.keys import DkimKey, KeyStore
from mailstack.store.contract.messages import (
    DEFAULT_MAILBOXES,
    DeliveryTarget,
    EmailKeys,
    FlagMode,
    FlagResult,
    Mailbox,
    MailboxStatus,
    MailboxStore,
    MailboxSync,
    MessageMeta,
    MessageStore,
    ParseCodec,
    Parsed,
)
from mailstack.store.contract.metadata import SERVER_ENTRIES, MetadataStore, TooManyEntries
from mailstack.store.contract.queue import (
    DELIVERED,
    FAILED,
    HELD,
    QUEUED,
    NewEntry,
    NewRecipient,
    QueuedRecipient,
    QueueEntry,
    QueueStore,
    RecipientUpdate,
)
from mailstack.store.contract.records import Record, RecordStore
from mailstack.store.contract.zones import JournalEntry, ManagedZone, ZoneRecord, ZoneStore


class Store(
    DirectoryStore,
    MailboxStore,
    MessageStore[Parsed],
    QueueStore,
    ZoneStore,
    KeyStore,
    ChangeStore,
    AccountStore,
    AccessStore,
    RecordStore,
    MetadataStore,
    Protocol[Parsed],
):
    """The whole store; ``Parsed`` is what its ``ParseCodec`` reads back."""

    async def close(self) -> None: ...


__all__ = [
    "ALL_RIGHTS",
    "DEFAULT_MAILBOXES",
    "DELIVERED",
    "FAILED",
    "HELD",
    "QUEUED",
    "SERVER_ENTRIES",
    "AccessStore",
    "Account",
    "AccountStore",
    "Alias",
    "ChangeStore",
    "Changes",
    "DeliveryTarget",
    "DirectoryStore",
    "DkimKey",
    "EmailKeys",
    "EmailMeta",
    "FlagMode",
    "FlagResult",
    "JournalEntry",
    "KeyStore",
    "Listener",
    "Mailbox",
    "MailboxChanges",
    "MailboxCounts",
    "MailboxStatus",
    "MailboxStore",
    "MailboxSync",
    "ManagedZone",
    "MessageMeta",
    "MessageStore",
    "MetadataStore",
    "NewDomain",
    "NewEntry",
    "NewRecipient",
    "ParseCodec",
    "QueueEntry",
    "QueueStore",
    "QueuedRecipient",
    "RecipientUpdate",
    "Record",
    "RecordStore",
    "SharedMailbox",
    "Store",
    "Token",
    "TooManyEntries",
    "ZoneAddition",
    "ZoneRecord",
    "ZoneStore",
]
