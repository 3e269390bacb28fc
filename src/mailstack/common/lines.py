"""CRLF line framing with a length limit, checked before data is buffered.

The one framer of the SMTP, POP3 and IMAP protocol modules (RFC 5321 §2.3.8,
RFC 1939 §3, RFC 3501 §2.2). `next_line()` returns a line with its ending
(CRLF or a bare LF: the protocols decide what a bare LF means), under the
limit of the protocol's current state (a POP3 command line and a SASL
response differ); `take(n)` reads exact octet counts (IMAP literals, SMTP
BDAT); `buffer` is the bytes themselves, for a reader that scans them in
place (SMTP DATA looks for CRLF.CRLF without cutting lines).

`NeedData` is the event every protocol module returns when it has no whole
unit yet: the session driver then reads more.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstack.errors import MailstackError

__all__ = ["LineBuffer", "LineTooLong", "NeedData"]


@dataclass(frozen=True, slots=True)
class NeedData:
    """Nothing more can be decided until more bytes arrive."""


class LineTooLong(MailstackError):
    """A line exceeded the limit; ``head`` is how it began (an IMAP tag).

    ``again``: a further limit's worth of a line already reported, which a
    protocol counts (an error) but does not answer, so that its replies stay
    one per line."""

    def __init__(self, head: bytes = b"", *, again: bool = False) -> None:
        super().__init__()
        self.head = head
        self.again = again


class LineBuffer:
    __slots__ = ("_buf", "_max_line", "_discarding", "_skip_limit", "_skipped", "_due")

    def __init__(self, max_line: int) -> None:
        self._buf = bytearray()
        self._max_line = max_line
        self._discarding = False
        # An over-long line is reported once per `_skip_limit` octets of it:
        # octets of it not yet reported for, and reports owed.
        self._skip_limit = max_line
        self._skipped = 0
        self._due = 0

    @property
    def pending(self) -> int:
        return len(self._buf)

    @property
    def buffer(self) -> bytearray:
        """The buffered octets, for a reader that consumes them in place
        between whole lines (SMTP DATA, BDAT chunks)."""
        return self._buf

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_line(self, max_line: int = 0) -> bytes | None:
        """The next whole line including its LF, None if it has not arrived.

        ``max_line`` (octets with the line ending) overrides the buffer's
        own limit for this line. Raises LineTooLong once a line passes the
        limit (before its end has arrived if need be); the rest of that line,
        up to its LF, is then discarded so the caller can answer and go on in
        sync. Each further limit's worth of that line raises LineTooLong
        with ``again`` set: a line that never ends counts as many errors as the lines it
        could have been, so a peer cannot hold a session open by trickling
        octets of one endless line (however the octets were cut into reads).
        """
        buf = self._buf
        limit = max_line or self._max_line
        if self._discarding:
            end = buf.find(b"\n")
            self._skip(len(buf) if end < 0 else end)
            del buf[: len(buf) if end < 0 else end + 1]
            self._discarding = end < 0
        if self._due:
            self._due -= 1
            raise LineTooLong(again=True)
        if self._discarding:
            return None
        end = buf.find(b"\n", 0, limit)
        if end < 0:
            if len(buf) >= limit:
                raise self._too_long(limit)
            return None
        line = bytes(buf[: end + 1])
        del buf[: end + 1]
        return line

    def _too_long(self, limit: int) -> LineTooLong:
        buf = self._buf
        error = LineTooLong(bytes(buf[:200]))
        # Drop the over-long line only: what follows its LF is the next
        # (pipelined) line. This report is for its first `limit` octets.
        end = buf.find(b"\n")
        self._skip_limit = limit
        self._skipped = -limit
        self._skip(len(buf) if end < 0 else end)
        self._discarding = end < 0
        del buf[: len(buf) if end < 0 else end + 1]
        return error

    def _skip(self, octets: int) -> None:
        self._skipped += octets
        if self._skipped >= self._skip_limit:
            self._due += self._skipped // self._skip_limit
            self._skipped %= self._skip_limit

    def take(self, n: int) -> bytes | None:
        """Exactly n octets, or None until that many have arrived."""
        if len(self._buf) < n:
            return None
        chunk = bytes(self._buf[:n])
        del self._buf[:n]
        return chunk

    def clear(self) -> bytes:
        """Drop and return everything buffered.

        After STARTTLS/STLS (RFC 3207 §4.2, RFC 2595 §3.1, CVE-2011-0411):
        plaintext that arrived behind the command is never read as a command.
        """
        rest = bytes(self._buf)
        del self._buf[:]
        self._discarding = False
        self._skipped = self._due = 0
        return rest
