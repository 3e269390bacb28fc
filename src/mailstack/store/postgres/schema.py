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

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from mailstack.errors import StoreError
from mailstack.store.contract.messages import EmailKeys
from mailstack.store.postgres.threads import Threader

log = logging.getLogger(__name__)

# What threading reads of a kept parse (the store's codec's ``keys``).
Keys = Callable[[bytes], EmailKeys]

# The advisory lock key of migrations: any 64-bit number of our own ("mlst").
MIGRATION_LOCK = 0x6D6C7374


@dataclass(frozen=True, slots=True)
class Step:
    """One migration: from version ``n - 1`` to ``n``, its position in STEPS."""

    summary: str
    sql: str
    # Run after the SQL, in the same transaction: what SQL alone cannot fill in.
    fill: Callable[[asyncpg.Connection, Keys | None], Awaitable[None]] | None = None
    # Run after ``fill``, given the store's ParseCodec (None without one).
    fill_codec: Callable[[asyncpg.Connection, Any], Awaitable[None]] | None = None


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

# The account as a whole (JMAP, RFC 8620/8621; OBJECTID, RFC 8474), as in
# the SQLite store's step 4 (the steps are numbered alike in both backends;
# SQLite's steps 2 and 3 were part of step 1 here): one change counter per
# account, starting where the account's mailboxes' HIGHESTMODSEQ got to;
# email ids (a sequence; in (mailbox, uid) order for the messages kept so
# far) and thread ids (a thread's id is the email id of its first email);
# the index threading looks new messages up in; tombstones; mailbox sort
# order and the MODSEQs of a mailbox's creation and of its own properties;
# bearer tokens, ACLs and records.
_V4 = """
ALTER TABLE accounts ADD COLUMN modseq BIGINT NOT NULL DEFAULT 0;
UPDATE accounts a SET modseq = coalesce(
    (SELECT max(highest_modseq) FROM mailboxes WHERE account_id = a.id), 0);
ALTER TABLE mailboxes ADD COLUMN sort_order BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN created_modseq BIGINT NOT NULL DEFAULT 1,
    ADD COLUMN props_modseq BIGINT NOT NULL DEFAULT 1;
CREATE SEQUENCE email_ids;
ALTER TABLE messages ADD COLUMN email_id BIGINT, ADD COLUMN thread_id BIGINT,
    ADD COLUMN created_modseq BIGINT NOT NULL DEFAULT 1;
UPDATE messages m SET email_id = e.n, thread_id = e.n FROM (
    SELECT mailbox_id, uid, row_number() OVER (ORDER BY mailbox_id, uid) AS n FROM messages
) e WHERE e.mailbox_id = m.mailbox_id AND e.uid = m.uid;
SELECT setval('email_ids', coalesce((SELECT max(email_id) FROM messages), 0) + 1, false);
ALTER TABLE messages ALTER COLUMN email_id SET NOT NULL, ALTER COLUMN thread_id SET NOT NULL;
CREATE UNIQUE INDEX messages_email ON messages (email_id);
CREATE INDEX messages_thread ON messages (thread_id);
CREATE TABLE thread_keys (
    account_id BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    thread_id BIGINT NOT NULL,
    PRIMARY KEY (account_id, message_id, subject, thread_id)
);
CREATE TABLE email_tombstones (
    email_id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    thread_id BIGINT NOT NULL,
    created_modseq BIGINT NOT NULL,
    modseq BIGINT NOT NULL
);
CREATE INDEX email_tombstones_modseq ON email_tombstones (account_id, modseq);
CREATE TABLE mailbox_tombstones (
    mailbox_id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    created_modseq BIGINT NOT NULL,
    modseq BIGINT NOT NULL
);
CREATE INDEX mailbox_tombstones_modseq ON mailbox_tombstones (account_id, modseq);
CREATE TABLE tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    digest BYTEA NOT NULL UNIQUE,
    created DOUBLE PRECISION NOT NULL,
    last_used DOUBLE PRECISION
);
CREATE INDEX tokens_account ON tokens (account_id);
CREATE TABLE acl (
    mailbox_id BIGINT NOT NULL,
    identifier TEXT NOT NULL,
    rights TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, identifier)
);
CREATE INDEX acl_identifier ON acl (identifier);
CREATE TABLE records (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT,
    created_modseq BIGINT NOT NULL,
    modseq BIGINT NOT NULL
);
CREATE INDEX records_changes ON records (account_id, kind, modseq);
"""

# Several nodes: each serving node heartbeats into ``nodes``; a queue
# recipient a node claimed carries its lease (the node and until when).
_V5 = """
ALTER TABLE queue_recipients ADD COLUMN lease_node TEXT, ADD COLUMN lease_until DOUBLE PRECISION;
CREATE INDEX queue_recipients_lease ON queue_recipients (lease_node) WHERE lease_node IS NOT NULL;
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL
);
"""


async def _thread_kept_messages(conn: asyncpg.Connection, keys: Keys | None) -> None:
    """Thread the messages kept before step 4 from their kept parse, in
    email id order, as delivery would have (without a codec, each message
    stays its own thread)."""
    if keys is None:
        return
    threader = Threader(conn)
    moved: list[tuple[int, int]] = []
    async for email_id, account_id, parsed in conn.cursor(
        "SELECT m.email_id, b.account_id, p.parsed FROM messages m"
        " JOIN mailboxes b ON b.id = m.mailbox_id JOIN blobs p ON p.digest = m.digest"
        " ORDER BY m.email_id"
    ):
        found = keys(bytes(parsed))
        await threader.prefetch([(int(account_id), found)])
        thread_id = threader.thread(int(account_id), found, int(email_id))
        if thread_id != email_id:
            moved.append((thread_id, int(email_id)))
    await conn.executemany("UPDATE messages SET thread_id = $1 WHERE email_id = $2", moved)
    await threader.flush()


# RFC 5464 METADATA: server (mailbox_id 0) and mailbox entries; owner_id is
# the account of a /private/ entry, 0 for a /shared/ one.
_METADATA = """
CREATE TABLE metadata (
    mailbox_id BIGINT NOT NULL,
    owner_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (mailbox_id, owner_id, name)
);
CREATE INDEX metadata_owner ON metadata (owner_id);
"""


# RFC 8514: when a message was saved into its mailbox, ISO 8601 text as the
# internal date is; NULL for messages kept from before (their internal date
# stands in).
_SAVEDATE = "ALTER TABLE messages ADD COLUMN savedate TEXT"


_ADMIN = """
ALTER TABLE accounts ADD COLUMN admin BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false
"""


# The full-text index (store/fulltext.py): each blob's folded header lines
# and body text, each message's folded trace prefix (by email id), searched
# with LIKE; pg_trgm's GIN indexes make that an index lookup. Without the
# extension (a role that may not create it) LIKE still answers, by a scan
# of these tables.
_FTS = """
CREATE TABLE search_blobs (
    digest BYTEA PRIMARY KEY, head TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE search_prefixes (email_id BIGINT PRIMARY KEY, head TEXT NOT NULL)
"""
# Rows read and indexed at a time by the fill.
_FILL_BATCH = 500
_TRIGRAM_INDEXES = """
CREATE INDEX IF NOT EXISTS search_blobs_head ON search_blobs USING gin (head gin_trgm_ops);
CREATE INDEX IF NOT EXISTS search_blobs_body ON search_blobs USING gin (body gin_trgm_ops);
CREATE INDEX IF NOT EXISTS search_prefixes_head ON search_prefixes USING gin (head gin_trgm_ops)
"""


async def index_kept_messages(conn: asyncpg.Connection, codec: Any) -> None:
    """Index the blobs and prefixes kept before the index was, in batches,
    then build the trigram indexes (after the rows: faster than row by
    row). Without a codec nothing can be read (bare schema tests)."""
    if codec is not None:
        from mailstack.store import fulltext  # the contract, not a backend

        last = b""
        while True:
            rows = await conn.fetch(
                "SELECT digest, parsed FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2",
                last, _FILL_BATCH,
            )
            if not rows:
                break
            texts = [fulltext.texts(codec, bytes(r[1])) for r in rows]
            await conn.execute(
                "INSERT INTO search_blobs SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[])"
                " ON CONFLICT (digest) DO NOTHING",
                [r[0] for r in rows], [t[0] for t in texts], [t[1] for t in texts],
            )
            last = bytes(rows[-1][0])
        after = 0
        while True:
            rows = await conn.fetch(
                "SELECT email_id, prefix FROM messages WHERE email_id > $1 AND prefix != ''::bytea"
                " ORDER BY email_id LIMIT $2",
                after, _FILL_BATCH,
            )
            if not rows:
                break
            await conn.execute(
                "INSERT INTO search_prefixes SELECT * FROM unnest($1::bigint[], $2::text[])"
                " ON CONFLICT (email_id) DO NOTHING",
                [r[0] for r in rows], [fulltext.prefix_text(codec, bytes(r[1])) for r in rows],
            )
            after = int(rows[-1][0])
    try:
        async with conn.transaction():  # a savepoint: its failure leaves the rest
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            await conn.execute(_TRIGRAM_INDEXES)
    except asyncpg.PostgresError as exc:
        log.warning(
            "pg_trgm is not available (%s): text search scans the index tables", exc
        )


# What SORT and THREAD read of each kept message (ParseCodec.sort_record).
_SORT_RECORDS = """
CREATE TABLE sort_records (
    digest BYTEA PRIMARY KEY REFERENCES blobs (digest) ON DELETE CASCADE,
    record BYTEA NOT NULL
);
INSERT INTO meta SELECT 'sort_records_pending', 1 WHERE EXISTS (SELECT 1 FROM blobs)
    ON CONFLICT (key) DO UPDATE SET value = 1
"""


# Uploads (RFC 8620 §6.1) in the store, so every node finds them (uploads.py).
_UPLOADS = """
CREATE TABLE uploads (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    type TEXT NOT NULL DEFAULT '',
    size BIGINT NOT NULL DEFAULT 0,
    created DOUBLE PRECISION NOT NULL,
    complete BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX uploads_created ON uploads (created);
CREATE TABLE upload_chunks (
    upload_id BIGINT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
"""


# STATUS counts kept per mailbox (MESSAGES, UNSEEN, SIZE, DELETED), so STATUS
# reads one row instead of counting every message. Triggers keep them, one
# statement at a time (its transition tables summed per mailbox: a STORE on
# 100,000 messages updates each mailbox row once, not 100,000 times; an
# UPDATE that changes no count, none).
_COUNTED = """
    SELECT mailbox_id, {sign}count(*) AS messages, {sign}sum(size) AS octets,
        {sign}count(*) FILTER (WHERE position(' \\Seen ' IN ' ' || flags || ' ') = 0) AS unseen,
        {sign}count(*) FILTER (WHERE position(' \\Deleted ' IN ' ' || flags || ' ') > 0)
            AS deleted
    FROM {rows} GROUP BY mailbox_id
"""
_ADD_COUNTS = """
    UPDATE mailboxes b SET messages = b.messages + d.messages, octets = b.octets + d.octets,
        unseen = b.unseen + d.unseen, deleted = b.deleted + d.deleted
    FROM (SELECT mailbox_id, sum(messages) AS messages, sum(octets) AS octets,
            sum(unseen) AS unseen, sum(deleted) AS deleted
          FROM ({counted}) AS c GROUP BY mailbox_id) AS d
    WHERE b.id = d.mailbox_id AND (d.messages, d.octets, d.unseen, d.deleted) <> (0, 0, 0, 0)
"""
# Every mailbox's counts counted anew from its messages (the step's fill;
# ``mailstack migrate`` after its copy, whose rows the triggers counted too).
RECOUNT = f"""
UPDATE mailboxes b SET messages = coalesce(c.messages, 0), octets = coalesce(c.octets, 0),
    unseen = coalesce(c.unseen, 0), deleted = coalesce(c.deleted, 0)
FROM mailboxes m LEFT JOIN ({_COUNTED.format(sign="", rows="messages")}) AS c
    ON c.mailbox_id = m.id
WHERE b.id = m.id
"""
_COUNTS = f"""
ALTER TABLE mailboxes ADD COLUMN messages BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN octets BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN unseen BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0;
{RECOUNT};
CREATE FUNCTION messages_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_ADD_COUNTS.format(counted=_COUNTED.format(sign="", rows="new_rows"))};
    ELSIF TG_OP = 'DELETE' THEN
        {_ADD_COUNTS.format(counted=_COUNTED.format(sign="-", rows="old_rows"))};
    ELSE
        {_ADD_COUNTS.format(
            counted=_COUNTED.format(sign="", rows="new_rows")
            + " UNION ALL "
            + _COUNTED.format(sign="-", rows="old_rows")
        )};
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_counted AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION messages_count();
CREATE TRIGGER messages_uncounted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION messages_count();
CREATE TRIGGER messages_recounted AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION messages_count();
"""


STEPS: tuple[Step, ...] = (
    Step("directory, mailboxes, messages, zones, queue and DKIM keys", _V1),
    Step("queue ids never reused (part of step 1 here)", "SELECT 1"),
    Step("the IXFR history of zones served from files (part of step 1 here)", "SELECT 1"),
    Step("accounts as a whole: ids, threads, changes, tokens, ACLs, records", _V4,
         _thread_kept_messages),
    Step("several nodes: queue leases and the nodes table (PostgreSQL only)", _V5),
    Step("server and mailbox annotations (RFC 5464 METADATA)", _METADATA),
    Step("the save date of messages (RFC 8514 SAVEDATE)", _SAVEDATE),
    Step("accounts: the admin role and disabled accounts", _ADMIN),
    Step("the full-text index of the searchable text", _FTS, None, index_kept_messages),
    # The records of messages kept before this step are made by the store
    # when it opens (it has the codec; see MessagesPart._fill_sort_records).
    Step("SORT/THREAD keys kept per message at delivery", _SORT_RECORDS),
    Step("JMAP uploads shared by the nodes (PostgreSQL only)", _UPLOADS),
    Step("STATUS counts kept per mailbox", _COUNTS),
)


async def version(conn: asyncpg.Connection) -> int:
    """The schema version of the database (0: empty)."""
    found = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not found:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def migrate(
    conn: asyncpg.Connection,
    steps: tuple[Step, ...] = STEPS,
    keys: Keys | None = None,
    codec: Any = None,
) -> int:
    """Bring the database up to ``len(steps)`` under the migration lock;
    returns how many steps this call applied. ``keys`` reads a kept parse
    for threading (see step 4)."""
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
            if step.fill is not None:
                await step.fill(conn, keys)
            if step.fill_codec is not None:
                await step.fill_codec(conn, codec)
            await conn.execute(
                "INSERT INTO schema_version (version, summary) VALUES ($1, $2)",
                number, step.summary,
            )
        return len(steps) - found
