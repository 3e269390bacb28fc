"""The SQLite schema, in numbered forward migrations.

``PRAGMA user_version`` holds the schema version of a database file. Opening
a store runs, in one transaction, every step past the file's version, so a
data directory written by an older mailstack opens with a newer one; a file
newer than this code knows is refused rather than misread. Version 0 is both
an empty file and the layout written before versions were kept; step 1
creates that layout where it is missing (``IF NOT EXISTS``), so it is right
for both. A later change of layout is a new step at the end, never an edit
of an old one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailstack.errors import StoreError
from mailstack.store.contract.messages import EmailKeys
from mailstack.store.sqlite.threads import Threader

# What threading reads of a kept parse (the store's codec's ``keys``).
Keys = Callable[[bytes], EmailKeys]


@dataclass(frozen=True, slots=True)
class Step:
    """One migration: from version ``n - 1`` to ``n``, its position in STEPS."""

    summary: str
    sql: str  # statements separated by ";" (none holds a ";" of its own)
    # Run after the SQL, in the same transaction: what SQL alone cannot fill in.
    fill: Callable[[sqlite3.Connection, Keys | None], None] | None = None
    # Run after ``fill``, given the store's ParseCodec (None without one).
    fill_codec: Callable[[sqlite3.Connection, Any], None] | None = None


_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS domains (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    address TEXT UNIQUE NOT NULL,
    password_hash TEXT NOT NULL,
    quota INTEGER NOT NULL DEFAULT 0,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS aliases (
    source TEXT NOT NULL, target TEXT NOT NULL, PRIMARY KEY (source, target)
);
CREATE TABLE IF NOT EXISTS mailboxes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 1,
    recent_uid INTEGER NOT NULL DEFAULT 1,
    special_use TEXT,
    UNIQUE (account_id, name)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    account_id INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (account_id, name)
);
CREATE TABLE IF NOT EXISTS blobs (
    id INTEGER PRIMARY KEY,
    refs INTEGER NOT NULL,
    data BLOB NOT NULL,
    parsed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags TEXT NOT NULL,
    internaldate TEXT NOT NULL,
    size INTEGER NOT NULL,
    blob_id INTEGER NOT NULL,
    prefix BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_modseq ON messages (mailbox_id, modseq);
CREATE TABLE IF NOT EXISTS expunged (
    mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS dns_zones (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL UNIQUE,
    serial INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dns_records (
    id INTEGER PRIMARY KEY,
    zone_id INTEGER NOT NULL REFERENCES dns_zones(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    rdtype TEXT NOT NULL,
    ttl INTEGER NOT NULL,
    rdata TEXT NOT NULL,
    UNIQUE (zone_id, name, rdtype, rdata)
);
CREATE INDEX IF NOT EXISTS dns_records_zone ON dns_records (zone_id);
CREATE TABLE IF NOT EXISTS dns_journal (
    id INTEGER PRIMARY KEY,
    zone_id INTEGER NOT NULL REFERENCES dns_zones(id) ON DELETE CASCADE,
    old_serial INTEGER NOT NULL,
    new_serial INTEGER NOT NULL,
    deleted TEXT NOT NULL,
    added TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dns_journal_zone ON dns_journal (zone_id, id);

CREATE TABLE IF NOT EXISTS queue_messages (
    id INTEGER PRIMARY KEY,
    mail_from TEXT NOT NULL,
    data BLOB NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    envid TEXT,
    ret TEXT,
    smtputf8 INTEGER NOT NULL DEFAULT 0,
    body TEXT
);
CREATE TABLE IF NOT EXISTS queue_recipients (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_reply TEXT NOT NULL DEFAULT '',
    notify TEXT,
    orcpt TEXT,
    delay_notified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_recipients_due ON queue_recipients (state, next_attempt);
CREATE INDEX IF NOT EXISTS queue_recipients_message ON queue_recipients (message_id);

CREATE TABLE IF NOT EXISTS dkim_keys (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key TEXT NOT NULL,
    created INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    UNIQUE (domain, selector)
);
CREATE INDEX IF NOT EXISTS dkim_keys_domain ON dkim_keys (domain, active);
"""

# Queue ids are never used twice in a data directory ("queued as 7" names one
# message for good): AUTOINCREMENT never hands out an id again, even the
# highest after it is deleted. SQLite cannot add it to a table, so the table
# is made anew (https://sqlite.org/lang_altertable.html, "other kinds of
# table schema changes"), with foreign keys off (see migrate).
_V2 = """
CREATE TABLE queue_messages_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mail_from TEXT NOT NULL,
    data BLOB NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    envid TEXT,
    ret TEXT,
    smtputf8 INTEGER NOT NULL DEFAULT 0,
    body TEXT
);
INSERT INTO queue_messages_v2 (id, mail_from, data, created, expires, envid, ret, smtputf8, body)
    SELECT id, mail_from, data, created, expires, envid, ret, smtputf8, body FROM queue_messages;
DROP TABLE queue_messages;
ALTER TABLE queue_messages_v2 RENAME TO queue_messages
"""

# The change history of zones kept outside the store (master files, secondary
# copies), so IXFR (RFC 1995) reaches back across a restart.
_V3 = """
CREATE TABLE IF NOT EXISTS dns_history (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    old_serial INTEGER NOT NULL,
    new_serial INTEGER NOT NULL,
    deleted TEXT NOT NULL,
    added TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dns_history_origin ON dns_history (origin, id);
"""

# The account as a whole (JMAP, RFC 8620/8621; OBJECTID, RFC 8474): one change
# counter per account, starting where the account's mailboxes' HIGHESTMODSEQ
# got to; email ids (store-wide, in (mailbox, uid) order for the messages
# kept so far) and thread ids (a thread's id is the email id of its first
# email); the index threading looks new messages up in; tombstones; mailbox
# sort order and the MODSEQs of a mailbox's creation and of its own
# properties; bearer tokens, ACLs and records. Mailbox and email ids come from
# counters in meta, so a deleted one's id is never given again.
_V4 = """
ALTER TABLE accounts ADD COLUMN modseq INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET modseq = coalesce(
    (SELECT max(highest_modseq) FROM mailboxes WHERE account_id = accounts.id), 0);
ALTER TABLE mailboxes ADD COLUMN sort_order INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN created_modseq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE mailboxes ADD COLUMN props_modseq INTEGER NOT NULL DEFAULT 1;
INSERT OR REPLACE INTO meta VALUES ('mailbox_id', (SELECT coalesce(max(id), 0) FROM mailboxes));
ALTER TABLE messages ADD COLUMN email_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN created_modseq INTEGER NOT NULL DEFAULT 1;
CREATE TABLE email_numbers AS
    SELECT mailbox_id, uid, row_number() OVER (ORDER BY mailbox_id, uid) AS n FROM messages;
UPDATE messages SET email_id = e.n, thread_id = e.n FROM email_numbers e
    WHERE e.mailbox_id = messages.mailbox_id AND e.uid = messages.uid;
DROP TABLE email_numbers;
INSERT OR REPLACE INTO meta VALUES ('email_id', (SELECT coalesce(max(email_id), 0) FROM messages));
CREATE UNIQUE INDEX messages_email ON messages (email_id);
CREATE INDEX messages_thread ON messages (thread_id);
CREATE TABLE thread_keys (
    account_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    thread_id INTEGER NOT NULL,
    PRIMARY KEY (account_id, message_id, subject, thread_id)
) WITHOUT ROWID;
CREATE TABLE email_tombstones (
    email_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    thread_id INTEGER NOT NULL,
    created_modseq INTEGER NOT NULL,
    modseq INTEGER NOT NULL
);
CREATE INDEX email_tombstones_modseq ON email_tombstones (account_id, modseq);
CREATE TABLE mailbox_tombstones (
    mailbox_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    created_modseq INTEGER NOT NULL,
    modseq INTEGER NOT NULL
);
CREATE INDEX mailbox_tombstones_modseq ON mailbox_tombstones (account_id, modseq);
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    created REAL NOT NULL,
    last_used REAL
);
CREATE INDEX tokens_account ON tokens (account_id);
CREATE TABLE acl (
    mailbox_id INTEGER NOT NULL,
    identifier TEXT NOT NULL,
    rights TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, identifier)
) WITHOUT ROWID;
CREATE INDEX acl_identifier ON acl (identifier);
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT,
    created_modseq INTEGER NOT NULL,
    modseq INTEGER NOT NULL
);
CREATE INDEX records_changes ON records (account_id, kind, modseq)
"""


# What SORT and THREAD read of each kept message (ParseCodec.sort_record).
_SORT_RECORDS = """
CREATE TABLE sort_records (
    blob_id INTEGER PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
    record BLOB NOT NULL
);
INSERT OR REPLACE INTO meta SELECT 'sort_records_pending', 1 WHERE EXISTS (SELECT 1 FROM blobs)
"""


def _thread_kept_messages(conn: sqlite3.Connection, keys: Keys | None) -> None:
    """Thread the messages kept before step 4 from their kept parse, in
    email id order, as delivery would have (without a codec, each message
    stays its own thread)."""
    if keys is None:
        return
    threader = Threader(conn)
    rows = conn.execute(
        "SELECT m.email_id, b.account_id, m.blob_id FROM messages m"
        " JOIN mailboxes b ON b.id = m.mailbox_id ORDER BY m.email_id"
    ).fetchall()
    for email_id, account_id, blob_id in rows:
        (parsed,) = conn.execute("SELECT parsed FROM blobs WHERE id = ?", (blob_id,)).fetchone()
        found = keys(bytes(parsed))
        threader.prefetch([(account_id, found)])
        thread_id = threader.thread(account_id, found, email_id)
        if thread_id != email_id:
            conn.execute(
                "UPDATE messages SET thread_id = ? WHERE email_id = ?", (thread_id, email_id)
            )
    threader.flush()


# RFC 5464 METADATA: server (mailbox_id 0) and mailbox entries; owner_id is
# the account of a /private/ entry, 0 for a /shared/ one.
_METADATA = """
CREATE TABLE metadata (
    mailbox_id INTEGER NOT NULL,
    owner_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, owner_id, name)
) WITHOUT ROWID;
CREATE INDEX metadata_owner ON metadata (owner_id)
"""


# RFC 8514: when a message was saved into its mailbox, ISO 8601 text as the
# internal date is; NULL for messages kept from before (their internal date
# stands in).
_SAVEDATE = "ALTER TABLE messages ADD COLUMN savedate TEXT"


_ADMIN = """
ALTER TABLE accounts ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0
"""


# The full-text index (store/fulltext.py): each blob's folded header lines
# and body text, each message's folded trace prefix (by email id), as FTS5
# tables with the trigram tokenizer (SQLite 3.34), which answers substring
# phrases of three characters or more. The text is folded before it is kept,
# so the tokenizer need not fold (``case_sensitive 1``).
_FTS = """
CREATE VIRTUAL TABLE search_blobs USING fts5(head, body, tokenize = 'trigram case_sensitive 1');
CREATE VIRTUAL TABLE search_prefixes USING fts5(head, tokenize = 'trigram case_sensitive 1')
"""
# Rows read and indexed at a time by the fill.
_FILL_BATCH = 500


def _index_kept_messages(conn: sqlite3.Connection, codec: Any) -> None:
    """Index the blobs and prefixes kept before the index was, in batches
    (without a codec there is nothing to read them with: a store always
    has one; bare schema tests do not)."""
    if codec is None:
        return
    # Imported here: fulltext imports the contract, which imports nothing
    # of the backends, but schema is imported early by the engine.
    from mailstack.store import fulltext

    last = 0
    while True:
        rows = conn.execute(
            "SELECT id, parsed FROM blobs WHERE id > ? ORDER BY id LIMIT ?", (last, _FILL_BATCH)
        ).fetchall()
        if not rows:
            break
        conn.executemany(
            "INSERT INTO search_blobs (rowid, head, body) VALUES (?, ?, ?)",
            [(blob_id, *fulltext.texts(codec, bytes(parsed))) for blob_id, parsed in rows],
        )
        last = rows[-1][0]
    last = 0
    while True:
        rows = conn.execute(
            "SELECT email_id, prefix FROM messages WHERE email_id > ? AND prefix != x''"
            " ORDER BY email_id LIMIT ?",
            (last, _FILL_BATCH),
        ).fetchall()
        if not rows:
            break
        conn.executemany(
            "INSERT INTO search_prefixes (rowid, head) VALUES (?, ?)",
            [(email_id, fulltext.prefix_text(codec, bytes(prefix))) for email_id, prefix in rows],
        )
        last = rows[-1][0]


# STATUS counts kept per mailbox (MESSAGES, UNSEEN, SIZE, DELETED), so STATUS
# reads one row instead of counting every message. Each statement that files,
# moves, flags or deletes messages keeps them (``counters.count_messages``);
# SQLite's triggers fire once per row, and one here doubled a STORE's time.
_COUNTS = """
ALTER TABLE mailboxes ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN octets INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN unseen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET (messages, octets, unseen, deleted) = (
    SELECT count(*), coalesce(sum(size), 0),
        coalesce(sum(instr(' ' || flags || ' ', ' \\Seen ') = 0), 0),
        coalesce(sum(instr(' ' || flags || ' ', ' \\Deleted ') > 0), 0)
    FROM messages WHERE mailbox_id = mailboxes.id
)
"""


STEPS: tuple[Step, ...] = (
    Step("directory, mailboxes, messages, zones, queue and DKIM keys", _V1),
    Step("queue ids never reused", _V2),
    Step("the IXFR history of zones served from files", _V3),
    Step("accounts as a whole: ids, threads, changes, tokens, ACLs, records", _V4,
         _thread_kept_messages),
    # PostgreSQL's step 5 (queue leases, the nodes table) has nothing to do on
    # one node: kept as a step so both backends' numbers stay the same.
    Step("several nodes: nothing to do here (PostgreSQL only)", "SELECT 1"),
    Step("server and mailbox annotations (RFC 5464 METADATA)", _METADATA),
    Step("the save date of messages (RFC 8514 SAVEDATE)", _SAVEDATE),
    Step("accounts: the admin role and disabled accounts", _ADMIN),
    Step("the full-text index of the searchable text", _FTS, None, _index_kept_messages),
    # The records of messages kept before this step are made by the store
    # when it opens (it has the codec; see MessagesPart.fill_sort_records).
    Step("SORT/THREAD keys kept per message at delivery", _SORT_RECORDS),
    # On one node uploads are files of the data directory (store/uploads.py).
    Step("JMAP uploads in the store: nothing to do here (PostgreSQL only)", "SELECT 1"),
    Step("STATUS counts kept per mailbox", _COUNTS),
)


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection,
    steps: tuple[Step, ...] = STEPS,
    keys: Keys | None = None,
    codec: Any = None,
) -> None:
    """Bring the database up to ``len(steps)``; several processes may race
    here, so the version is read again under the write lock. ``keys`` reads
    a kept parse for threading (see step 4), ``codec`` (the store's
    ParseCodec) its searchable text (the full-text index's step)."""
    if version(conn) == len(steps):
        return
    # A step may make a table anew; with foreign keys on, dropping the old one
    # would delete the rows that refer to it. The pragma has no effect inside
    # a transaction, so it is set around it, and the keys are checked before
    # the commit instead.
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = version(conn)
        if found > len(steps):
            raise StoreError(
                f"the database has schema version {found}, newer than this mailstack's"
                f" {len(steps)}: run a newer mailstack"
            )
        for step in steps[found:]:
            for statement in step.sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if step.fill is not None:
                step.fill(conn, keys)
            if step.fill_codec is not None:
                step.fill_codec(conn, codec)
        if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise StoreError("the schema migration broke a foreign key")
        conn.execute(f"PRAGMA user_version = {len(steps)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
