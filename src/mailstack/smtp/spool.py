"""SMTP message data on its way in: in memory while it is small, in a spool
file past a threshold, under one memory budget for the node (issue 15 item 9).

A session's ``Spool`` takes the ``MessageData`` pieces its protocol machine
hands up (``smtp.proto``, ``stream_data``). Up to ``[limits]
smtp_spool_threshold`` octets of one message are kept in memory, and only
while every session together holds less than ``smtp_memory``; past either,
the message goes to a temporary file (mode 0600) under ``<data_dir>/spool``,
removed when the message has been delivered or refused, or the session ends.
So a session that sends 45 MB and never the final dot costs a file, not
memory. A finished message that was spooled is read back whole for delivery
(SPF/DKIM/DMARC, the parse and the store take bytes), but only while the
messages being delivered that way fit in ``smtp_memory`` together (or it is
the only one): many big messages ending at once are delivered in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["Spool", "SpoolArea"]


class SpoolArea:
    """The node's spool directory and its memory budget, shared by every
    SMTP session of the node."""

    def __init__(self, directory: Path, threshold: int, memory: int) -> None:
        self.directory = directory
        self.threshold = threshold
        self.memory = memory
        self.held = 0  # octets of arriving message data held in memory
        self.delivering = 0  # octets of spooled messages read back for delivery
        self._waiters: deque[asyncio.Future[None]] = deque()

    def sweep(self) -> None:
        """Remove spool files a previous run left (it was killed mid-message)."""
        for leftover in self.directory.glob("smtp-*.spool"):
            with contextlib.suppress(OSError):
                leftover.unlink()

    def session(self) -> Spool:
        return Spool(self)

    def take(self, octets: int) -> bool:
        """Room to hold ``octets`` more in memory, taken; False when none."""
        if self.held + octets > self.memory:
            return False
        self.held += octets
        return True

    def give_back(self, octets: int) -> None:
        self.held -= octets

    @contextlib.asynccontextmanager
    async def delivery(self, octets: int) -> AsyncIterator[None]:
        """Room for a spooled message read back whole, for its delivery."""
        while self.delivering and self.delivering + octets > self.memory:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        self.delivering += octets
        try:
            yield
        finally:
            self.delivering -= octets
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)

    def open_file(self) -> tuple[BinaryIO, Path]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp: O_EXCL and mode 0600, in our own directory.
        fd, name = tempfile.mkstemp(prefix="smtp-", suffix=".spool", dir=self.directory)
        return os.fdopen(fd, "w+b"), Path(name)


class Spool:
    """One session's message data while it arrives."""

    def __init__(self, area: SpoolArea) -> None:
        self.area = area
        self._held: list[bytes] = []
        self._held_size = 0
        self._file: BinaryIO | None = None
        self.path: Path | None = None  # the spool file, while there is one

    async def add(self, data: bytes, first: bool) -> None:
        """The next piece of the message (``first``: of a new message)."""
        if first:
            self.discard()
        area = self.area
        file = self._file
        if file is None:
            if self._held_size + len(data) <= area.threshold and area.take(len(data)):
                self._held.append(data)
                self._held_size += len(data)
                return
            opened, self.path = await asyncio.to_thread(area.open_file)
            self._file = file = opened
            self._held.append(data)
            data = b"".join(self._held)
            self._release_held()
        await asyncio.to_thread(file.write, data)

    @contextlib.asynccontextmanager
    async def message(self, tail: bytes, *, streamed: bool) -> AsyncIterator[bytes]:
        """The whole message, its last octets ``tail``, for as long as it is
        being delivered; then the spool is empty. ``streamed``: pieces of it
        came before (else what the spool holds is an earlier message's)."""
        if not streamed:
            self.discard()
        if self._file is None:
            data = b"".join([*self._held, tail]) if self._held else tail
            try:
                yield data
            finally:
                self.discard()
            return
        file = self._file
        size = file.tell() + len(tail)
        async with self.area.delivery(size):
            data = await asyncio.to_thread(_read_back, file, tail)
            self.discard()
            yield data

    def discard(self) -> None:
        """Forget the message: memory given back, spool file removed."""
        self._release_held()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None

    def _release_held(self) -> None:
        if self._held_size:
            self.area.give_back(self._held_size)
        self._held = []
        self._held_size = 0


def _read_back(file: BinaryIO, tail: bytes) -> bytes:
    file.write(tail)
    file.seek(0)
    return file.read()
