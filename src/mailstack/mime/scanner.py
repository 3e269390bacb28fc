"""Offset-keeping scanning of raw message bytes: header fields and body parts.

Nothing is copied or decoded here beyond what is asked for: the scanner
returns offsets into the raw bytes so that IMAP can later answer BODY[...]
by slicing. Both CRLF and bare LF line endings are accepted.
"""

from __future__ import annotations

import re

# RFC 5322 §3.6.8: field-name = 1*ftext (printable US-ASCII except ":"); the
# obsolete syntax (§4.5) allows whitespace before the colon.
# RFC 5322 §2.2.3: the field goes on while lines begin with WSP.
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*(:)[^\n]*(?:\n[ \t][^\n]*)*\n?")
_BLANK_LINE = re.compile(rb"\n\r?\n")


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


def scan_header(raw: bytes, start: int, end: int, max_fields: int) -> HeaderScan:
    """Scan the header fields of the entity in ``raw[start:end]``.

    The header ends at the first empty line (RFC 5322 §2.1), or, for
    malformed input, at the first line that is neither a field nor a
    continuation; that line then starts the body. Past *max_fields* fields
    the rest of the header, up to the next empty line, is not indexed.
    """
    fields: list[tuple[str, int, int, int]] = []
    pos = start
    match_field = _FIELD.match
    while pos < end:
        field = match_field(raw, pos, end)
        if field is None:
            first = raw[pos]
            if first == 10 or (first == 13 and raw.startswith(b"\r\n", pos, end)):
                return HeaderScan(fields, pos, pos + (1 if first == 10 else 2))
            # A continuation line with no field before it, or not a field at all.
            break
        if len(fields) >= max_fields:
            blank = _BLANK_LINE.search(raw, pos, end)
            if blank is None:
                return HeaderScan(fields, end, end)
            return HeaderScan(fields, blank.start() + 1, blank.end())
        field_end = field.end()
        fields.append((field.group(1).decode("ascii").lower(), pos, field.start(2), field_end))
        pos = field_end
    return HeaderScan(fields, pos, pos)


def field_value(raw: bytes, colon: int, end: int) -> str:
    """The unfolded value of a field (RFC 5322 §2.2.3), outer whitespace removed.

    Header octets outside US-ASCII are read as UTF-8 (RFC 6532); a value
    that is not UTF-8 comes from a legacy 8-bit sender and is read as
    Latin-1, so that it stays displayable and searchable.
    """
    value = raw[colon + 1 : end]
    if b"\n" in value:
        value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    return text.strip(" \t\r")


def _delimiter_line(raw: bytes, end: int, after: int) -> tuple[int, bool] | None:
    """Check the rest of a delimiter line; ``(line end, is close delimiter)``.

    RFC 2046 §5.1.1: "--" boundary, "--" more for the close delimiter, then
    optional transport padding (linear whitespace) up to the line ending.
    """
    close = raw.startswith(b"--", after, end)
    pos = after + 2 if close else after
    while pos < end and raw[pos] in b" \t":
        pos += 1
    if pos < end and raw[pos] == 13:
        pos += 1
    if pos == end:
        return end, close
    if raw[pos] == 10:
        return pos + 1, close
    return None


def split_multipart(raw: bytes, start: int, end: int, boundary: bytes,
                    max_parts: int) -> list[tuple[int, int]] | None:
    """The ``(start, end)`` ranges of the body parts of a multipart body.

    RFC 2046 §5.1.1: a delimiter starts a line; the line ending before it
    belongs to the delimiter, not to the preceding part; the preamble and
    epilogue are not parts. A body that never closes ends its last part at
    the body's end. Returns None when no delimiter occurs at all, and at most
    *max_parts* ranges.
    """
    needle = b"--" + boundary
    find = raw.find
    parts: list[tuple[int, int]] = []
    part_start = -1
    pos = start
    while True:
        at = find(needle, pos, end)
        if at < 0:
            break
        pos = at + 1
        if at != start and raw[at - 1] != 10:
            continue
        line = _delimiter_line(raw, end, at + len(needle))
        if line is None:
            continue
        if part_start >= 0:
            part_end = at
            if part_end > part_start and raw[part_end - 1] == 10:
                part_end -= 1
                if part_end > part_start and raw[part_end - 1] == 13:
                    part_end -= 1
            parts.append((part_start, part_end))
        line_end, close = line
        if close or len(parts) >= max_parts:
            return parts
        part_start = pos = line_end
    if part_start < 0:
        return None
    parts.append((part_start, end))
    return parts
