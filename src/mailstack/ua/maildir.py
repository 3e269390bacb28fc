"""The local Maildir that POP3 downloads into, and the UIDLs it remembers.

The Maildir layout (cr.yp.to/proto/maildir.html): a message is written
under ``tmp/``, fsynced, then renamed into ``new/``; reading marks it seen by
moving it to ``cur/`` with the ``:2,S`` info. A message is on stable storage
(file and directory fsynced) before POP3 may DELE it, so download-and-delete
loses nothing if the machine stops at any moment.

RFC 1939 §7 UIDL: the unique-id of a message is stable across sessions, so
the Maildir remembers, per account, the UIDLs it holds (``.mailstack-uidl``,
one ``account uidl key`` line each, appended and fsynced): download-and-keep
fetches only new mail, and a run that stopped after downloading but before
the server deleted does not download again.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from mailstack.errors import MailstackError

__all__ = ["LocalMessage", "Maildir"]

STATE = ".mailstack-uidl"
_COUNTER = itertools.count(1)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class LocalMessage:
    key: str
    path: Path
    flags: str  # Maildir info flags: "S" seen, "R" replied, "F" flagged, ...
    mtime: float


class Maildir:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            for sub in ("tmp", "new", "cur"):
                (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise MailstackError(f"--maildir {path}: {exc.strerror}") from None

    # -- delivery ------------------------------------------------------------------

    def _unique(self) -> str:
        now = time.time()
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        return f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(_COUNTER)}.{host}"

    def deliver(self, raw: bytes) -> str:
        """Write a message durably into new/; its key."""
        key = self._unique()
        tmp = self.path / "tmp" / key
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.path / "new" / key)
        _fsync_dir(self.path / "new")
        return key

    # -- the UIDLs ---------------------------------------------------------------------

    def uidls(self, account: str) -> dict[str, str]:
        """UIDL -> Maildir key of what ``account``'s maildrop gave us."""
        known: dict[str, str] = {}
        try:
            text = (self.path / STATE).read_text("utf-8")
        except FileNotFoundError:
            return known
        for line in text.splitlines():
            words = line.split(" ")
            if len(words) == 3 and words[0] == account:
                known[words[1]] = words[2]
        return known

    def remember(self, account: str, uidl: str, key: str) -> None:
        fd = os.open(self.path / STATE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{account} {uidl} {key}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def keep_only(self, account: str, uidls: set[str]) -> None:
        """Forget ``account``'s UIDLs but ``uidls`` (what the server still has)."""
        path = self.path / STATE
        try:
            lines = path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return

        def wanted(line: str) -> bool:
            words = line.split(" ")
            return len(words) != 3 or words[0] != account or words[1] in uidls

        kept = [line for line in lines if wanted(line)]
        if len(kept) == len(lines):
            return
        tmp = path.with_name(STATE + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept), "utf-8")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.path)

    # -- reading -------------------------------------------------------------------------

    def messages(self) -> list[LocalMessage]:
        """Every message, oldest first (by delivery time, then key)."""
        found = []
        for sub in ("new", "cur"):
            for entry in os.scandir(self.path / sub):
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                key, _, info = entry.name.partition(":")
                flags = info[2:] if info.startswith("2,") else ""
                found.append(LocalMessage(key, Path(entry.path), flags, entry.stat().st_mtime))
        found.sort(key=lambda m: (m.mtime, m.key))
        return found

    def mark_seen(self, message: LocalMessage) -> None:
        if "S" in message.flags:
            return
        flags = "".join(sorted(set(message.flags + "S")))
        os.rename(message.path, self.path / "cur" / f"{message.key}:2,{flags}")
