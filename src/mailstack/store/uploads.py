"""Uploaded blobs (JMAP, RFC 8620 §6.1): files under ``<data_dir>/uploads``,
one directory per account, kept for a configured time and then swept.

A blob is one 0600 file: a first line of JSON (its media type, size and
upload time) and then its octets. It is written under a temporary name,
fsynced, renamed into place and its directory fsynced, so an upload that was
answered survives a crash, and a crash mid-upload leaves no blob. The ids are
random 62-bit numbers, so one account cannot guess another's (and a blob is
only ever looked for under its own account's directory).

The blobs live beside the data of one node: several nodes sharing a
PostgreSQL store do not see each other's uploads.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mailstack.store.private import create_private, private_dir

__all__ = ["Upload", "UploadArea", "UploadWriter"]

_TMP = ".tmp"


@dataclass(frozen=True, slots=True)
class Upload:
    number: int
    account_id: int
    type: str
    size: int
    created: float  # Unix time
    path: Path
    offset: int  # where the octets start in the file

    def read(self) -> bytes:
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
