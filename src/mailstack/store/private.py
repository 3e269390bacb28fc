"""The data directory is private: mail, password hashes and DKIM and TLS
private keys live there, so it is mode 0700 and everything mailstack writes
in it 0600, whatever the umask.

Files are created with their mode (never made and then narrowed), and
`make_private` narrows what an older mailstack, a copy or an editor left
open to others, once at start, saying what it changed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "create_private", "make_private", "private_dir"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Make ``path`` (and missing parents) as a directory only we can enter;
    an existing one is left to `make_private`."""
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask


def create_private(path: Path, flags: int = os.O_WRONLY | os.O_TRUNC) -> int:
    """Open ``path`` for writing, created 0600 when missing; the descriptor."""
    return os.open(path, flags | os.O_CREAT, FILE_MODE)


def make_private(data_dir: Path, entries: Iterable[Path]) -> list[Path]:
    """Take group and other access away from ``data_dir`` and from each of
    ``entries`` under it (a directory with all it holds); the paths changed."""
    changed: list[Path] = []
    root = data_dir.resolve()

    def fix(path: Path, mode: int) -> None:
        try:
            current = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:
            return
        if current & 0o077 and not path.is_symlink():
            os.chmod(path, current & mode)
            changed.append(path)

    fix(data_dir, DIR_MODE)
    for entry in entries:
        try:
            entry.resolve().relative_to(root)
        except ValueError:
            continue  # a key or database kept elsewhere is its owner's to guard
        if entry.is_dir() and not entry.is_symlink():
            fix(entry, DIR_MODE)
            for parent, dirs, files in os.walk(entry):
                for name in dirs:
                    fix(Path(parent) / name, DIR_MODE)
                for name in files:
                    fix(Path(parent) / name, FILE_MODE)
        else:
            fix(entry, FILE_MODE)
    return changed
