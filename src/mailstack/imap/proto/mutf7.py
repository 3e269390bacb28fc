"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3).

Printable US-ASCII stands for itself except '&', which is written "&-";
anything else is UTF-16BE in modified BASE64 (',' for '/', no padding)
between '&' and '-'.
"""

from __future__ import annotations

import base64

from mailstack.errors import ImapError

__all__ = ["encode", "decode"]


def _b64(chunk: str) -> str:
    data = chunk.encode("utf-16-be")
    return base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")


def encode(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            if pending:
                out.append("&" + _b64("".join(pending)) + "-")
                pending = []
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    if pending:
        out.append("&" + _b64("".join(pending)) + "-")
    return "".join(out)


def decode(name: str) -> str:
    """Decode a modified UTF-7 name; a malformed one is a BAD (RFC 3501 §5.1.3)."""
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if ord(ch) > 0x7E or ord(ch) < 0x20:
            # Not modified UTF-7 at all: a UTF-8 name (RFC 6855 style); keep it.
            out.append(ch)
            i += 1
            continue
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ImapError("Bad modified UTF-7 mailbox name", bad=True)
        chunk = name[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                text = base64.b64decode(b64, validate=True).decode("utf-16-be")
            except (ValueError, UnicodeDecodeError):
                raise ImapError("Bad modified UTF-7 mailbox name", bad=True) from None
            out.append(text)
        i = end + 1
    return "".join(out)
