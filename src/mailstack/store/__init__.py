"""The only package that touches durable data.

* ``contract/``: the ``Store`` Protocol and its models, one module per part
  (directory, messages and mailboxes, queue, zones, keys, changes, the
  account-wide view, access and records); callers
  import the models from here (``from mailstack.store import Account``);
* ``sqlite/``: the embedded backend (SQLite in WAL mode, group commit,
  numbered schema migrations), one module per part of the contract;
* ``zonefiles``: master zone files written atomically and fsynced for the
  DNS service (RFC 1035 §5 text, rewritten by UPDATE and zone transfers).

The store never parses mail: callers hand it a message with its parse, and
the ``ParseCodec`` given at open (``mailstack.mime.PARSE_CODEC``) reads the
parse back.
"""

from mailstack.store.contract import (
    ALL_RIGHTS,
    DEFAULT_MAILBOXES,
    DELIVERED,
    FAILED,
    HELD,
    QUEUED,
    SERVER_ENTRIES,
    Account,
    Alias,
    Changes,
    DeliveryTarget,
    DkimKey,
    EmailKeys,
    EmailMeta,
    FlagMode,
    FlagResult,
    JournalEntry,
    Listener,
    Mailbox,
    MailboxChanges,
    MailboxCounts,
    MailboxStatus,
    MailboxSync,
    ManagedZone,
    MessageMeta,
    NewDomain,
    NewEntry,
    NewRecipient,
    ParseCodec,
    QueuedRecipient,
    QueueEntry,
    RecipientUpdate,
    Record,
    SharedMailbox,
    Store,
    Token,
    TooManyEntries,
    ZoneAddition,
    ZoneRecord,
)
from mailstack.store.contract.zones import make_record, next_serial, serial_gt

__all__ = [
    "ALL_RIGHTS",
    "DEFAULT_MAILBOXES",
    "DELIVERED",
    "FAILED",
    "HELD",
    "QUEUED",
    "SERVER_ENTRIES",
    "Account",
    "Alias",
    "Changes",
    "DeliveryTarget",
    "DkimKey",
    "EmailKeys",
    "EmailMeta",
    "FlagMode",
    "FlagResult",
    "JournalEntry",
    "Listener",
    "Mailbox",
    "MailboxChanges",
    "MailboxCounts",
    "MailboxStatus",
    "MailboxSync",
    "ManagedZone",
    "MessageMeta",
    "NewDomain",
    "NewEntry",
    "NewRecipient",
    "ParseCodec",
    "QueueEntry",
    "QueuedRecipient",
    "RecipientUpdate",
    "Record",
    "SharedMailbox",
    "Store",
    "Token",
    "TooManyEntries",
    "ZoneAddition",
    "ZoneRecord",
    "make_record",
    "next_serial",
    "serial_gt",
]
