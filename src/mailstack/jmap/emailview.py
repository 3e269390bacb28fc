"""JMAP Email properties from a stored parse (RFC 8621 §4.1).

Pure functions: a message's ``EmailMeta`` (or none, for Email/parse), its
``ParsedMessage`` as the store keeps it and, only when a property needs
octets the parse does not hold, the raw bytes, in; JSON values out.

* metadata (§4.1.1): ``id``, ``blobId``, ``threadId``, ``mailboxIds``,
  ``keywords`` (IMAP flags mapped by ``keywords``), ``size``, ``receivedAt``;
* header fields and their parsed forms (§4.1.2, §4.1.3):
  ``headers``, ``header:{name}[:as{Form}][:all]``;
* convenience properties (§4.1.3): ``messageId`` ... ``sentAt``;
* body parts (§4.1.4): ``bodyStructure``, ``textBody``, ``htmlBody``,
  ``attachments`` (the RFC's algorithm), ``hasAttachment``, ``preview``,
  ``bodyValues``.

Part ids are IMAP section numbers (RFC 3501 §6.4.5: ``1``, ``2.1``); a
part's blob id is ``G<email>-<section, "." as "-">`` (``G7-2-1``): the
decoded octets of that part of the whole-message blob ``G<email>``.
"""

from __future__ import annotations

import codecs
import datetime
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from mailstack.jmap import ids
from mailstack.jmap.keywords import keywords_of, visible
from mailstack.jmap.method import MethodError
from mailstack.mime import (
    ParsedMessage,
    Part,
    decode_header,
    parse_address_list,
    part_text,
    transfer_decode,
)
from mailstack.mime.params import strip_comments
from mailstack.store.contract import EmailMeta

if TYPE_CHECKING:
    from mailstack.store import Store

# --- dates ----------------------------------------------------------------


def utc_date(when: datetime.datetime) -> str:
    """RFC 8620 §1.4 UTCDate: ``2014-10-30T06:12:00Z``, no fraction."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def jmap_date(when: datetime.datetime) -> str:
    """RFC 8620 §1.4 Date, keeping the sender's offset: ``...T14:12:00+08:00``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.replace(microsecond=0).isoformat()


def parse_date(value: str) -> datetime.datetime | None:
    """An RFC 5322 §3.3 date-time (comments allowed), or None."""
    try:
        when = parsedate_to_datetime(strip_comments(value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)


# --- header forms (RFC 8621 §4.1.2) ---------------------------------------

RAW, TEXT, ADDRESSES, GROUPED, MESSAGE_IDS, DATE, URLS = (
    "Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs")
FORMS = (RAW, TEXT, ADDRESSES, GROUPED, MESSAGE_IDS, DATE, URLS)

_RFC5322_FIELDS = frozenset({
    "date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id", "in-reply-to",
    "references", "subject", "comments", "keywords", "resent-date", "resent-from",
    "resent-sender", "resent-to", "resent-cc", "resent-bcc", "resent-reply-to",
    "resent-message-id", "return-path", "received",
})
_RFC2369_FIELDS = frozenset({
    "list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner",
    "list-archive",
})
_ADDRESS_FIELDS = frozenset({
    "from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender",
    "resent-reply-to", "resent-to", "resent-cc", "resent-bcc",
})
# Which defined fields each form may be asked of; a field that RFC 5322 and
# RFC 2369 do not define may be asked for in any form; Raw always.
_FORM_FIELDS = {
    TEXT: frozenset({"subject", "comments", "keywords", "list-id"}),
    ADDRESSES: _ADDRESS_FIELDS,
    GROUPED: _ADDRESS_FIELDS,
    MESSAGE_IDS: frozenset({"message-id", "in-reply-to", "references", "resent-message-id"}),
    DATE: frozenset({"date", "resent-date"}),
    URLS: _RFC2369_FIELDS,
}
# RFC 5322 §3.6.8 field-name: printable US-ASCII except ":".
_FIELD_NAME = re.compile(r"[!-9;-~]+")


def form_allowed(name: str, form: str) -> bool:
    lower = name.lower()
    if form == RAW or (lower not in _RFC5322_FIELDS and lower not in _RFC2369_FIELDS):
        return True
    return lower in _FORM_FIELDS[form]


@dataclass(frozen=True, slots=True)
class HeaderProperty:
    """``header:{name}[:as{form}][:all]``: ``name`` lowercase."""

    name: str
    form: str
    all: bool


def header_property(prop: str) -> HeaderProperty | None:
    """Read a ``header:`` property name; None when malformed or when the
    form is not allowed for the field (§4.1.2: "Attempting to fetch a form
    that is forbidden (e.g., header:From:asDate) MUST result in the method
    call being rejected with an invalidArguments error")."""
    pieces = prop.split(":")
    if len(pieces) < 2 or pieces[0] != "header" or len(pieces) > 4:
        return None
    name = pieces[1]
    rest = pieces[2:]
    want_all = False
    if rest and rest[-1] == "all":
        want_all = True
        rest = rest[:-1]
    form = RAW
    if rest:
        if not rest[0].startswith("as") or rest[0][2:] not in FORMS:
            return None
        form = rest[0][2:]
        rest = rest[1:]
    if rest or _FIELD_NAME.fullmatch(name) is None or not form_allowed(name, form):
        return None
    return HeaderProperty(name.lower(), form, want_all)


def raw_text(value: bytes) -> str:
    """§4.1.2.1 Raw: octets after the colon up to the final CRLF; invalid
    UTF-8 becomes U+FFFD and NUL octets are dropped."""
    return value.replace(b"\x00", b"").decode("utf-8", "replace")


def _unfold(value: str) -> str:
    # RFC 5322 §2.2.3: unfolding removes the CRLF before each folding WSP.
    return value.replace("\r\n", "").replace("\n", "").replace("\r", "")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def as_text(value: str) -> str:
    """§4.1.2.2 Text: unfolded, leading SP removed, RFC 2047 encoded words
    decoded (controls they encode dropped), NFC."""
    text = _unfold(value).lstrip(" ")
    if "=?" in text:
        text = _CONTROL.sub("", decode_header(text))
    return unicodedata.normalize("NFC", text)


def _addresses(value: str) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """The address list as groups: (group name or None, its EmailAddresses);
    consecutive addresses outside a group share one unnamed group."""
    groups: list[tuple[str | None, list[dict[str, Any]]]] = []
    in_group = False
    open_unnamed = False
    for address in parse_address_list(_unfold(value)):
        if address.host is None:
            # RFC 3501 group markers: a start has the group's name as mailbox,
            # an end has neither.
            if address.mailbox is not None:
                groups.append((as_text(address.mailbox).strip(), []))
                in_group = True
            else:
                in_group = False
            open_unnamed = False
            continue
        if not in_group and not open_unnamed:
            groups.append((None, []))
            open_unnamed = True
        name = as_text(address.name).strip() if address.name else ""
        mailbox = address.mailbox or ""
        email = f"{mailbox}@{address.host}" if address.host else mailbox
        groups[-1][1].append({"name": name or None, "email": as_text(email)})
    return groups


def as_addresses(value: str) -> list[dict[str, Any]]:
    """§4.1.2.3 Addresses: every mailbox, groups flattened."""
    return [address for _, members in _addresses(value) for address in members]


def as_grouped_addresses(value: str) -> list[dict[str, Any]]:
    """§4.1.2.4 GroupedAddresses: addresses outside a group collected in
    groups named null, consecutive ones together."""
    return [{"name": name, "addresses": members} for name, members in _addresses(value)]


_MSG_ID = re.compile(r"<([^<>]*)>")


def as_message_ids(value: str) -> list[str] | None:
    """§4.1.2.5 MessageIds: the msg-ids without angle brackets and CFWS;
    null when the value holds none."""
    text = strip_comments(_unfold(value))
    found = ["".join(inner.split()) for inner in _MSG_ID.findall(text)]
    found = [msg_id for msg_id in found if msg_id]
    return found or None


def as_date(value: str) -> str | None:
    """§4.1.2.6 Date: an RFC 3339 date-time, or null."""
    when = parse_date(_unfold(value))
    return None if when is None else jmap_date(when)


def as_urls(value: str) -> list[str] | None:
    """§4.1.2.7 URLs: the angle-bracketed URLs of an RFC 2369 field, or null."""
    text = strip_comments(_unfold(value))
    found = ["".join(inner.split()) for inner in _MSG_ID.findall(text)]
    found = [url for url in found if url]
    return found or None


_FORM_OF: dict[str, Callable[[str], Any]] = {
    RAW: lambda value: value,
    TEXT: as_text,
    ADDRESSES: as_addresses,
    GROUPED: as_grouped_addresses,
    MESSAGE_IDS: as_message_ids,
    DATE: as_date,
    URLS: as_urls,
}


def header_form(values: Sequence[str], prop: HeaderProperty) -> Any:
    """A header property's value from the field's raw values, in order."""
    convert = _FORM_OF[prop.form]
    if prop.all:
        return [convert(value) for value in values]
    return convert(values[-1]) if values else None


class Headers:
    """The header fields of one entity as ``(name as written, Raw value)``."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields

    @classmethod
    def of_part(cls, raw: bytes, part: Part) -> Headers:
        fields: list[tuple[str, str]] = []
        for _, start, end in part.headers:
            colon = raw.find(b":", start, end)
            if colon < 0:
                continue
            stop = end
            if raw[stop - 1 : stop] == b"\n":
                stop -= 1
                if raw[stop - 1 : stop] == b"\r":
                    stop -= 1
            name = raw[start:colon].rstrip(b" \t").decode("ascii", "replace")
            fields.append((name, raw_text(raw[colon + 1 : stop])))
        return cls(fields)

    @classmethod
    def of_parse(cls, parsed: ParsedMessage) -> Headers:
        """The top-level fields as the parse keeps them: unfolded, outer
        white space removed, names lowercase. Right for every form but Raw
        and for ``headers``, which need ``of_part``."""
        return cls(parsed.fields)

    def values(self, name: str) -> list[str]:
        return [value for field_name, value in self.fields if field_name.lower() == name]

    def get(self, prop: HeaderProperty) -> Any:
        return header_form(self.values(prop.name), prop)

    def all(self) -> list[dict[str, str]]:
        return [{"name": name, "value": value} for name, value in self.fields]


# --- properties -------------------------------------------------------------

METADATA = ("id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt")
CONVENIENCE: dict[str, HeaderProperty] = {
    "messageId": HeaderProperty("message-id", MESSAGE_IDS, False),
    "inReplyTo": HeaderProperty("in-reply-to", MESSAGE_IDS, False),
    "references": HeaderProperty("references", MESSAGE_IDS, False),
    "sender": HeaderProperty("sender", ADDRESSES, False),
    "from": HeaderProperty("from", ADDRESSES, False),
    "to": HeaderProperty("to", ADDRESSES, False),
    "cc": HeaderProperty("cc", ADDRESSES, False),
    "bcc": HeaderProperty("bcc", ADDRESSES, False),
    "replyTo": HeaderProperty("reply-to", ADDRESSES, False),
    "subject": HeaderProperty("subject", TEXT, False),
    "sentAt": HeaderProperty("date", DATE, False),
}
BODY = ("bodyStructure", "bodyValues", "textBody", "htmlBody", "attachments",
        "hasAttachment", "preview")
EMAIL_PROPERTIES = frozenset(METADATA + ("headers",) + tuple(CONVENIENCE) + BODY)
# RFC 8621 §4.2: what Email/get returns when properties is null.
DEFAULT_PROPERTIES = (
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
    "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc",
    "replyTo", "subject", "sentAt", "hasAttachment", "preview", "bodyValues",
    "textBody", "htmlBody", "attachments",
)
# RFC 8621 §4.9: Email/parse's default (no metadata).
DEFAULT_PARSE_PROPERTIES = DEFAULT_PROPERTIES[7:]
BODY_PART_PROPERTIES = frozenset({
    "partId", "blobId", "size", "headers", "name", "type", "charset", "disposition",
    "cid", "language", "location", "subParts",
})
DEFAULT_BODY_PROPERTIES = (
    "partId", "blobId", "size", "name", "type", "charset", "disposition", "cid",
    "language", "location",
)
PREVIEW_LENGTH = 256


def check_properties(properties: object, known: frozenset[str], argument: str,
                     default: Sequence[str]) -> list[str]:
    """The requested properties, checked: unknown ones are invalidArguments
    (RFC 8620 §5.1); ``header:`` ones must be well formed and allowed."""
    if properties is None:
        return list(default)
    if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
        raise MethodError("invalidArguments", f"{argument} must be a list of strings",
                          arguments=[argument])
    for prop in properties:
        if prop in known:
            continue
        if prop.startswith("header:") and header_property(prop) is not None:
            continue
        raise MethodError("invalidArguments", f"unknown or forbidden property {prop!r}",
                          arguments=[argument])
    return list(dict.fromkeys(properties))


@dataclass(frozen=True, slots=True)
class BodyOptions:
    """Email/get's body arguments (RFC 8621 §4.2)."""

    body_properties: tuple[str, ...] = DEFAULT_BODY_PROPERTIES
    fetch_text: bool = False
    fetch_html: bool = False
    fetch_all: bool = False
    max_bytes: int = 0

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> BodyOptions:
        flags = {}
        for name in ("fetchTextBodyValues", "fetchHTMLBodyValues", "fetchAllBodyValues"):
            value = args.get(name, False)
            if value is None:
                value = False
            if not isinstance(value, bool):
                raise MethodError("invalidArguments", f"{name} must be a boolean",
                                  arguments=[name])
            flags[name] = value
        max_bytes = args.get("maxBodyValueBytes", 0)
        if max_bytes is None:
            max_bytes = 0
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise MethodError("invalidArguments", "maxBodyValueBytes must be an UnsignedInt",
                              arguments=["maxBodyValueBytes"])
        body_properties = check_properties(args.get("bodyProperties"), BODY_PART_PROPERTIES,
                                           "bodyProperties", DEFAULT_BODY_PROPERTIES)
        return cls(tuple(body_properties), flags["fetchTextBodyValues"],
                   flags["fetchHTMLBodyValues"], flags["fetchAllBodyValues"], max_bytes)


def needs_parse(properties: Iterable[str]) -> bool:
    return any(prop not in METADATA for prop in properties)


def needs_raw(properties: Iterable[str], options: BodyOptions, parsed: ParsedMessage) -> bool:
    """Whether the requested properties need the message's octets beyond
    its stored parse: Raw header values (``headers``, ``header:...:asRaw``),
    part headers, body values, or the decoded size of an encoded part."""
    props = set(properties)
    if "headers" in props or "bodyValues" in props:
        return True
    if "preview" in props and len(_text_leaves(parsed.root)) > 1:
        return True
    for prop in props:
        if prop.startswith("header:"):
            header = header_property(prop)
            if header is not None and header.form == RAW:
                return True
    if not props & {"bodyStructure", "textBody", "htmlBody", "attachments"}:
        return False
    if any(p == "headers" or p.startswith("header:") for p in options.body_properties):
        return True
    return "size" in options.body_properties and any(
        _encoded(part) for part in _leaves(parsed.root))


def _text_leaves(root: Part) -> list[Part]:
    """The parts whose text the parse keeps (``mime.text.searchable_text``)."""
    return [part for part in root.walk()
            if part.maintype == "text" and not part.children and part.message is None]


def _encoded(part: Part) -> bool:
    return part.encoding.strip().lower() in ("base64", "quoted-printable")


# --- body structure (RFC 8621 §4.1.4) ---------------------------------------


@dataclass(slots=True)
class BodyPart:
    """One part as JMAP numbers it: message/rfc822 parts are leaves."""

    part: Part
    part_id: str | None
    sub_parts: list[BodyPart] | None

    @property
    def type(self) -> str:
        return f"{self.part.maintype}/{self.part.subtype}"


def body_structure(root: Part) -> BodyPart:
    """The JMAP tree of a message's root: IMAP section numbers as part ids."""

    def build(part: Part, section: str) -> BodyPart:
        if part.children:
            prefix = f"{section}." if section else ""
            return BodyPart(part, None, [build(child, f"{prefix}{n}")
                                         for n, child in enumerate(part.children, 1)])
        return BodyPart(part, section or "1", None)

    return build(root, "")


def _leaves(root: Part) -> list[Part]:
    if root.children:
        return [leaf for child in root.children for leaf in _leaves(child)]
    return [root]


def leaf_parts(root: Part) -> dict[str, Part]:
    """Every leaf by its part id."""
    out: dict[str, Part] = {}

    def walk(node: BodyPart) -> None:
        if node.sub_parts is None:
            assert node.part_id is not None
            out[node.part_id] = node.part
        else:
            for child in node.sub_parts:
                walk(child)

    walk(body_structure(root))
    return out


def _inline_media(type_: str) -> bool:
    return type_.startswith(("image/", "audio/", "video/"))


def split_body(structure: BodyPart) -> tuple[list[BodyPart], list[BodyPart], list[BodyPart]]:
    """textBody, htmlBody and attachments by the algorithm of §4.1.4."""
    text_body: list[BodyPart] = []
    html_body: list[BodyPart] = []
    attachments: list[BodyPart] = []

    def parse(parts: list[BodyPart], multipart_type: str, in_alternative: bool,
              html: list[BodyPart] | None, text: list[BodyPart] | None) -> None:
        text_length = len(text) if text is not None else -1
        html_length = len(html) if html is not None else -1
        for i, node in enumerate(parts):
            type_ = node.type
            disposition = node.part.disposition[0] if node.part.disposition else None
            is_inline = (
                disposition != "attachment"
                and (type_ in ("text/plain", "text/html") or _inline_media(type_))
                and (i == 0 or (multipart_type != "related"
                                and (_inline_media(type_) or not node.part.filename())))
            )
            if node.sub_parts is not None:
                sub_type = node.part.subtype
                parse(node.sub_parts, sub_type, in_alternative or sub_type == "alternative",
                      html, text)
            elif is_inline:
                if multipart_type == "alternative":
                    if type_ == "text/plain" and text is not None:
                        text.append(node)
                    elif type_ == "text/html" and html is not None:
                        html.append(node)
                    elif type_ not in ("text/plain", "text/html"):
                        attachments.append(node)
                    continue
                if in_alternative:
                    if type_ == "text/plain":
                        html = None
                    if type_ == "text/html":
                        text = None
                if text is not None:
                    text.append(node)
                if html is not None:
                    html.append(node)
                if (text is None or html is None) and _inline_media(type_):
                    attachments.append(node)
            else:
                attachments.append(node)
        if multipart_type == "alternative" and text is not None and html is not None:
            # Found HTML part only: the text body shows it too; and the
            # other way round.
            if text_length == len(text) and html_length != len(html):
                text.extend(html[html_length:])
            if html_length == len(html) and text_length != len(text):
                html.extend(text[text_length:])

    parse([structure], "mixed", False, html_body, text_body)
    return text_body, html_body, attachments


def has_attachment(attachments: list[BodyPart]) -> bool:
    """§4.1.4: "A server SHOULD set hasAttachment to true if the attachments
    list contains at least one item that does not have
    Content-Disposition: inline"."""
    return any(not node.part.disposition or node.part.disposition[0] != "inline"
               for node in attachments)


def part_blob_id(message_blob_id: str, part_id: str) -> str:
    """The blob id of a part of the message in ``message_blob_id`` (an
    email's, or a message/rfc822 part's: numbering goes on through it, as
    IMAP's section numbers do)."""
    return f"{message_blob_id}-{part_id.replace('.', '-')}"


def decode_part_blob_id(blob_id: object) -> tuple[int, tuple[int, ...]] | None:
    """(email id, IMAP section) of a part blob id, or None."""
    if not isinstance(blob_id, str) or "-" not in blob_id:
        return None
    email, _, section = blob_id.partition("-")
    email_id = ids.decode(ids.EMAIL_BLOB, email)
    numbers = section.split("-")
    if email_id is None or len(numbers) > 64 or not all(
            n.isascii() and n.isdigit() and n[0] != "0" and len(n) < 10 for n in numbers):
        return None
    return email_id, tuple(int(n) for n in numbers)


async def part_bytes(store: Store[ParsedMessage], account_id: int, blob_id: str,
                     readable: Callable[[int], bool] | None = None) -> bytes | None:
    """The octets of a part blob (``G<email>-<section>``) of the account's
    email, Content-Transfer-Encoding undone; None when there is no such
    email or part, or (``readable``, given a mailbox id) the caller may not
    read its mailbox. For the blob download and Email/parse."""
    decoded = decode_part_blob_id(blob_id)
    if decoded is None:
        return None
    email_id, section = decoded
    meta = (await store.emails_by_id(account_id, [email_id])).get(email_id)
    if meta is None or not visible(meta.flags):
        return None
    if readable is not None and not readable(meta.mailbox_id):
        return None
    parsed = (await store.messages_parsed(meta.mailbox_id, [meta.uid])).get(meta.uid)
    part = None if parsed is None else parsed.root.section(section)
    if part is None or part.children:
        return None
    raw = (await store.messages_bytes(meta.mailbox_id, [meta.uid])).get(meta.uid)
    return None if raw is None else decoded_part(raw, part)


def decoded_part(raw: bytes, part: Part) -> bytes:
    """A part's octets after its Content-Transfer-Encoding (an unknown one
    is taken as none, §4.1.4 blobId)."""
    return transfer_decode(raw[part.body_start : part.body_end], part.encoding)


def part_type(part: Part) -> str:
    return f"{part.maintype}/{part.subtype}"


def _cid(value: str | None) -> str | None:
    if value is None:
        return None
    cid = "".join(strip_comments(value).split())
    if cid.startswith("<") and cid.endswith(">"):
        cid = cid[1:-1]
    return cid or None


def _charset(part: Part) -> str | None:
    """§4.1.4 charset: the parameter, else us-ascii for text/*, else null."""
    charset = part.param("charset")
    if charset is not None:
        return charset
    return "us-ascii" if part.maintype == "text" else None


class EmailView:
    """One message's JMAP Email properties. ``raw`` is needed only when
    ``needs_raw`` says so; ``meta`` is None for Email/parse."""

    def __init__(self, parsed: ParsedMessage, *, meta: EmailMeta | None = None,
                 raw: bytes | None = None, blob_id: str | None = None,
                 parts_blob: str | None = None) -> None:
        self.parsed = parsed
        self.meta = meta
        self.raw = raw
        self.blob_id = blob_id
        # Whose part blob ids the parts get: the email's blob, or for
        # Email/parse the email blob or part blob parsed; an uploaded blob's
        # parts have none.
        self.parts_blob = parts_blob
        self._structure: BodyPart | None = None
        self._split: tuple[list[BodyPart], list[BodyPart], list[BodyPart]] | None = None
        self._headers: Headers | None = None

    # metadata
    def metadata(self, prop: str) -> Any:
        meta = self.meta
        if prop == "blobId":
            return self.blob_id
        if meta is None:
            return None
        if prop == "id":
            return ids.encode(ids.EMAIL, meta.email_id)
        if prop == "threadId":
            return ids.encode(ids.THREAD, meta.thread_id)
        if prop == "mailboxIds":
            return {ids.encode(ids.MAILBOX, meta.mailbox_id): True}
        if prop == "keywords":
            return keywords_of(meta.flags)
        if prop == "size":
            return meta.size
        return utc_date(meta.internaldate)

    @property
    def structure(self) -> BodyPart:
        if self._structure is None:
            self._structure = body_structure(self.parsed.root)
        return self._structure

    @property
    def split(self) -> tuple[list[BodyPart], list[BodyPart], list[BodyPart]]:
        if self._split is None:
            self._split = split_body(self.structure)
        return self._split

    def headers(self) -> Headers:
        """The top-level header, exact when the raw bytes are at hand."""
        if self._headers is None:
            if self.raw is not None:
                self._headers = Headers.of_part(self.raw, self.parsed.root)
            else:
                self._headers = Headers.of_parse(self.parsed)
        return self._headers

    def preview(self) -> str:
        """Up to 256 characters of the first text body part, white space
        collapsed (§4.1.4). A message whose only text is its body reads it
        from the parse; others need the raw bytes (``needs_raw``)."""
        text = self.parsed.text
        if self.raw is not None and len(_text_leaves(self.parsed.root)) > 1:
            text_body, html_body, _ = self.split
            first = next((node.part for node in text_body or html_body
                          if node.part.maintype == "text"), None)
            text = "" if first is None else part_text(self.raw, first, PREVIEW_LENGTH * 8)
        return " ".join(text[: PREVIEW_LENGTH * 8].split())[:PREVIEW_LENGTH]

    def part_json(self, node: BodyPart, props: Sequence[str]) -> dict[str, Any]:
        part = node.part
        out: dict[str, Any] = {}
        part_headers: Headers | None = None
        for prop in props:
            if prop == "partId":
                out[prop] = node.part_id
            elif prop == "blobId":
                out[prop] = (part_blob_id(self.parts_blob, node.part_id)
                             if node.part_id is not None and self.parts_blob is not None
                             else None)
            elif prop == "size":
                if self.raw is not None and _encoded(part):
                    out[prop] = len(decoded_part(self.raw, part))
                else:
                    out[prop] = part.size
            elif prop == "name":
                out[prop] = part.filename()
            elif prop == "type":
                out[prop] = node.type
            elif prop == "charset":
                out[prop] = _charset(part)
            elif prop == "disposition":
                out[prop] = part.disposition[0] if part.disposition else None
            elif prop == "cid":
                out[prop] = _cid(part.id)
            elif prop == "language":
                out[prop] = part.language or None
            elif prop == "location":
                out[prop] = part.location
            elif prop == "subParts":
                out[prop] = (None if node.sub_parts is None
                             else [self.part_json(child, props) for child in node.sub_parts])
            else:
                if part_headers is None:
                    part_headers = (Headers.of_part(self.raw, part) if self.raw is not None
                                    else Headers([]))
                if prop == "headers":
                    out[prop] = part_headers.all()
                else:
                    header = header_property(prop)
                    assert header is not None
                    out[prop] = part_headers.get(header)
        return out

    def body_values(self, options: BodyOptions) -> dict[str, dict[str, Any]]:
        text_body, html_body, _ = self.split
        chosen: list[BodyPart] = []
        if options.fetch_all:
            chosen = [node for node in _leaf_nodes(self.structure)]
        else:
            if options.fetch_text:
                chosen.extend(text_body)
            if options.fetch_html:
                chosen.extend(html_body)
        out: dict[str, dict[str, Any]] = {}
        for node in chosen:
            if node.part.maintype != "text" or node.part_id is None or node.part_id in out:
                continue
            out[node.part_id] = body_value(self.raw or b"", node.part, options.max_bytes)
        return out

    def get(self, props: Sequence[str], options: BodyOptions) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for prop in props:
            if prop in METADATA:
                out[prop] = self.metadata(prop)
            elif prop in CONVENIENCE:
                out[prop] = self.headers().get(CONVENIENCE[prop])
            elif prop == "headers":
                out[prop] = self.headers().all()
            elif prop.startswith("header:"):
                header = header_property(prop)
                assert header is not None
                out[prop] = self.headers().get(header)
            elif prop == "bodyStructure":
                props_tree = options.body_properties
                if "subParts" not in props_tree:
                    props_tree = (*props_tree, "subParts")
                out[prop] = self.part_json(self.structure, props_tree)
            elif prop in ("textBody", "htmlBody", "attachments"):
                text_body, html_body, attachments = self.split
                nodes = {"textBody": text_body, "htmlBody": html_body,
                         "attachments": attachments}[prop]
                out[prop] = [self.part_json(node, options.body_properties) for node in nodes]
            elif prop == "hasAttachment":
                out[prop] = has_attachment(self.split[2])
            elif prop == "preview":
                out[prop] = self.preview()
            elif prop == "bodyValues":
                out[prop] = self.body_values(options)
        return out


def _leaf_nodes(node: BodyPart) -> list[BodyPart]:
    if node.sub_parts is None:
        return [node]
    return [leaf for child in node.sub_parts for leaf in _leaf_nodes(child)]


_ASCII_NAMES = frozenset({"", "us-ascii", "ascii", "utf-8", "utf8"})


def body_value(raw: bytes, part: Part, max_bytes: int) -> dict[str, Any]:
    """§4.1.4 EmailBodyValue: the text after transfer and charset decoding,
    CRLF as LF, cut at ``max_bytes`` octets of UTF-8 (never inside a
    character, nor inside an HTML tag)."""
    data = decoded_part(raw, part)
    problem = False
    charset = (part.param("charset") or "").strip().lower()
    if charset in _ASCII_NAMES:
        charset = "utf-8"  # us-ascii is a subset; 8-bit text in the wild is UTF-8
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
        problem = True
    try:
        text = data.decode(charset)
    except UnicodeDecodeError:
        text = data.decode(charset, "replace")
        problem = True
    except (LookupError, ValueError):
        text = data.decode("utf-8", "replace")
        problem = True
    text = text.replace("\r\n", "\n")
    truncated = False
    if max_bytes and len(text.encode("utf-8")) > max_bytes:
        text = truncate_utf8(text, max_bytes, is_html=part.subtype == "html")
        truncated = True
    return {"value": text, "isEncodingProblem": problem, "isTruncated": truncated}


def truncate_utf8(text: str, max_bytes: int, *, is_html: bool = False) -> str:
    cut = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    if is_html:
        # "the server SHOULD NOT truncate inside an HTML tag"
        opened = cut.rfind("<")
        if opened > cut.rfind(">"):
            cut = cut[:opened]
    return cut
