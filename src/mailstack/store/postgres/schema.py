"""The PostgreSQL schema, in numbered forward migrations.

The ``schema_version`` table records each step applied. Opening a store
takes a transaction-level advisory lock (``pg_advisory_xact_lock``) before
reading the version, so several nodes starting at once migrate once: the
first applies the steps, the others wait for its commit, then find nothing
left to do. A database newer than this code knows is refused rather than
misread. A later change of layout is a new step at the end, never an edit of
an old one.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from mailstack.errors import StoreError

# The advisory lock key of migrations: any 64-bit number of our own ("mlst").
MIGRATION_LOCK = 0x6D6C7374


@dataclass(frozen=True, slots=True)
class Step:
    """One migration: from version ``n - 1`` to ``n``, its position in STEPS."""

    summary: str
    sql: str


# Message bytes are content-addressed (``blobs.digest`` is their SHA-256)
# and shared by every copy; ``data`` is stored EXTERNAL (out of line,
# uncompressed) so that substring() reads only the TOAST chunks asked for.
_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE domains (name TEXT PRIMARY KEY);
CREATE TABLE accounts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    address TEXT UNIQUE NOT NULL,
    password_hash TEXT NOT NULL,
    quota BIGINT NOT NULL DEFAULT 0,
    used BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE aliases (source TEXT NOT NULL, target TEXT NOT NULL, PRIMARY KEY (source, target));
CREATE INDEX aliases_target ON aliases (target);
CREATE TABLE mailboxes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    uidnext BIGINT NOT NULL DEFAULT 1,
    highest_modseq BIGINT NOT NULL DEFAULT 1,
    recent_uid BIGINT NOT NULL DEFAULT 1,
    special_use TEXT,
    UNIQUE (account_id, name)
);
CREATE TABLE subscriptions (account_id BIGINT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (account_id, name));
CREATE TABLE blobs (
    digest BYTEA PRIMARY KEY,
    refs BIGINT NOT NULL,
    data BYTEA NOT NULL,
    parsed BYTEA NOT NULL
);
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE messages (
    mailbox_id BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    modseq BIGINT NOT NULL,
    flags TEXT NOT NULL,
    internaldate TEXT NOT NULL,
    size BIGINT NOT NULL,
    digest BYTEA NOT NULL,
    prefix BYTEA NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE TABLE expunged (mailbox_id BIGINT NOT NULL, uid BIGINT NOT NULL, modseq BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, uid));
CREATE TABLE dns_zones (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin TEXT NOT NULL UNIQUE,
    serial BIGINT NOT NULL
);
CREATE TABLE dns_records (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id BIGINT NOT NULL REFERENCES dns_zones(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    rdtype TEXT NOT NULL,
    ttl BIGINT NOT NULL,
    rdata TEXT NOT NULL,
    UNIQUE (zone_id, name, rdtype, rdata)
);
CREATE TABLE dns_journal (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id BIGINT NOT NULL REFERENCES dns_zones(id) ON DELETE CASCADE,
    old_serial BIGINT NOT NULL,
    new_serial BIGINT NOT NULL,
    deleted TEXT NOT NULL,
    added TEXT NOT NULL
);
CREATE INDEX dns_journal_zone ON dns_journal (zone_id, id);
CREATE TABLE dns_history (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin TEXT NOT NULL,
    old_serial BIGINT NOT NULL,
    new_serial BIGINT NOT NULL,
    deleted TEXT NOT NULL,
    added TEXT NOT NULL
);
CREATE INDEX dns_history_origin ON dns_history (origin, id);
CREATE TABLE queue_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mail_from TEXT NOT NULL,
    data BYTEA NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    envid TEXT,
    ret TEXT,
    smtputf8 BOOLEAN NOT NULL DEFAULT false,
    body TEXT
);
CREATE TABLE queue_recipients (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt DOUBLE PRECISION NOT NULL,
    last_reply TEXT NOT NULL DEFAULT '',
    notify TEXT,
    orcpt TEXT,
    delay_notified BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX queue_recipients_due ON queue_recipients (state, next_attempt);
CREATE INDEX queue_recipients_message ON queue_recipients (message_id);
CREATE TABLE dkim_keys (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_key TEXT NOT NULL,
    created BIGINT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT true,
    UNIQUE (domain, selector)
);
"""

STEPS: tuple[Step, ...] = (
    Step("directory, mailboxes, messages, zones, queue and DKIM keys", _V1),
)


async def version(conn: asyncpg.Connection) -> int:
    """The schema version of the database (0: empty)."""
    found = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not found:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def migrate(conn: asyncpg.Connection, steps: tuple[Step, ...] = STEPS) -> int:
    """Bring the database up to ``len(steps)`` under the migration lock;
    returns how many steps this call applied."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, summary TEXT NOT NULL,"
            " applied TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        found = await version(conn)
        if found > len(steps):
            raise StoreError(
                f"the database has schema version {found}, newer than this mailstack's"
                f" {len(steps)}: run a newer mailstack"
            )
        for number, step in enumerate(steps[found:], found + 1):
            await conn.execute(step.sql)
            await conn.execute(
                "INSERT INTO schema_version (version, summary) VALUES ($1, $2)",
                number, step.summary,
            )
        return len(steps) - found
