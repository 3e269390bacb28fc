"""The S:/C: protocol trace, as the lectures print it.

    [smtp 3] S: 220 hamburger.edu ESMTP mailstack
    [smtp 3] C: HELO crepes.fr

`serve --trace` turns it on; off, every call is a cheap no-op. Message bodies
and literals are elided past a few lines so a trace stays readable.
"""

from __future__ import annotations

import itertools
import sys
from typing import TextIO

BODY_LINES_SHOWN = 5


class SessionTrace:
    __slots__ = ("_out", "_prefix", "_body_lines")

    def __init__(self, out: TextIO | None, prefix: str) -> None:
        self._out = out
        self._prefix = prefix
        self._body_lines = 0

    @property
    def enabled(self) -> bool:
        return self._out is not None

    def _emit(self, who: str, data: bytes | str) -> None:
        if self._out is None:
            return
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        for line in text.splitlines() or [""]:
            self._out.write(f"{self._prefix} {who}: {line}\n")
        self._out.flush()

    def server(self, data: bytes | str) -> None:
        if self._out is not None:
            self._emit("S", data)

    def client(self, data: bytes | str) -> None:
        if self._out is not None:
            self._emit("C", data)

    def body(self, data: bytes) -> None:
        """Client message content: the first few lines, then a count."""
        if self._out is None:
            return
        lines = data.splitlines()
        for line in lines[:BODY_LINES_SHOWN]:
            self._emit("C", line)
        if len(lines) > BODY_LINES_SHOWN:
            self._emit("C", f"... ({len(lines) - BODY_LINES_SHOWN} more lines, {len(data)} octets)")

    def note(self, text: str) -> None:
        if self._out is not None:
            self._out.write(f"{self._prefix} -- {text}\n")
            self._out.flush()

    def close(self) -> None:
        self.note("closed")


class Tracer:
    def __init__(self, enabled: bool = False, out: TextIO | None = None) -> None:
        self._out = (out or sys.stdout) if enabled else None
        self._ids = itertools.count(1)

    @property
    def enabled(self) -> bool:
        return self._out is not None

    def session(self, protocol: str, peer: str, *, outbound: bool = False) -> SessionTrace:
        """A session's trace; ``outbound`` when we are the client (the user agent)."""
        if self._out is None:
            return SessionTrace(None, "")
        trace = SessionTrace(self._out, f"[{protocol} {next(self._ids)}]")
        trace.note(f"connection {'to' if outbound else 'from'} {peer}")
        return trace
