"""Uploaded blobs (JMAP, RFC 8620 §6.1), kept for a configured time and
then swept: on one node files under ``<data_dir>/uploads``, one directory
per account (``UploadArea``); on PostgreSQL rows of the store, so every node
sharing it finds them (``StoreUploads``, store/postgres/uploads.py). Both
are used through ``Uploads``.

A blob is one 0600 file: a first line of JSON (its media type, size and
upload time) and then its octets. It is written under a temporary name,
fsynced, renamed into place and its directory fsynced, so an upload that was
answered survives a crash, and a crash mid-upload leaves no blob. The ids are
random 62-bit numbers, so one account cannot guess another's (and a blob is
only ever looked for under its own account's directory).

"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from mailstack.store.private import create_private, private_dir

__all__ = [
    "FileUploads", "StoreUploads", "Upload", "UploadArea", "UploadSink", "UploadWriter", "Uploads",
]

_TMP = ".tmp"


@dataclass(frozen=True, slots=True)
class Upload:
    number: int
    account_id: int
    type: str
    size: int
    created: float  # Unix time
    path: Path | None  # None: kept in the store
    offset: int  # where the octets start in the file

    def read(self) -> bytes:
        assert self.path is not None
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)


class UploadWriter:
    """One upload being written: ``write`` its octets, then ``commit``
    (durable when it returns) or ``abort``. Blocking: call from a thread."""

    def __init__(self, area: UploadArea, account_id: int) -> None:
        self.account_id = account_id
        self.number = secrets.randbits(62) or 1
        self.directory = area.account_dir(account_id)
        private_dir(self.directory)
        self.path = self.directory / f"{self.number}{_TMP}"
        self.size = 0
        self._file: BinaryIO = os.fdopen(create_private(self.path), "wb")
        # The header is written at commit, over a fixed-width placeholder.
        self._file.write(b" " * _HEADER)

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.size += len(data)

    def commit(self, media_type: str) -> Upload:
        created = time.time()
        header = json.dumps({"type": media_type, "size": self.size, "created": created})
        encoded = header.encode()
        if len(encoded) >= _HEADER:
            raise ValueError("media type too long")
        self._file.seek(0)
        self._file.write(encoded.ljust(_HEADER - 1) + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = self.directory / str(self.number)
        os.replace(self.path, final)
        _fsync_dir(self.directory)
        return Upload(self.number, self.account_id, media_type, self.size, created, final, _HEADER)

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


# The header line's fixed width: JSON with a media type of up to 255 octets.
_HEADER = 512


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UploadArea:
    """The uploads of one data directory. Blocking: call from a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def account_dir(self, account_id: int) -> Path:
        return self.root / str(account_id)

    def writer(self, account_id: int) -> UploadWriter:
        private_dir(self.root)
        return UploadWriter(self, account_id)

    def get(self, account_id: int, number: int) -> Upload | None:
        path = self.account_dir(account_id) / str(number)
        try:
            with open(path, "rb") as f:
                meta = json.loads(f.read(_HEADER))
        except (OSError, ValueError):
            return None
        return Upload(
            number, account_id, str(meta["type"]), int(meta["size"]), float(meta["created"]),
            path, _HEADER,
        )

    def copy(self, upload: Upload, account_id: int) -> Upload:
        """The blob as an upload of another account (JMAP Blob/copy)."""
        writer = self.writer(account_id)
        try:
            writer.write(upload.read())
            return writer.commit(upload.type)
        except BaseException:
            writer.abort()
            raise

    def sweep(self, older_than: float) -> int:
        """Remove uploads (and leftovers of interrupted ones) made before
        ``older_than`` (Unix time); how many went."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for directory in self.root.iterdir():
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < older_than:
                        path.unlink()
                        removed += 1
        return removed


# -- the async face JMAP uses ----------------------------------------------


class UploadSink(Protocol):
    """One upload being received: ``write`` its octets, then ``commit``
    (durable when it returns) or ``abort``."""

    @property
    def size(self) -> int:
        """Octets written so far."""
        ...

    async def write(self, data: bytes) -> None: ...
    async def commit(self, media_type: str) -> Upload: ...
    async def abort(self) -> None: ...


class Uploads(Protocol):
    async def begin(self, account_id: int) -> UploadSink: ...
    async def get(self, account_id: int, number: int) -> Upload | None: ...
    async def read(self, upload: Upload) -> bytes: ...
    async def sweep(self, older_than: float) -> int: ...


class _FileSink:
    def __init__(self, writer: UploadWriter) -> None:
        self.writer = writer

    @property
    def size(self) -> int:
        return self.writer.size

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self.writer.write, data)

    async def commit(self, media_type: str) -> Upload:
        return await asyncio.to_thread(self.writer.commit, media_type)

    async def abort(self) -> None:
        await asyncio.to_thread(self.writer.abort)


class FileUploads:
    """``Uploads`` as files of one node's data directory (``UploadArea``),
    its blocking calls in threads."""

    def __init__(self, area: UploadArea) -> None:
        self.area = area

    async def begin(self, account_id: int) -> UploadSink:
        return _FileSink(await asyncio.to_thread(self.area.writer, account_id))

    async def get(self, account_id: int, number: int) -> Upload | None:
        return await asyncio.to_thread(self.area.get, account_id, number)

    async def read(self, upload: Upload) -> bytes:
        return await asyncio.to_thread(upload.read)

    async def sweep(self, older_than: float) -> int:
        return await asyncio.to_thread(self.area.sweep, older_than)


# Octets of an upload kept in memory before they go to the store as one row.
STORE_CHUNK = 1024 * 1024


class _StoreSink:
    def __init__(self, store: Any, account_id: int, number: int) -> None:
        self.store = store
        self.account_id = account_id
        self.number = number
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._seq = 0

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        self.size += len(data)
        if self._pending_size >= STORE_CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        if self._pending:
            await self.store.upload_append(self.number, self._seq, b"".join(self._pending))
            self._seq += 1
            self._pending, self._pending_size = [], 0

    async def commit(self, media_type: str) -> Upload:
        await self._flush()
        created = await self.store.upload_finish(self.number, media_type, self.size)
        return Upload(self.number, self.account_id, media_type, self.size, created, None, 0)

    async def abort(self) -> None:
        self._pending = []
        await self.store.upload_abort(self.number)


class StoreUploads:
    """``Uploads`` as rows of a PostgreSQL store: every node sharing the
    store finds them."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def begin(self, account_id: int) -> UploadSink:
        return _StoreSink(self.store, account_id, await self.store.upload_begin(account_id))

    async def get(self, account_id: int, number: int) -> Upload | None:
        found = await self.store.upload_get(account_id, number)
        if found is None:
            return None
        media_type, size, created = found
        return Upload(number, account_id, media_type, size, created, None, 0)

    async def read(self, upload: Upload) -> bytes:
        return bytes(await self.store.upload_read(upload.account_id, upload.number))

    async def sweep(self, older_than: float) -> int:
        return int(await self.store.upload_sweep(older_than))
