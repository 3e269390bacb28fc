"""Move a single node's SQLite store into an empty PostgreSQL database.

Row for row, so that nothing a client or a peer holds on to changes: UIDs,
UIDVALIDITY, MODSEQs and flags, email, thread and mailbox ids, the queue
(ids, attempts, due times), zones with their journals and serials, DKIM
keys, tokens, ACLs, records. Every table of the PostgreSQL schema is filled
from the table of the same name, column for column; what differs is mapped:

* ``blobs``: SQLite numbers them, PostgreSQL names them by the SHA-256 of
  the bytes (content-addressed): copies with the same bytes become one blob
  whose references add up, and ``messages.blob_id`` becomes the digest;
* ids handed out by counters (the ``mailbox_id`` and ``email_id`` rows of
  ``meta``, SQLite's AUTOINCREMENT) continue in PostgreSQL's sequences from
  the highest ever given, so no id is given twice;
* SQLite's 0/1 become booleans where PostgreSQL has them;
* ``sort_records`` is not copied: a marker in ``meta`` has the PostgreSQL
  store make it again from the parses when it next opens;
* each mailbox's STATUS counts are counted again from its messages.

A table of the SQLite store with no place in PostgreSQL stops the move
(nothing is dropped silently). Everything is written in one transaction,
after checking that the database holds no mailstack data (a database that
``init`` or ``serve`` only gave the schema counts as empty); the checksums
of both sides, computed over the rows as PostgreSQL keeps them (bytes as
their SHA-256), must agree before it commits.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from mailstack.errors import StoreError
from mailstack.mime import PARSE_CODEC
from mailstack.store.postgres import schema

# PostgreSQL tables that are not copied: its own bookkeeping, and uploads
# (files of the SQLite node's data directory, kept a day at most: uploads
# in progress at the move are made again).
_NOT_COPIED = {"schema_version", "nodes", "uploads", "upload_chunks"}
# The full-text index (store/fulltext.py) is not copied but made anew from
# the copied blobs and prefixes: SQLite keeps it in FTS5 tables (and their
# shadow tables), PostgreSQL in plain ones.
_INDEX = ("search_blobs", "search_prefixes")
# Parents before the tables whose foreign keys name them.
_FIRST = ("dns_zones", "queue_messages")
# Tables a store makes from the others when it opens (the SORT/THREAD
# records of the kept parses): not copied, made again by PostgreSQL's.
_DERIVED = ("sort_records",)
# Counters of SQLite's meta table that are sequences in PostgreSQL.
_COUNTERS = {"mailbox_id": "mailboxes", "email_id": None}
# Rows read and written at a time.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class TableReport:
    name: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def same(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass(frozen=True, slots=True)
class Report:
    tables: list[TableReport]

    @property
    def same(self) -> bool:
        return all(t.same for t in self.tables)

    def checksum(self, side: str) -> str:
        digest = hashlib.sha256()
        for t in self.tables:
            digest.update(f"{t.name}:{getattr(t, side + '_sum')}\n".encode())
        return digest.hexdigest()


def _canonical(row: tuple[Any, ...]) -> str:
    """One row as both sides agree to write it (bytes as their SHA-256)."""
    out = []
    for value in row:
        if isinstance(value, bytes | bytearray | memoryview):
            out.append("b" + hashlib.sha256(bytes(value)).hexdigest())
        elif isinstance(value, bool):
            out.append("t" if value else "f")
        elif isinstance(value, float):
            out.append(repr(value))
        elif value is None:
            out.append("-")
        else:
            out.append(repr(value))
    return "\x1f".join(out)


class _Sum:
    """An order-free checksum of a table's rows (each row's SHA-256 added up)."""

    def __init__(self) -> None:
        self.rows = 0
        self.total = 0

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows += 1
        self.total += int.from_bytes(hashlib.sha256(_canonical(row).encode()).digest(), "big")

    def hexdigest(self) -> str:
        return (self.total % (1 << 256)).to_bytes(32, "big").hex()


def _convert(value: Any, pg_type: str) -> Any:
    if value is None:
        return None
    if pg_type == "boolean":
        return bool(value)
    if pg_type == "bytea":
        return bytes(value)
    if pg_type == "double precision":
        return float(value)
    if pg_type in ("bigint", "integer", "smallint"):
        return int(value)
    return value


def _source_column(table: str, column: str) -> str:
    """The SQLite column a PostgreSQL column is filled from."""
    if (table, column) == ("messages", "digest"):
        return "blob_id"
    if (table, column) == ("blobs", "digest"):
        return "id"
    return column


class _Move:
    def __init__(self, source: sqlite3.Connection, target: Any) -> None:
        self.source = source
        self.target = target
        self.digests: dict[int, bytes] = {}

    async def pg_tables(self) -> dict[str, list[tuple[str, str]]]:
        rows = await self.target.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
        tables: dict[str, list[tuple[str, str]]] = {}
        for name, column, data_type in rows:
            if name not in _NOT_COPIED and name not in _INDEX:
                tables.setdefault(name, []).append((column, data_type))
        return tables

    def sqlite_tables(self) -> dict[str, list[str]]:
        names = [
            r[0] for r in self.source.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
            if not r[0].startswith(_INDEX)
        ]
        return {
            name: [r[1] for r in self.source.execute(f'PRAGMA table_info("{name}")')]
            for name in names
        }

    def _rows(self, query: str) -> Iterator[tuple[Any, ...]]:
        cursor = self.source.execute(query)
        while batch := cursor.fetchmany(_CHUNK):
            yield from batch

    async def copy(self, name: str, wanted: list[tuple[str, str]]) -> _Sum:
        """Copy one table's ``wanted`` columns; the checksum of what was read."""
        total = _Sum()
        names = [c for c, _t in wanted]
        records: Iterator[tuple[Any, ...]]
        if name == "blobs":
            records = self._blobs()
        else:
            select = ", ".join(_source_column(name, c) for c in names)
            query = f"SELECT {select} FROM {name}"
            if name == "meta":
                query += f" WHERE key NOT IN ({', '.join(repr(k) for k in _COUNTERS)})"
            types = [t for _c, t in wanted]
            records = (
                tuple(
                    self.digests[v] if (name == "messages" and c == "digest") else _convert(v, t)
                    for v, c, t in zip(row, names, types, strict=True)
                )
                for row in self._rows(query)
            )
        batch: list[tuple[Any, ...]] = []
        for record in records:
            total.add(record)
            batch.append(record)
            if len(batch) >= _CHUNK:
                await self.target.copy_records_to_table(name, records=batch, columns=names)
                batch = []
        if batch:
            await self.target.copy_records_to_table(name, records=batch, columns=names)
        return total

    def _blobs(self) -> Iterator[tuple[Any, ...]]:
        """SQLite's blobs by digest: copies of the same bytes become one."""
        kept: dict[bytes, list[Any]] = {}
        for blob_id, refs, data in self._rows("SELECT id, refs, data FROM blobs ORDER BY id"):
            digest = hashlib.sha256(bytes(data)).digest()
            self.digests[int(blob_id)] = digest
            if digest in kept:
                kept[digest][0] += int(refs)
            else:
                kept[digest] = [int(refs), int(blob_id)]
        for digest, (refs, blob_id) in kept.items():
            data, parsed = self.source.execute(
                "SELECT data, parsed FROM blobs WHERE id = ?", (blob_id,)
            ).fetchone()
            yield digest, refs, bytes(data), bytes(parsed)

    async def target_sum(self, name: str, names: list[str]) -> _Sum:
        total = _Sum()
        async for row in self.target.cursor(f"SELECT {', '.join(names)} FROM {name}"):
            total.add(tuple(row))
        return total

    def highest(self, table: str, seq_name: str | None) -> int:
        """The highest id SQLite ever gave in ``table`` (or by a meta counter)."""
        best = 0
        if table in self.sqlite_tables():
            (found,) = self.source.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
            best = int(found)
        if self.source.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
        ).fetchone():
            row = self.source.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
            ).fetchone()
            if row:
                best = max(best, int(row[0]))
        if seq_name is not None:
            row = self.source.execute(
                "SELECT value FROM meta WHERE key = ?", (seq_name,)
            ).fetchone()
            if row:
                best = max(best, int(row[0]))
        return best

    async def sequences(self) -> None:
        rows = await self.target.fetch(
            "SELECT table_name FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND column_name = 'id' AND is_identity = 'YES'"
        )
        counters = {table: key for key, table in _COUNTERS.items() if table}
        for (table,) in rows:
            if table in _NOT_COPIED:
                continue
            highest = self.highest(table, counters.get(table))
            if highest:
                await self.target.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), $1)", highest
                )
        row = self.source.execute("SELECT value FROM meta WHERE key = 'email_id'").fetchone()
        (email_max,) = self.source.execute(
            "SELECT coalesce(max(email_id), 0) FROM messages"
        ).fetchone()
        highest = max(int(row[0]) if row else 0, int(email_max))
        if highest:
            await self.target.execute("SELECT setval('email_ids', $1)", highest)


async def _check_empty(conn: Any, tables: list[str]) -> None:
    for name in tables:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name})"):
            raise StoreError(
                f"the PostgreSQL database is not empty (table {name} has rows): "
                "migrate only into a new database"
            )


async def migrate(sqlite_path: Path, url: str, *, password: str | None = None) -> Report:
    """Copy the SQLite store at ``sqlite_path`` (at this mailstack's schema
    version) into the empty database at ``url``; raises StoreError without
    writing anything when the database holds data or the checksums differ."""
    if not sqlite_path.exists():
        raise StoreError(f"no SQLite store at {sqlite_path}")
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        source.execute("BEGIN")  # one snapshot of the whole store
        try:
            target = await asyncpg.connect(url, password=password)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to {url}: {exc}") from exc
        try:
            await schema.migrate(target)
            async with target.transaction():
                await target.execute("SELECT pg_advisory_xact_lock($1)", schema.MIGRATION_LOCK)
                move = _Move(source, target)
                tables = await move.pg_tables()
                await _check_empty(target, sorted(tables) + ["nodes"])
                present = move.sqlite_tables()
                for name in _DERIVED:
                    tables.pop(name, None)
                    present.pop(name, None)
                extra = sorted(set(present) - set(tables))
                if extra:
                    raise StoreError(
                        f"the SQLite store has tables PostgreSQL has no place for: {extra}"
                        " (is this mailstack older than the store?)"
                    )
                for name, columns in present.items():
                    known = {c for c, _t in tables.get(name, [])}
                    mapped = {"blobs": {"id"}, "messages": {"blob_id"}}.get(name, set())
                    lost = sorted(set(columns) - known - mapped)
                    if lost and name in tables:
                        raise StoreError(
                            f"PostgreSQL has no place for {name}.{', '.join(lost)}"
                        )
                order = [t for t in _FIRST if t in tables]
                order += sorted(t for t in tables if t not in order)
                # blobs before messages (their digests).
                order.remove("blobs")
                order.insert(0, "blobs")
                reports = []
                for name in order:
                    if name not in present:
                        raise StoreError(f"the SQLite store has no table {name}")
                    wanted = [
                        (c, t) for c, t in tables[name]
                        if _source_column(name, c) in present[name]
                    ]
                    source_sum = await move.copy(name, wanted)
                    target_sum = await move.target_sum(name, [c for c, _t in wanted])
                    reports.append(TableReport(
                        name, source_sum.rows, target_sum.rows,
                        source_sum.hexdigest(), target_sum.hexdigest(),
                    ))
                await move.sequences()
                # The triggers counted the copied messages into the copied
                # counts once more: counted again from the messages.
                await target.execute(schema.RECOUNT)
                await schema.index_kept_messages(target, PARSE_CODEC)
                # The store makes the derived tables again at its next open.
                await target.execute(
                    "INSERT INTO meta VALUES ('sort_records_pending', 1)"
                    " ON CONFLICT (key) DO UPDATE SET value = 1"
                )
                report = Report(reports)
                if not report.same:
                    differ = [t.name for t in reports if not t.same]
                    raise StoreError(
                        f"the copy differs from the source in {differ}; nothing written"
                    )
                return report
        except asyncpg.PostgresError as exc:
            raise StoreError(f"PostgreSQL refused the copy: {exc}") from exc
        finally:
            await target.close()
    finally:
        source.close()
