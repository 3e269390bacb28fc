"""RFC 2047 encoded words, decoded for searching and display.

ENVELOPE and BODYSTRUCTURE keep header values raw (RFC 3501 §7.4.2); SEARCH
and webmail want readable text, which ``decode_header`` gives.
"""

from __future__ import annotations

import binascii
import codecs
import re

# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
# (RFC 2231 §5 allows "charset*language"); the text may not contain "?" or space.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_ONLY_SPACE = re.compile(r"[ \t\r\n]*")


def charset_decode(data: bytes, charset: str) -> str:
    """Decode *data* in *charset*; unknown or wrong charsets fall back to UTF-8."""
    name = charset.strip().lower()
    if name in ("", "us-ascii", "ascii", "utf-8", "utf8", "unknown-8bit", "x-unknown"):
        return data.decode("utf-8", "replace")
    try:
        codecs.lookup(name)
    except LookupError:
        return data.decode("utf-8", "replace")
    try:
        return data.decode(name, "replace")
    except (UnicodeError, LookupError, TypeError, ValueError):
        return data.decode("utf-8", "replace")


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding in "bB":
        # RFC 2047 §4.1: base64; be lenient with missing padding.
        text = text + "=" * (-len(text) % 4)
        try:
            return binascii.a2b_base64(text.encode("ascii", "replace"))
        except binascii.Error:
            return b""
    # RFC 2047 §4.2: Q encoding, "_" is a space.
    return binascii.a2b_qp(text.encode("ascii", "replace"), header=True)


def decode_header(value: str) -> str:
    """Decode the RFC 2047 encoded words in a header value; never raises.

    Whitespace between two adjacent encoded words is dropped (RFC 2047 §6.2),
    and adjacent words in one charset are joined before decoding so that a
    character split across two words survives.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = b""
    pending_charset = ""
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset = match.group(1)
        if pending and (_ONLY_SPACE.fullmatch(between) is None):
            out.append(charset_decode(pending, pending_charset))
            pending = b""
        if not pending:
            out.append(between)
        elif charset.lower() != pending_charset.lower():
            out.append(charset_decode(pending, pending_charset))
            pending = b""
        pending += _word_bytes(match.group(2), match.group(3))
        pending_charset = charset
        pos = match.end()
    if pending:
        out.append(charset_decode(pending, pending_charset))
    out.append(value[pos:])
    return "".join(out)
