"""Command framing: cut the client's byte stream into whole IMAP commands.

RFC 3501 §2.2 and §4.3: a command is one line, except that a literal
(``{n}`` CRLF followed by n octets) continues it across lines. The reader
yields ``NeedLiteral`` when the client waits for a ``+`` continuation before
sending a synchronizing literal, and checks the size the client announces
against the limit *before* any octet of the literal is read (RFC 7888 §4,
ARCHITECTURE.md rule 4). Non-synchronizing literals (``{n+}``, RFC 7888
LITERAL+) need no continuation. Lines are cut by the one framer,
``common.lines.LineBuffer``; literals are taken from it by their count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailstack.common.lines import LineBuffer, LineTooLong, NeedData
from mailstack.errors import ImapError

__all__ = ["CommandReader", "FramingError", "Hangup", "NeedData", "NeedLiteral", "RawCommand"]

_LITERAL_AT_END = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}\r?\n\Z")
_TAG = re.compile(rb"[^\x00-\x20(){%*\"\\+\x7f-\xff]+")
_APPEND = re.compile(rb"[^ ]+ APPEND ", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NeedLiteral:
    """The client waits for a ``+`` continuation before sending ``size`` octets."""

    size: int


@dataclass(frozen=True, slots=True)
class RawCommand:
    """One whole command as it arrived, cut into its lines and literals,
    alternating: (line, literal, line, ..., line); each line keeps its CRLF.

    ``lines`` and ``literals`` feed the parser without copying the literals
    (a message of an APPEND is held once); ``raw`` is the command as sent.
    """

    parts: tuple[bytes, ...]

    @property
    def lines(self) -> bytes:
        return b"".join(self.parts[0::2])

    @property
    def literals(self) -> tuple[bytes, ...]:
        return self.parts[1::2]

    @property
    def raw(self) -> bytes:
        return b"".join(self.parts)


@dataclass(frozen=True, slots=True)
class FramingError:
    """The command was refused before it was complete.

    ``error`` is the reply for ``tag``; when ``fatal`` the connection must be
    closed after the reply (the rest of the stream can no longer be framed).
    """

    tag: str
    error: ImapError
    fatal: bool


@dataclass(frozen=True, slots=True)
class Hangup:
    """The session ends: send ``farewell`` (maybe nothing), then close."""

    farewell: bytes


_NEED_DATA = NeedData()
# The client closed the connection: there is no one to answer.
_CLOSED = Hangup(b"")
# RFC 3501 §5.4: the autologout timer ran out.
_AUTOLOGOUT = Hangup(b"* BYE Autologout; idle for too long\r\n")


def tag_of(line: bytes) -> str:
    """The tag at the start of a command line, or ``*`` when there is none."""
    m = _TAG.match(line)
    return m.group().decode("ascii") if m else "*"


class CommandReader:
    """Feed bytes; ask for the next event.

    ``max_line`` bounds each line of a command (and a line read in line
    mode); ``max_literal`` bounds each literal of APPEND (a message), while
    the literals of every other command (names, passwords, search strings)
    get ``max_line``; ``max_command`` bounds the sum of all lines and literals
    of one APPEND, and four times ``max_line`` that of any other command.
    """

    def __init__(self, *, max_line: int, max_literal: int, max_command: int) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_command = max_command
        self._lines = LineBuffer(max_line)
        self._eof = False
        self._parts: list[bytes] = []
        self._size = 0
        self._literal = -1  # octets of the literal being read; -1: reading a line

    @property
    def pending(self) -> int:
        """Octets received and not yet returned in an event."""
        return self._lines.pending

    @property
    def at_eof(self) -> bool:
        """The client closed its side of the connection."""
        return self._eof

    @property
    def parts(self) -> tuple[bytes, ...]:
        """The lines and literals of the command being read, so far."""
        return tuple(self._parts)

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``b""`` at end of file."""
        if data:
            self._lines.feed(data)
        else:
            self._eof = True

    def tls_started(self) -> None:
        """Drop everything buffered: plaintext that arrived behind STARTTLS
        is never read as if it came over TLS (RFC 3501 §6.2.1, RFC 7817 §3)."""
        self._lines.clear()
        self._parts = []
        self._size = 0
        self._literal = -1

    def timed_out(self) -> Hangup:
        return _AUTOLOGOUT

    def next_line(self) -> bytes | None:
        """Line mode (AUTHENTICATE responses, IDLE's DONE): one raw line or None.

        Raises ImapError when the line is longer than ``max_line`` (the rest
        of it, up to its LF, is skipped).
        """
        try:
            return self._lines.next_line()
        except LineTooLong:
            raise ImapError("Line too long", bad=True, code="TOOBIG") from None

    def next_event(self) -> NeedData | NeedLiteral | RawCommand | FramingError | Hangup:
        lines = self._lines
        while True:
            if self._literal >= 0:
                literal = lines.take(self._literal)
                if literal is None:
                    return _CLOSED if self._eof else _NEED_DATA
                self._parts.append(literal)
                self._literal = -1
            try:
                line = lines.next_line()
            except LineTooLong as exc:
                return self._fail("Command line too long", "TOOBIG", fatal=True, head=exc.head)
            if line is None:
                return _CLOSED if self._eof else _NEED_DATA
            self._parts.append(line)
            self._size += len(line)
            m = _LITERAL_AT_END.search(line)
            if m is None:
                parts = tuple(self._parts)
                self._parts = []
                self._size = 0
                return RawCommand(parts)
            size = int(m.group(2))
            synchronizing = not m.group(3)
            if _APPEND.match(self._parts[0]):
                cap, total = self.max_literal, self.max_command
            else:
                cap, total = self.max_line, 4 * self.max_line
            if size > cap or self._size + size > total:
                # RFC 7888 §4: a synchronizing literal that is too large is
                # refused without a continuation, so the client never sends
                # it; a non-synchronizing one is already on its way and the
                # stream cannot be resynchronised, so the connection closes.
                return self._fail("Literal too large", "TOOBIG", fatal=not synchronizing)
            self._size += size
            self._literal = size
            if synchronizing:
                return NeedLiteral(size)

    def _fail(self, text: str, code: str, *, fatal: bool, head: bytes = b"") -> FramingError:
        tag = tag_of(self._parts[0] if self._parts else head)
        self._parts = []
        self._size = 0
        self._literal = -1
        if fatal:
            self._lines.clear()
        return FramingError(tag, ImapError(text, bad=True, code=code), fatal)
