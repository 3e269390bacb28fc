"""Marks: files beside the database that grow by one octet after every
committed change of some kind, by any process.

A mark's size is a version number that a node reads with one stat() instead
of a database query. The directory mark follows domains, accounts and
aliases (so a node can keep recipient lookups and still see a CLI change at
once); the queue mark follows `queue retry` (so a running queue hears it
within a second). Marks need no fsync: after a crash, nothing that was kept
by them survives either.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mailstack.store.private import create_private

log = logging.getLogger(__name__)


def mark_changed(path: Path) -> None:
    try:
        fd = create_private(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("cannot update the mark %s: %s", path, exc)


def mark_version(path: Path) -> int | None:
    """The mark's version, or None when it cannot be read (then trust nothing)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return None
