"""The shared store: PostgreSQL through asyncpg, for several nodes on one
database (``[store] backend = "postgresql"``).

* ``engine``: the pool, the writer with group commit (``synchronous_commit
  = on``: COMMIT returns after the WAL flush), LISTEN/NOTIFY change
  notification across nodes;
* ``schema``: the tables, as numbered forward migrations run under an
  advisory lock, their versions in ``schema_version``;
* one module per part of the contract: ``directory``, ``mailboxes``,
  ``messages``, ``queue``, ``zones``, ``keys``, ``accounts``, ``access``,
  ``records``, ``metadata``;
* ``nodes``: the serving nodes that share the store (``cluster status``);
* ``counters``: the account's change counter and email ids; ``threads``:
  threading new messages by their keys.

asyncpg rather than psycopg 3: it speaks the binary protocol with
statements prepared and cached per connection, and calls LISTEN/NOTIFY
callbacks on the event loop without a thread; its published benchmarks put
it several times ahead of psycopg 3 on small queries, which is what a store
issues. psycopg 3 was not measured here.
"""

from __future__ import annotations

from argon2 import PasswordHasher

from mailstack.store.contract.messages import ParseCodec, Parsed
from mailstack.store.postgres.access import AccessPart
from mailstack.store.postgres.accounts import AccountsPart
from mailstack.store.postgres.directory import DirectoryPart
from mailstack.store.postgres.engine import LEASE, POOL_SIZE, node_name
from mailstack.store.postgres.keys import KeysPart
from mailstack.store.postgres.mailboxes import MailboxesPart
from mailstack.store.postgres.messages import MessagesPart
from mailstack.store.postgres.metadata import MetadataPart
from mailstack.store.postgres.nodes import NodeInfo, NodesPart
from mailstack.store.postgres.queue import QueuePart
from mailstack.store.postgres.records import RecordsPart
from mailstack.store.postgres.uploads import UploadsPart
from mailstack.store.postgres.zones import ZonesPart


class PostgresStore(
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
    NodesPart,
    UploadsPart,
):
    """Store on PostgreSQL. Open with ``await PostgresStore.open(url, codec=...)``."""

    def __init__(
        self,
        url: str,
        *,
        codec: ParseCodec[Parsed],
        password: str | None = None,
        password_hasher: PasswordHasher | None = None,
        pool_size: int = POOL_SIZE,
        node: str | None = None,
        lease: float = LEASE,
        claim_queued: bool = True,
    ) -> None:
        super().__init__(url, password=password, pool_size=pool_size, node=node, lease=lease)
        self.claim_queued = claim_queued
        self._codec = codec
        self._hasher = password_hasher or PasswordHasher()
        self._recipients = {}
        self._recipients_version = None

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        codec: ParseCodec[Parsed],
        password: str | None = None,
        password_hasher: PasswordHasher | None = None,
        pool_size: int = POOL_SIZE,
        node: str | None = None,
        lease: float = LEASE,
        claim_queued: bool = True,
    ) -> PostgresStore[Parsed]:
        """Connect, run the schema migrations and start the writer and the
        listener. A serving node gives its ``node`` name: it heartbeats and
        leases the queue recipients it claims (and, with ``claim_queued``,
        those it queues: its queue runner takes them at once)."""
        store = cls(
            url, codec=codec, password=password, password_hasher=password_hasher,
            pool_size=pool_size, node=node, lease=lease, claim_queued=claim_queued,
        )
        await store._start()
        return store


__all__ = ["NodeInfo", "PostgresStore", "node_name"]
