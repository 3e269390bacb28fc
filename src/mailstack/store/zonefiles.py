"""Master zone files: the durable text that DNS UPDATE and secondary zone
transfers (RFC 1995, RFC 5936) rewrite. Their owners edit them too, so they
stay text beside the database, replaced atomically and fsynced."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

from mailstack.store.private import create_private, private_dir


class ZoneText(Protocol):
    def to_text(self) -> str:
        """The zone in master-file format (RFC 1035 §5)."""
        ...


def replace_durably(path: Path, text: str) -> None:
    """Replace a file atomically and durably: write, fsync, rename, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(create_private(tmp), "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_zone_file(path: Path, zone: ZoneText) -> None:
    private_dir(path.parent)
    replace_durably(path, zone.to_text())


async def save_zone_file(path: Path, zone: ZoneText) -> None:
    """Write ``zone`` to its master file (and its directory when missing),
    off the event loop."""
    await asyncio.to_thread(write_zone_file, path, zone)
