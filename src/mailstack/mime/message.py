"""Parse a message once, at delivery; read the result back without parsing.

``parse`` walks the raw bytes once (RFC 5322 header, RFC 2045/2046 MIME
structure), records offsets, the RFC 3501 ENVELOPE and BODYSTRUCTURE fields
and the searchable text; ``ParsedMessage.to_bytes``/``from_bytes`` store it.
"""

from __future__ import annotations

import json
import marshal
import re
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from mailstack.limits import Limits
from mailstack.mime.encoded_words import decode_header
from mailstack.mime.envelope import ENVELOPE_FIELDS, Envelope
from mailstack.mime.params import (
    parse_content_type,
    parse_disposition,
    parse_language,
    strip_comments,
)
from mailstack.mime.part import Part
from mailstack.mime.scanner import HeaderScan, field_value, scan_header, split_multipart
from mailstack.mime.text import searchable_text

# The stored form's first octet (after zlib): format 2, marshal.
_MARSHAL = b"\x02"
# Stored forms longer than this are compressed.
COMPRESS_FROM = 8192
_DEFAULT_LIMITS = Limits()
# RFC 2045 §5.2: "Content-type: text/plain; charset=us-ascii" is the default.
_DEFAULT_PARAMS = (("charset", "us-ascii"),)


def count_lines(raw: bytes, start: int, end: int) -> int:
    """Body lines for RFC 3501 body-fld-lines; an unterminated last line counts."""
    if start >= end:
        return 0
    count = raw.count(b"\n", start, end)
    return count if raw[end - 1] == 10 else count + 1


def _fields(raw: bytes, scan: HeaderScan) -> list[tuple[str, str]]:
    return [(name, field_value(raw, colon, end)) for name, _, colon, end in scan.fields]


# RFC 5322 §3.3 date-time as nearly every sender writes it, optionally with
# a trailing comment such as "(UTC)": read without the general parser.
_MONTHS = {name: n for n, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_PLAIN_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (" + "|".join(_MONTHS) + r") ([1-9]\d{3})"
    r" (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)(?: \([A-Za-z]*\))?"
)


def _plain_date(value: str) -> datetime | None:
    match = _PLAIN_DATE.fullmatch(value)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
    try:
        if offset == timedelta(0) and sign == "-":
            zone = UTC  # "-0000": the zone is unknown (RFC 5322 §3.3); read as UTC
        else:
            zone = timezone(-offset if sign == "-" else offset)
        return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute),
                        int(second), tzinfo=zone)
    except ValueError:
        return None


def _sent_date(fields: list[tuple[str, str]]) -> datetime | None:
    value = next((value for name, value in fields if name == "date"), None)
    if value is None:
        return None
    plain = _plain_date(value)
    if plain is not None:
        return plain
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # RFC 5322 §3.3: "-0000" means the zone is unknown; parsedate_to_datetime
    # then returns a naive datetime, which we read as UTC.
    return sent if sent.tzinfo is not None else sent.replace(tzinfo=UTC)


def _no_value(name: str) -> None:
    return None


class _Parser:
    def __init__(self, raw: bytes, limits: Limits) -> None:
        self.raw = raw
        self.max_depth = limits.mime_nesting
        self.parts_left = limits.mime_parts
        self.fields_left = limits.mime_header_fields

    def entity(self, start: int, end: int, depth: int, in_digest: bool) -> tuple[Part, HeaderScan]:
        raw = self.raw
        self.parts_left -= 1
        scan = scan_header(raw, start, end, self.fields_left)
        self.fields_left -= len(scan.fields)
        content: dict[str, tuple[int, int]] = {}
        for name, _, colon, field_end in scan.fields:
            if name.startswith("content-") and name not in content:
                content[name] = (colon, field_end)

        def value(name: str) -> str | None:
            where = content.get(name)
            return None if where is None else field_value(raw, where[0], where[1])

        if not content:
            # No Content-* field at all (most plain messages): every default.
            value = _no_value
        content_type = value("content-type")
        parsed = parse_content_type(content_type) if content_type is not None else None
        if parsed is not None:
            maintype, subtype, params = parsed
        elif content_type is None and in_digest:
            # RFC 2046 §5.1.5: in a digest the default type is message/rfc822.
            maintype, subtype, params = "message", "rfc822", []
        else:
            maintype, subtype, params = "text", "plain", list(_DEFAULT_PARAMS)

        encoding = value("content-transfer-encoding")
        encoding = strip_comments(encoding).strip() if encoding is not None else ""
        disposition = value("content-disposition")
        language = value("content-language")
        location = value("content-location")
        md5 = value("content-md5")

        body_start = scan.body_start
        children: list[Part] = []
        message: Part | None = None
        envelope: Envelope | None = None
        lines: int | None = None
        nested = maintype == "multipart" or (
            maintype == "message" and subtype in ("rfc822", "global"))
        if nested and (depth >= self.max_depth or self.parts_left <= 0):
            # Too deep or too many parts: an opaque leaf, still a valid BODYSTRUCTURE.
            maintype, subtype, params = "application", "octet-stream", []
        elif maintype == "multipart":
            boundary = next((v for k, v in params if k == "boundary"), "")
            if not boundary:
                # RFC 2046 §5.1.1: the boundary parameter is required.
                maintype, subtype, params = "text", "plain", list(_DEFAULT_PARAMS)
            else:
                children = self.children(body_start, end, depth, boundary, subtype == "digest")
        elif maintype == "message" and subtype in ("rfc822", "global"):
            message, inner_scan = self.entity(body_start, end, depth + 1, False)
            envelope = Envelope.from_fields(_fields(raw, inner_scan))
        if maintype == "text" or message is not None:
            # RFC 3501 §7.4.2: body-fld-lines belongs to text/* and message/rfc822.
            lines = count_lines(raw, body_start, end)

        part = Part(
            header_start=start,
            header_end=scan.header_end,
            body_start=body_start,
            body_end=end,
            headers=[(name, s, e) for name, s, _, e in scan.fields],
            maintype=maintype,
            subtype=subtype,
            params=params,
            id=value("content-id"),
            description=value("content-description"),
            encoding=encoding or "7BIT",
            lines=lines,
            md5=md5,
            disposition=parse_disposition(disposition) if disposition is not None else None,
            language=parse_language(language) if language is not None else None,
            location="".join(location.split()) if location is not None else None,
            children=children,
            message=message,
            message_envelope=envelope,
        )
        return part, scan

    def children(self, start: int, end: int, depth: int, boundary: str,
                 digest: bool) -> list[Part]:
        ranges = split_multipart(self.raw, start, end, boundary.encode("utf-8", "replace"),
                                 max(self.parts_left, 1))
        if not ranges:
            # No delimiter at all: one headerless text part holding the whole
            # body, since RFC 3501 body-type-mpart needs at least one body.
            return [Part(start, start, start, end, params=list(_DEFAULT_PARAMS),
                         lines=count_lines(self.raw, start, end))]
        parts: list[Part] = []
        for part_start, part_end in ranges:
            if self.parts_left <= 0:
                break
            parts.append(self.entity(part_start, part_end, depth + 1, digest)[0])
        return parts


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What FETCH, SEARCH and webmail need of a message, without its bytes.

    ``fields`` holds the top-level header fields as ``(lowercase name, raw
    unfolded value)`` in order; ``headers`` their offsets (see Part).
    """

    size: int
    root: Part
    envelope: Envelope
    fields: list[tuple[str, str]]
    text: str
    sent_date: datetime | None

    @property
    def headers(self) -> list[tuple[str, int, int]]:
        return self.root.headers

    def header_values(self, name: str) -> list[str]:
        """Every value of a top-level field, RFC 2047 decoded, for searching."""
        key = name.lower()
        return [decode_header(value) for field_name, value in self.fields if field_name == key]

    def header_value(self, name: str) -> str | None:
        """The first value of a top-level field, decoded, or None."""
        key = name.lower()
        for field_name, value in self.fields:
            if field_name == key:
                return decode_header(value)
        return None

    def header_text(self) -> str:
        """The top-level header as decoded ``Name: value`` lines (SEARCH TEXT)."""
        return "\n".join(f"{name}: {decode_header(value)}" for name, value in self.fields)

    def section(self, path: tuple[int, ...]) -> Part | None:
        return self.root.section(path)

    def encode(self) -> bytes:
        """The stored form of a small message: a version octet, then the
        fields as a marshal'd list of plain values (lists, strings, numbers).

        This runs once per delivered message on the event loop, so it has to
        be cheap: marshal takes a tenth of the time of ``json.dumps`` here.
        marshal's format 4 has been stable since Python 3.4 and later
        versions keep reading it; we only ever load what we stored ourselves.
        """
        return _MARSHAL + marshal.dumps(
            [
                self.size, self.root.to_list(), self.envelope.to_list(), self.fields,
                self.text, None if self.sent_date is None else self.sent_date.isoformat(),
            ],
            4,
        )

    @staticmethod
    def pack(encoded: bytes) -> bytes:
        """What the store keeps of ``encode()``'s result: a large one zlib'd
        (searchable text compresses well; level 1 costs a fifth of the
        default level's time for nearly the same size), a small one as it is,
        since compressing it costs the store's writer more than the octets
        saved are worth."""
        return zlib.compress(encoded, 1) if len(encoded) > COMPRESS_FROM else encoded

    def to_bytes(self) -> bytes:
        """The stored form: ``pack(encode())``."""
        return self.pack(self.encode())

    @classmethod
    def from_bytes(cls, data: bytes) -> ParsedMessage:
        """Read a stored form back: this format, compressed or not, or the
        zlib'd JSON of stores written before it (format 1)."""
        size, root, envelope, fields, text, sent = _load(data)
        return cls(
            size=size,
            root=Part.from_list(root),
            envelope=Envelope.from_list(envelope),
            fields=[(name, value) for name, value in fields],
            text=text,
            sent_date=None if sent is None else datetime.fromisoformat(sent),
        )

    def prepend(self, header_lines: bytes) -> ParsedMessage:
        """The parse of ``header_lines + raw``, computed without the raw bytes.

        *header_lines* must be whole header fields, each ending in a line
        ending, and no Content-* field (those would change the structure):
        trace fields such as Return-Path and Delivered-To. The result equals
        ``parse(header_lines + raw)`` unless raw itself begins with
        whitespace (which would continue the last prepended field).
        """
        length = len(header_lines)
        if length == 0:
            return self
        scan = scan_header(header_lines, 0, length, length)
        if scan.header_end != length or not header_lines.endswith(b"\n"):
            raise ValueError("prepend takes complete header fields only")
        added = _fields(header_lines, scan)
        if any(name.startswith("content-") for name, _ in added):
            raise ValueError("prepend cannot add Content-* fields")
        root = self.root.shifted(length)
        root = replace(
            root,
            header_start=0,
            headers=[(name, start, end) for name, start, _, end in scan.fields] + root.headers,
        )
        fields = added + self.fields
        names = {name for name, _ in added}
        return ParsedMessage(
            size=self.size + length,
            root=root,
            envelope=Envelope.from_fields(fields) if names & ENVELOPE_FIELDS else self.envelope,
            fields=fields,
            text=self.text,
            sent_date=_sent_date(fields) if "date" in names else self.sent_date,
        )


def _load(data: bytes) -> list[Any]:
    """The plain values of any stored form (see ``from_bytes``)."""
    try:
        plain = data if data[:1] == _MARSHAL else zlib.decompress(data)
        if plain[:1] == _MARSHAL:
            values = marshal.loads(memoryview(plain)[1:])
        else:
            version, *values = json.loads(plain)
            if version != 1:
                raise ValueError(f"unknown parsed-message format {version}")
        if not isinstance(values, list) or len(values) != 6:
            raise ValueError("not six values")
    except (zlib.error, ValueError, TypeError, EOFError) as exc:
        raise ValueError("not a stored parsed message") from exc
    return values


def stored_fields(data: bytes) -> list[tuple[str, str]]:
    """The top-level header fields of any stored form (``encode()``'s or
    ``pack()``'s), without building the rest of the parse."""
    fields: list[tuple[str, str]] = _load(data)[3]  # [name, value] pairs, as kept
    return fields


def stored_search_text(data: bytes) -> tuple[str, str]:
    """What SEARCH reads of any stored form: the top-level header as decoded
    ``Name: value`` lines (as ``header_text``) and the searchable body text."""
    values = _load(data)
    lines = "\n".join(f"{name}: {decode_header(value)}" for name, value in values[3])
    return lines, values[4]


def prefix_header_text(header_lines: bytes) -> str:
    """The decoded ``Name: value`` lines of whole header fields put in front
    of a message (see ``prepend``): what they add to ``header_text``."""
    if not header_lines:
        return ""
    length = len(header_lines)
    fields = _fields(header_lines, scan_header(header_lines, 0, length, length))
    return "\n".join(f"{name}: {decode_header(value)}" for name, value in fields)


def parse(raw: bytes, limits: Limits = _DEFAULT_LIMITS) -> ParsedMessage:
    """Parse a whole message (RFC 5322 + MIME); never raises, bounded work.

    ``limits.mime_nesting`` bounds the depth of multipart and message/rfc822
    nesting (deeper entities become application/octet-stream leaves),
    ``limits.mime_parts`` the entities indexed, ``limits.mime_header_fields``
    the header fields indexed (over all entities), ``limits.mime_search_text``
    the characters of decoded text kept for SEARCH.
    """
    raw = bytes(raw)
    parser = _Parser(raw, limits)
    root, scan = parser.entity(0, len(raw), 0, False)
    fields = _fields(raw, scan)
    return ParsedMessage(
        size=len(raw),
        root=root,
        envelope=Envelope.from_fields(fields),
        fields=fields,
        text=searchable_text(raw, root, limits.mime_search_text),
        sent_date=_sent_date(fields),
    )
