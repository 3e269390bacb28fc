"""Offset-keeping scanning of raw message bytes: header fields and body parts.

Nothing is copied or decoded here beyond what is asked for: the scanner
returns offsets into the raw bytes so that IMAP can later answer BODY[...]
by slicing. Both CRLF and bare LF line endings are accepted.
"""

from __future__ import annotations

import re

# RFC 5322 §3.6.8: field-name = 1*ftext (printable US-ASCII except ":"); the
# obsolete syntax (§4.5) allows whitespace before the colon.
_FIELD_NAME = re.compile(rb"[!-9;-~]+[ \t]*")
_BLANK = (b"\r\n", b"\n")


class HeaderScan:
    """The header of one entity: its fields and where the body starts.

    ``fields`` holds ``(name, start, colon, end)``: the lowercased field
    name, the offset of the field's first octet, of its colon, and just past
    its final line ending (folded continuation lines included).
    ``header_end`` is just past the last field; ``body_start`` is past the
    blank separator line when there is one, else equal to ``header_end``.
    """

    __slots__ = ("fields", "header_end", "body_start")

    def __init__(self, fields: list[tuple[str, int, int, int]], header_end: int,
                 body_start: int) -> None:
        self.fields = fields
        self.header_end = header_end
        self.body_start = body_start


def scan_header(raw: bytes, start: int, end: int) -> HeaderScan:
    """Scan the header fields of the entity in ``raw[start:end]``.

    The header ends at the first empty line (RFC 5322 §2.1), or, for
    malformed input, at the first line that is neither a field nor a
    continuation; that line then starts the body.
    """
    fields: list[tuple[str, int, int, int]] = []
    pos = start
    find = raw.find
    while pos < end:
        newline = find(b"\n", pos, end)
        line_end = end if newline < 0 else newline + 1
        first = raw[pos]
        if first == 10 or (first == 13 and line_end - pos == 2 and newline >= 0):
            return HeaderScan(fields, pos, line_end)
        if first == 32 or first == 9:
            if not fields:
                break
            name, field_start, colon, _ = fields[-1]
            fields[-1] = (name, field_start, colon, line_end)
        else:
            colon = find(b":", pos, line_end)
            if colon <= pos or _FIELD_NAME.fullmatch(raw, pos, colon) is None:
                break
            name = raw[pos:colon].rstrip(b" \t").decode("ascii").lower()
            fields.append((name, pos, colon, line_end))
        pos = line_end
    return HeaderScan(fields, pos, pos)


def field_value(raw: bytes, colon: int, end: int) -> str:
    """The unfolded value of a field (RFC 5322 §2.2.3), outer whitespace removed.

    Header octets outside US-ASCII are read as UTF-8 (RFC 6532); anything
    else is replaced, never raised.
    """
    value = raw[colon + 1 : end]
    if b"\n" in value:
        value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    return value.decode("utf-8", "replace").strip(" \t\r")


def _delimiter(boundary: bytes) -> re.Pattern[bytes]:
    # RFC 2046 §5.1.1: the delimiter is "--" boundary at the start of a line,
    # "--" more for the close delimiter, then optional transport padding.
    return re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", re.MULTILINE)


def split_multipart(raw: bytes, start: int, end: int,
                    boundary: bytes) -> list[tuple[int, int]] | None:
    """The ``(start, end)`` ranges of the body parts of a multipart body.

    RFC 2046 §5.1.1: the line ending before a delimiter belongs to the
    delimiter, not to the preceding part; the preamble and epilogue are not
    parts. A body that never closes ends its last part at the body's end.
    Returns None when no delimiter occurs at all.
    """
    parts: list[tuple[int, int]] = []
    part_start = -1
    for match in _delimiter(boundary).finditer(raw, start, end):
        if part_start >= 0:
            part_end = match.start()
            if part_end > part_start and raw[part_end - 1] == 10:
                part_end -= 1
                if part_end > part_start and raw[part_end - 1] == 13:
                    part_end -= 1
            parts.append((part_start, part_end))
        line_end = match.end()
        if line_end < end and raw[line_end] == 10:
            line_end += 1
        if match.group(1):
            return parts
        part_start = line_end
    if part_start < 0:
        return None
    parts.append((part_start, end))
    return parts
