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
    """Decode a modified UTF-7 name; a malformed one is a BAD (RFC 3501 §5.1.3).

    Only the one canonical spelling of a name is taken: RFC 3501 §5.1.3
    "modified BASE64 MUST NOT be used to represent any printing US-ASCII
    character which can represent itself", so "&AGE-" (an "a") is refused,
    as are base64 with stray bits, and two encoded runs side by side (one
    run spells them). Otherwise two spellings would name one mailbox.
    """
    out: list[str] = []
    i = 0
    n = len(name)
    encoded_until = -1  # where the last encoded run ended
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
            if (
                any(0x20 <= ord(c) <= 0x7E for c in text)
                or _b64(text) != chunk
                or encoded_until == i
            ):
                raise ImapError("Mailbox name is not canonical modified UTF-7", bad=True)
            out.append(text)
            encoded_until = end + 1
        i = end + 1
    return "".join(out)
