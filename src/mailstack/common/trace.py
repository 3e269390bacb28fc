"""The S:/C: protocol trace, as the lectures print it.

    [smtp 3] S: 220 hamburger.edu ESMTP mailstack
    [smtp 3] C: HELO crepes.fr

`serve --trace` turns it on; off, every call is a cheap no-op. Message bodies
and literals are elided past a few lines so a trace stays readable.

A trace never shows a credential: each protocol's session says which client
lines carry one (SMTP AUTH, RFC 4954; POP3 PASS and AUTH, RFC 1939, RFC 5034;
IMAP LOGIN and AUTHENTICATE, RFC 3501) and shows `CREDENTIALS_ELIDED` in their
place. `client_lines` hands a session whole lines however the client's bytes
were split, so a secret is recognised even when it arrives in pieces.
"""

from __future__ import annotations

import itertools
import sys
from typing import TextIO

BODY_LINES_SHOWN = 5
# What a trace shows instead of a password or a SASL response.
CREDENTIALS_ELIDED = "[credentials elided]"
# A client line held for the trace until its end arrives; past this, the
# rest of the line is dropped unseen (the protocol refuses it anyway).
PARTIAL_LINE_MAX = 16384


class SessionTrace:
    __slots__ = ("_out", "_prefix", "_body_lines", "_partial", "_skipping")

    def __init__(self, out: TextIO | None, prefix: str) -> None:
        self._out = out
        self._prefix = prefix
        self._body_lines = 0
        self._partial = b""  # the start of a client line whose end has not come
        self._skipping = False  # dropping the rest of an over-long line

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

    def client_lines(self, data: bytes) -> list[bytes]:
        """The client lines that ``data`` completes, each whole with its line
        end; the start of an unfinished line is kept for the next call."""
        if self._out is None:
            return []
        *lines, rest = (self._partial + data).split(b"\n")
        whole = [line + b"\n" for line in lines]
        if self._skipping and whole:
            whole[0] = b"[over-long line elided]\n"
            self._skipping = False
        if len(rest) > PARTIAL_LINE_MAX:
            rest, self._skipping = b"", True
        self._partial = rest
        return whole

    def drop_partial(self) -> None:
        """Forget an unfinished client line (the stream turned to message
        text, or to TLS)."""
        self._partial = b""
        self._skipping = False

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
