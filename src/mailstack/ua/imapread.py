"""IMAP as the lectures show it (RFC 3501): the mail stays on the server.

Folders are listed with LIST and STATUS (RFC 3501 §6.3.8, §6.3.10), their
names in modified UTF-7 (§5.1.3). `--search` is turned into SEARCH keys
(§6.4.4) and runs on the server: ``from:alice subject:ketchup unseen
since:2026-01-01``; a non-ASCII term goes as a UTF-8 literal (``CHARSET
UTF-8``, a LITERAL+ literal, RFC 7888). A listing fetches only what the table
shows (FLAGS, RFC822.SIZE, INTERNALDATE, BODYSTRUCTURE and a few header
fields, with BODY.PEEK so nothing is marked read); reading one message
fetches ``BODY.PEEK[]`` and, with `--mark-read`, stores ``\\Seen``.

`parse_fetch` reads imaplib's FETCH data (lines and literals) into Python
values: atoms and strings as str, literals as bytes, NIL as None, lists.
"""

from __future__ import annotations

import imaplib
import re
import shlex
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import decode_rfc2231
from typing import Any
from urllib.parse import unquote

from mailstack.errors import MailstackError
from mailstack.imap.proto.mutf7 import decode as mutf7_decode
from mailstack.imap.proto.mutf7 import encode as mutf7_encode
from mailstack.mime import decode_header, parse
from mailstack.ua.view import Summary, header_date

__all__ = [
    "Folder",
    "fetch_message",
    "folders",
    "login",
    "parse_fetch",
    "search",
    "search_keys",
    "select",
    "summaries",
]

# §6.4.4 keys with a string argument, by the names --search takes.
_STRING_KEYS = {
    "from": "FROM", "to": "TO", "cc": "CC", "bcc": "BCC",
    "subject": "SUBJECT", "body": "BODY", "text": "TEXT",
}  # fmt: skip
# The date the message says it was sent (its Date field), which is the date
# the list shows; SINCE and friends would be the server's arrival date.
_DATE_KEYS = {"since": "SENTSINCE", "before": "SENTBEFORE", "on": "SENTON"}
_NUMBER_KEYS = {"larger": "LARGER", "smaller": "SMALLER"}
_FLAG_WORDS = {
    "all", "answered", "deleted", "draft", "flagged", "new", "old", "recent", "seen",
    "unanswered", "undeleted", "undraft", "unflagged", "unseen",
}  # fmt: skip
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LITERAL_END = re.compile(rb"\{(\d+)\}\Z")
# Summaries are fetched this many UIDs at a time.
FETCH_BATCH = 200


@dataclass(frozen=True, slots=True)
class Folder:
    name: str
    messages: int
    unseen: int


def _ok(result: tuple[str, list[Any]], what: str) -> list[Any]:
    typ, data = result
    if typ != "OK":
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise MailstackError(f"{what}: {text or typ}")
    return data


def login(client: imaplib.IMAP4, user: str, password: str) -> None:
    try:
        client.login(user, password)
    except imaplib.IMAP4.error as exc:
        text = exc.args[0] if exc.args else "NO"
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        raise MailstackError(f"the IMAP server refused the login of {user}: {text}") from None


# -- the FETCH data parser -------------------------------------------------------------


class _Reader:
    """Tokens of imaplib's data: text segments with literals between them."""

    def __init__(self, data: list[Any]) -> None:
        self.segments: list[bytes | tuple[bytes]] = []
        for item in data:
            if isinstance(item, tuple):
                head, literal = item
                self.segments += [_LITERAL_END.sub(b"", head), (literal,)]
            elif isinstance(item, bytes):
                self.segments.append(item)
        self.index = 0
        self.pos = 0

    def _current(self) -> bytes | tuple[bytes] | None:
        while self.index < len(self.segments):
            segment = self.segments[self.index]
            if isinstance(segment, tuple):
                return segment
            while self.pos < len(segment) and segment[self.pos : self.pos + 1] in b" \r\n":
                self.pos += 1
            if self.pos < len(segment):
                return segment
            self.index += 1
            self.pos = 0
        return None

    def value(self) -> Any:
        segment = self._current()
        if segment is None:
            raise MailstackError("the IMAP server's FETCH answer ended early")
        if isinstance(segment, tuple):
            self.index += 1
            self.pos = 0
            return segment[0]
        char = segment[self.pos : self.pos + 1]
        if char == b"(":
            self.pos += 1
            items: list[Any] = []
            while True:
                following = self._current()
                if following is None:
                    raise MailstackError("the IMAP server's FETCH answer ended early")
                if not isinstance(following, tuple) and following[self.pos : self.pos + 1] == b")":
                    self.pos += 1
                    return items
                items.append(self.value())
        if char == b'"':
            out = bytearray()
            i = self.pos + 1
            while i < len(segment) and segment[i : i + 1] != b'"':
                if segment[i : i + 1] == b"\\":
                    i += 1
                out += segment[i : i + 1]
                i += 1
            self.pos = i + 1
            return out.decode("utf-8", "replace")
        # An atom; "BODY[HEADER.FIELDS (DATE)]" keeps its bracketed section.
        i, depth = self.pos, 0
        while i < len(segment):
            c = segment[i : i + 1]
            if c == b"[":
                depth += 1
            elif c == b"]":
                depth -= 1
            elif depth == 0 and c in b" ()":
                break
            i += 1
        atom = segment[self.pos : i].decode("utf-8", "replace")
        self.pos = i
        return None if atom.upper() == "NIL" else atom

    def at_end(self) -> bool:
        return self._current() is None


def parse_fetch(data: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    """Each ``n FETCH (...)`` answer as its number and items (names upper-cased)."""
    reader = _Reader(data)
    out = []
    while not reader.at_end():
        number = reader.value()
        items = reader.value()
        if not isinstance(number, str) or not number.isdigit() or not isinstance(items, list):
            raise MailstackError("the IMAP server's FETCH answer is malformed")
        out.append(
            (
                int(number),
                {str(k).upper(): v for k, v in zip(items[::2], items[1::2], strict=False)},
            )
        )
    return out


# -- folders ---------------------------------------------------------------------------


def folders(client: imaplib.IMAP4) -> list[Folder]:
    data = _ok(client.list(), "LIST")
    names = []
    for line in data:
        if isinstance(line, tuple):  # a name sent as a literal
            names.append(line[1].decode("utf-8", "replace"))
            continue
        if not isinstance(line, bytes):
            continue
        parsed = _Reader([line])
        flags, _delimiter, name = parsed.value(), parsed.value(), parsed.value()
        if isinstance(flags, list) and any(str(f).lower() == "\\noselect" for f in flags):
            continue
        names.append(name if isinstance(name, str) else "")
    out = []
    for name in names:
        status = _ok(client.status(_quote(name), "(MESSAGES UNSEEN)"), f"STATUS {name}")
        counts = re.findall(rb"(MESSAGES|UNSEEN) (\d+)", status[0] if status else b"")
        values = {key.decode(): int(value) for key, value in counts}
        out.append(Folder(mutf7_decode(name), values.get("MESSAGES", 0), values.get("UNSEEN", 0)))
    return out


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def select(client: imaplib.IMAP4, folder: str, *, readonly: bool) -> int:
    """SELECT (or EXAMINE) the folder; the number of messages in it."""
    typ, data = client.select(_quote(mutf7_encode(folder)), readonly=readonly)
    if typ != "OK":
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise MailstackError(f"no folder {folder!r} on the server: {text}")
    return int(data[0]) if data and data[0] and data[0].isdigit() else 0


# -- search ----------------------------------------------------------------------------


def _imap_date(value: str, key: str) -> str:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise MailstackError(f"--search {key}:{value}: expected a date as YYYY-MM-DD") from None
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def search_keys(query: str) -> tuple[list[bytes], bool]:
    """SEARCH keys for a `--search` query, and whether they need CHARSET UTF-8."""
    try:
        terms = shlex.split(query)
    except ValueError as exc:
        raise MailstackError(f"--search: {exc}") from None
    keys: list[bytes] = []
    utf8 = False
    for term in terms:
        name, colon, value = term.partition(":")
        name = name.lower()
        if not colon:
            if term.lower() in _FLAG_WORDS:
                keys.append(term.upper().encode())
                continue
            name, value = "text", term
        if name in _STRING_KEYS:
            if not value:
                raise MailstackError(f"--search {term}: expected {name}:TEXT")
            keys.append(_STRING_KEYS[name].encode())
            if value.isascii():
                keys.append(_quote(value).encode())
            else:
                encoded = value.encode("utf-8")
                # RFC 7888 LITERAL+: the literal needs no continuation round trip.
                keys.append(b"{%d+}\r\n" % len(encoded) + encoded)
                utf8 = True
        elif name in _DATE_KEYS:
            keys += [_DATE_KEYS[name].encode(), _imap_date(value, name).encode()]
        elif name in _NUMBER_KEYS:
            if not value.isdigit():
                raise MailstackError(f"--search {term}: expected {name}:OCTETS")
            keys += [_NUMBER_KEYS[name].encode(), value.encode()]
        else:
            known = ", ".join([*_STRING_KEYS, *_DATE_KEYS, *_NUMBER_KEYS])
            raise MailstackError(f"--search {term}: unknown term (known: {known}, and flags)")
    return keys or [b"ALL"], utf8


def search(client: imaplib.IMAP4, query: str | None) -> list[int]:
    """The UIDs that match, on the server (UID SEARCH)."""
    keys, utf8 = search_keys(query or "")
    if utf8 and "LITERAL+" not in client.capabilities:
        raise MailstackError("--search: a non-ASCII term needs a server with LITERAL+")
    args = [b"CHARSET", b"UTF-8", *keys] if utf8 else keys
    data = _ok(client.uid("SEARCH", *args), "SEARCH")  # type: ignore[arg-type]
    return sorted(int(uid) for line in data if line for uid in line.split())


# -- fetching ----------------------------------------------------------------------------


def _string(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _params(values: Any) -> dict[str, str]:
    if not isinstance(values, list):
        return {}
    raw = {_string(k).lower(): _string(v) for k, v in zip(values[::2], values[1::2], strict=False)}
    out = {}
    for key, value in raw.items():
        if key.endswith("*"):
            # RFC 2231 §4 left for the client: charset'language'percent-encoded.
            charset, _language, text = decode_rfc2231(value)
            try:
                value = unquote(text, encoding=charset or "utf-8", errors="replace")
            except LookupError:  # a charset Python does not know
                value = unquote(text, errors="replace")
            key = key[:-1]
        out[key] = decode_header(value)
    return out


def attachment_names(structure: Any) -> list[str]:
    """The attachments a BODYSTRUCTURE (RFC 3501 §7.4.2) describes."""
    if not isinstance(structure, list) or not structure:
        return []
    if isinstance(structure[0], list):  # multipart: the parts, then the subtype
        names = []
        for part in structure:
            if not isinstance(part, list):
                break  # the subtype; its parameters and extensions follow
            names += attachment_names(part)
        return names
    maintype, subtype = _string(structure[0]).lower(), _string(structure[1]).lower()
    params = _params(structure[2] if len(structure) > 2 else None)
    # body-fld-dsp follows md5: after lines for text, after envelope,
    # body and lines for message/rfc822, else after the size's md5.
    at = {"text": 9}.get(maintype, 11 if subtype in ("rfc822", "global") else 8)
    disposition = structure[at] if len(structure) > at else None
    kind, dsp_params = "", {}
    if isinstance(disposition, list) and disposition:
        kind = _string(disposition[0]).lower()
        dsp_params = _params(disposition[1] if len(disposition) > 1 else None)
    name = dsp_params.get("filename") or params.get("name")
    if kind == "attachment" or name or maintype not in ("text", "multipart"):
        return [name or "(unnamed)"]
    return []


def summaries(client: imaplib.IMAP4, uids: list[int]) -> list[Summary]:
    """Rows for ``uids`` (in that order), from one FETCH per batch."""
    found: dict[int, Summary] = {}
    for start in range(0, len(uids), FETCH_BATCH):
        batch = ",".join(str(uid) for uid in uids[start : start + FETCH_BATCH])
        data = _ok(
            client.uid(
                "FETCH",
                batch,
                "(UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE "
                "BODY.PEEK[HEADER.FIELDS (DATE FROM TO SUBJECT)])",
            ),
            "FETCH",
        )
        for number, items in parse_fetch(data):
            header = next((v for k, v in items.items() if k.startswith("BODY[")), b"")
            parsed = parse(header if isinstance(header, bytes) else _string(header).encode())
            uid = int(items.get("UID") or 0)
            sent = header_date(parsed.header_value("date"))
            if sent is None and items.get("INTERNALDATE"):
                sent = _internal_date(_string(items["INTERNALDATE"]))
            found[uid] = Summary(
                number=number,
                uid=str(uid),
                date=sent,
                sender=" ".join((parsed.header_value("from") or "").split()),
                to=" ".join((parsed.header_value("to") or "").split()),
                subject=" ".join((parsed.header_value("subject") or "").split()),
                size=int(items.get("RFC822.SIZE") or 0),
                flags=[_string(f) for f in items.get("FLAGS") or []],
                attachments=attachment_names(items.get("BODYSTRUCTURE")),
            )
    return [found[uid] for uid in uids if uid in found]


def _internal_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def uid_of_number(client: imaplib.IMAP4, number: int) -> int:
    """The UID of message sequence number ``number``."""
    try:
        typ, data = client.fetch(str(number), "(UID)")
    except imaplib.IMAP4.error:  # BAD: no such sequence number
        typ, data = "NO", []
    items = parse_fetch(data) if typ == "OK" and data and data[0] else []
    if not items or "UID" not in items[0][1]:
        raise MailstackError(f"no message {number} in the folder")
    return int(items[0][1]["UID"])


def fetch_message(client: imaplib.IMAP4, uid: int, *, mark_read: bool) -> bytes:
    """The message as stored (BODY.PEEK[]), marked \\Seen when asked."""
    data = _ok(client.uid("FETCH", str(uid), "(UID BODY.PEEK[])"), "FETCH")
    items = [entry for entry in parse_fetch(data) if entry[1].get("UID") == str(uid)]
    raw = items[0][1].get("BODY[]") if items else None
    if not isinstance(raw, bytes):
        raise MailstackError(f"no message with UID {uid} in the folder")
    if mark_read:
        _ok(client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Seen)"), "STORE")
    return raw
