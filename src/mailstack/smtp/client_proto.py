"""The SMTP client side without I/O: replies parsed from bytes, commands built.

`ReplyReader` takes the server's bytes (``feed``) and hands out whole replies
(``next_reply``), multi-line ones joined (RFC 5321 §4.2.1: "250-" lines, then
"250 "), with bounds on line length and line count so that a hostile server
cannot make us buffer without end. `extensions` reads an EHLO reply
(RFC 5321 §4.1.1.1). `mail_command`/`rcpt_command` build the envelope
commands with their ESMTP parameters, `dot_stuff` prepares a message for
DATA (RFC 5321 §4.5.2) and `bdat` for CHUNKING (RFC 3030 §2). `Host` is a
mail exchanger to connect to, as the queue's routing (RFC 5321 §5.1) finds it.

The connection that uses these (timeouts, TLS, pipelining) is `client.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailstack.errors import MailstackError

__all__ = [
    "ClientReply",
    "Host",
    "ReplyError",
    "ReplyReader",
    "bdat",
    "dot_stuff",
    "extensions",
    "mail_command",
    "rcpt_command",
]

# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; we allow more.
MAX_REPLY_LINE = 4096
# EHLO replies are the longest; a hundred lines is far beyond any real one.
MAX_REPLY_LINES = 100

_CODE = re.compile(rb"^([2-5][0-9][0-9])([ -])")


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    addresses: tuple[str, ...]


class ReplyError(MailstackError):
    """The server's reply is not SMTP."""


@dataclass(frozen=True, slots=True)
class ClientReply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The reply text (lines joined by spaces), without the code."""
        return " ".join(self.lines)

    @property
    def positive(self) -> bool:
        return self.code < 400


class ReplyReader:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._lines: list[str] = []
        self._code: bytes | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > MAX_REPLY_LINE and b"\n" not in self._buf[:MAX_REPLY_LINE]:
            raise ReplyError("reply line too long")

    def next_reply(self) -> ClientReply | None:
        """A whole reply, or None until more bytes arrive."""
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                return None
            line = bytes(self._buf[: end + 1]).rstrip(b"\r\n")
            del self._buf[: end + 1]
            match = _CODE.match(line)
            if match is None and len(line) == 3 and line.isdigit():
                # "250" alone: a last line without text.
                code, more = line, False
            elif match is None:
                raise ReplyError("malformed reply line")
            else:
                code, more = match.group(1), match.group(2) == b"-"
            if self._code is not None and code != self._code:
                raise ReplyError("reply lines with different codes")
            self._code = code
            self._lines.append(line[4:].decode("utf-8", "replace"))
            if len(self._lines) > MAX_REPLY_LINES:
                raise ReplyError("reply has too many lines")
            if not more:
                reply = ClientReply(int(code), tuple(self._lines))
                self._lines = []
                self._code = None
                return reply


def extensions(reply: ClientReply) -> dict[str, str]:
    """EHLO keywords (upper case) and their parameters; the first line is the greeting."""
    found: dict[str, str] = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            found[keyword.upper()] = params
    return found


def _path(address: str) -> str:
    return f"<{address}>"


def mail_command(mail_from: str, params: list[str]) -> bytes:
    words = ["MAIL FROM:" + _path(mail_from), *params]
    return (" ".join(words) + "\r\n").encode()


def rcpt_command(address: str, params: list[str]) -> bytes:
    words = ["RCPT TO:" + _path(address), *params]
    return (" ".join(words) + "\r\n").encode()


def dot_stuff(data: bytes) -> bytes:
    """The DATA text: leading dots doubled (RFC 5321 §4.5.2), CRLF at the end,
    then the end-of-data line."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def bdat(data: bytes) -> bytes:
    """The whole message as one last chunk (RFC 3030 §2: no stuffing)."""
    return f"BDAT {len(data)} LAST\r\n".encode() + data
