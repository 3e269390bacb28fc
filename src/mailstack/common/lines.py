"""CRLF line framing with a length limit, checked before data is buffered.

Used by the SMTP, POP3 and IMAP protocol modules. `next_line()` returns a
line with its ending (CRLF or a bare LF: the protocols decide what a bare LF
means); `take(n)` reads exact octet counts (IMAP literals, SMTP BDAT).
"""

from __future__ import annotations

from mailstack.errors import MailstackError


class LineTooLong(MailstackError):
    """A line exceeded the configured limit."""


class LineBuffer:
    __slots__ = ("_buf", "_max_line", "_discarding")

    def __init__(self, max_line: int) -> None:
        self._buf = bytearray()
        self._max_line = max_line
        self._discarding = False

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_line(self) -> bytes | None:
        """The next whole line including its LF, None if it has not arrived.

        Raises LineTooLong once a line passes the limit (before its end has
        arrived if need be); the rest of that line, up to its LF, is then
        discarded so the caller can answer and go on in sync.
        """
        buf = self._buf
        if self._discarding:
            end = buf.find(b"\n")
            if end < 0:
                del buf[:]
                return None
            del buf[: end + 1]
            self._discarding = False
        end = buf.find(b"\n", 0, self._max_line)
        if end < 0:
            if len(buf) >= self._max_line:
                # Drop the over-long line only: what follows its LF is the
                # next (pipelined) line.
                end = buf.find(b"\n")
                if end < 0:
                    self._discarding = True
                    del buf[:]
                else:
                    del buf[: end + 1]
                raise LineTooLong()
            return None
        line = bytes(buf[: end + 1])
        del buf[: end + 1]
        return line

    def take(self, n: int) -> bytes | None:
        """Exactly n octets, or None until that many have arrived."""
        if len(self._buf) < n:
            return None
        chunk = bytes(self._buf[:n])
        del self._buf[:n]
        return chunk

    def take_available(self, n: int) -> bytes:
        """Up to n octets of what has arrived (streaming a large literal)."""
        chunk = bytes(self._buf[:n])
        del self._buf[:n]
        return chunk

    def clear(self) -> bytes:
        """Drop and return everything buffered (e.g. after STARTTLS)."""
        rest = bytes(self._buf)
        del self._buf[:]
        self._discarding = False
        return rest
