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
from dataclasses import dataclass

from mailstack.errors import StoreError


@dataclass(frozen=True, slots=True)
class Step:
    """One migration: from version ``n - 1`` to ``n``, its position in STEPS."""

    summary: str
    sql: str  # statements separated by ";" (none holds a ";" of its own)


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

STEPS: tuple[Step, ...] = (
    Step("directory, mailboxes, messages, zones, queue and DKIM keys", _V1),
    Step("queue ids never reused", _V2),
    Step("the IXFR history of zones served from files", _V3),
)


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, steps: tuple[Step, ...] = STEPS) -> None:
    """Bring the database up to ``len(steps)``; several processes may race
    here, so the version is read again under the write lock."""
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
        if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise StoreError("the schema migration broke a foreign key")
        conn.execute(f"PRAGMA user_version = {len(steps)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
