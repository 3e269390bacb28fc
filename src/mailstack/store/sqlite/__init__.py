"""The embedded store: SQLite in WAL mode, message bytes in the database.

* ``engine``: the writer thread with group commit, the readers, the
  checkpoint thread, fsync at every commit, listeners woken after it;
* ``schema``: the tables, as numbered forward migrations;
* one module per part of the contract: ``directory``, ``mailboxes``,
  ``messages``, ``queue``, ``zones``, ``keys``, ``accounts``, ``access``,
  ``records``, ``metadata``;
* ``counters``: the account's change counter and the id counters;
  ``threads``: threading new messages by their keys;
* ``marks``: files beside the database that tell other processes' stores
  that the directory or the queue changed; ``sql``: shared SQL helpers.
"""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher

from mailstack.store.contract.messages import ParseCodec, Parsed
from mailstack.store.sqlite.access import AccessPart
from mailstack.store.sqlite.accounts import AccountsPart
from mailstack.store.sqlite.directory import DirectoryPart
from mailstack.store.sqlite.engine import CHECKPOINT_WAIT, WAL_BOUND
from mailstack.store.sqlite.keys import KeysPart
from mailstack.store.sqlite.mailboxes import MailboxesPart
from mailstack.store.sqlite.messages import MessagesPart
from mailstack.store.sqlite.metadata import MetadataPart
from mailstack.store.sqlite.queue import QueuePart
from mailstack.store.sqlite.records import RecordsPart
from mailstack.store.sqlite.zones import ZonesPart


class SqliteStore(
    DirectoryPart,
    MailboxesPart,
    MessagesPart[Parsed],
    QueuePart,
    ZonesPart,
    KeysPart,
    AccountsPart,
    AccessPart,
    RecordsPart,
    MetadataPart,
):
    """Store on SQLite. Open with ``await SqliteStore.open(path, codec=...)``."""

    def __init__(
        self,
        path: Path,
        *,
        codec: ParseCodec[Parsed],
        password_hasher: PasswordHasher | None = None,
        wal_bound: int = WAL_BOUND,
        checkpoint_wait: float = CHECKPOINT_WAIT,
    ) -> None:
        super().__init__(path, wal_bound=wal_bound, checkpoint_wait=checkpoint_wait)
        self._codec = codec
        self._hasher = password_hasher or PasswordHasher()
        self._recipients = {}
        self._recipients_mark = None

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        codec: ParseCodec[Parsed],
        password_hasher: PasswordHasher | None = None,
        wal_bound: int = WAL_BOUND,
        checkpoint_wait: float = CHECKPOINT_WAIT,
    ) -> SqliteStore[Parsed]:
        """``wal_bound`` (octets) and ``checkpoint_wait`` (seconds): see
        ``engine``, how the write-ahead log is kept bounded."""
        store = cls(
            path, codec=codec, password_hasher=password_hasher, wal_bound=wal_bound,
            checkpoint_wait=checkpoint_wait,
        )
        await store._start()
        return store


__all__ = ["SqliteStore"]
