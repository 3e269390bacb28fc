"""FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2), with CONDSTORE's MODSEQ and
CHANGEDSINCE (RFC 7162 §3.1.4), QRESYNC's VANISHED modifier (§3.2.6), BINARY sections
(RFC 3516), UID FETCH's PARTIAL modifier (RFC 9394 §3.3) and EMAILID and
THREADID (RFC 8474, the ids JMAP gives).

ENVELOPE, BODY, BODYSTRUCTURE and every BODY[section] are answered from the
parse stored at delivery (mime.ParsedMessage) and slices of the raw bytes at
its offsets; nothing is parsed again here. A message over ``STREAM_AT``
octets is never read whole: its literals are written from the store's
``message_chunks`` a chunk at a time, each after the socket took the last, so
a client that stops reading costs its socket buffer, not the message.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from mailstack.errors import ImapError, NotFound
from mailstack.imap.proto.commands import Command, Fetch, FetchItem, Section
from mailstack.imap.proto.parser import MONTHS
from mailstack.imap.proto.response import Literal8, encode, quoted
from mailstack.imap.selected import SelectedMailbox, uid_set_text
from mailstack.imap.session import Done, Session, handler
from mailstack.jmap import ids
from mailstack.mime import Envelope, ParsedMessage, Part, transfer_decode

if TYPE_CHECKING:
    from mailstack.store import Store

__all__ = [
    "STREAM_AT", "body_structure", "decodable", "decoded_structure", "envelope",
    "identity_encoding", "internaldate", "preview", "section_bytes", "section_range",
]  # fmt: skip

_CHUNK = 200  # messages fetched from the store per round trip
# Messages larger than this are streamed from the store, never read whole.
STREAM_AT = 256 * 1024
_FIELDS = frozenset({"HEADER.FIELDS", "HEADER.FIELDS.NOT"})
# RFC 2045 §6.1: the encodings BINARY can undo (the identity ones and two more).
_KNOWN_CTE = frozenset({"", "7bit", "8bit", "binary", "base64", "quoted-printable"})
_TRANSFORMING_CTE = frozenset({"base64", "quoted-printable"})


def internaldate(when: datetime) -> str:
    """RFC 3501 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day space-padded)."""
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return (
        f"{when.day:2d}-{MONTHS[when.month - 1]}-{when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


# RFC 8970 §3: a preview holds at most 256 characters.
PREVIEW_LENGTH = 256


def preview(text: str) -> str:
    """RFC 8970 PREVIEW: the start of the stored searchable text (the
    message's text parts, decoded, HTML as text), whitespace runs collapsed."""
    return " ".join(text[: 4 * PREVIEW_LENGTH].split())[:PREVIEW_LENGTH]


def _nstring(value: str | None) -> bytes:
    return b"NIL" if value is None else quoted(value)


def _addresses(addresses: list | None) -> bytes:
    if not addresses:
        return b"NIL"
    return (
        b"("
        + b"".join(b"(" + b" ".join(_nstring(v) for v in address) + b")" for address in addresses)
        + b")"
    )


def envelope(env: Envelope | None) -> bytes:
    """RFC 3501 §7.4.2 ENVELOPE; sender and reply-to default to from (mime does that)."""
    if env is None:
        return b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    return (
        b"("
        + b" ".join(
            [
                _nstring(env.date),
                _nstring(env.subject),
                _addresses(env.from_),
                _addresses(env.sender),
                _addresses(env.reply_to),
                _addresses(env.to),
                _addresses(env.cc),
                _addresses(env.bcc),
                _nstring(env.in_reply_to),
                _nstring(env.message_id),
            ]
        )
        + b")"
    )


def _params(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(quoted(k) + b" " + quoted(v) for k, v in params) + b")"


def _disposition(dsp: tuple[str, list[tuple[str, str]]] | None) -> bytes:
    if dsp is None:
        return b"NIL"
    return b"(" + quoted(dsp[0]) + b" " + _params(dsp[1]) + b")"


def _language(lang: list[str] | None) -> bytes:
    if not lang:
        return b"NIL"
    return b"(" + b" ".join(quoted(x) for x in lang) + b")"


def body_structure(part: Part, extended: bool) -> bytes:
    """RFC 3501 §7.4.2 BODY (extended=False) or BODYSTRUCTURE (extended=True)."""
    if part.children:
        # body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        out = b"".join(body_structure(child, extended) for child in part.children)
        out += b" " + quoted(part.subtype)
        if extended:
            out += b" " + b" ".join(
                [
                    _params(part.params),
                    _disposition(part.disposition),
                    _language(part.language),
                    _nstring(part.location),
                ]
            )
        return b"(" + out + b")"
    fields = [
        quoted(part.maintype),
        quoted(part.subtype),
        _params(part.params),
        _nstring(part.id),
        _nstring(part.description),
        quoted(part.encoding),
        str(part.size).encode(),
    ]
    if part.maintype == "message" and part.subtype in ("rfc822", "global"):
        inner = part.message
        fields.append(envelope(part.message_envelope))
        fields.append(
            body_structure(inner, extended)
            if inner is not None
            else b'("text" "plain" NIL NIL NIL "7BIT" 0 0)'
        )
        fields.append(str(part.lines or 0).encode())
    elif part.maintype == "text":
        fields.append(str(part.lines or 0).encode())
    if extended:
        fields += [
            _nstring(part.md5),
            _disposition(part.disposition),
            _language(part.language),
            _nstring(part.location),
        ]
    return b"(" + b" ".join(fields) + b")"


def decodable(part: Part) -> bool:
    """Whether BINARY can undo a leaf part's Content-Transfer-Encoding."""
    return part.encoding.strip().lower() in _KNOWN_CTE


def identity_encoding(data: bytes) -> str:
    """The identity encoding decoded octets are in (RFC 2045 §2.7-2.9): 7bit
    and 8bit are CRLF lines of at most 998 octets without NUL; binary is any."""
    lines = data.split(b"\r\n")
    if b"\x00" in data or any(b"\r" in line or b"\n" in line or len(line) > 998 for line in lines):
        return "binary"
    return "7bit" if data.isascii() else "8bit"


def decoded_structure(part: Part, data: bytes) -> bytes:
    """The BODYSTRUCTURE of a part as BINARY gives it, ``data`` being its
    decoded octets (RFC 5524 §3.1, URLFETCH BODYPARTSTRUCTURE with BINARY):
    a base64 or quoted-printable leaf is described in the identity encoding
    its content is in, with the decoded size; its line count, which RFC 5524
    leaves unsaid for converted data, is 0, as Dovecot gives it and
    imaptest's urlauth-binary script expects. Any other part is sent as it
    is, so it is described as it is."""
    if part.children or part.message is not None:
        return body_structure(part, True)
    if part.encoding.strip().lower() not in _TRANSFORMING_CTE:
        return body_structure(part, True)
    lines = 0 if part.lines is not None else None
    decoded = replace(
        part, encoding=identity_encoding(data), body_start=0, body_end=len(data), lines=lines
    )
    return body_structure(decoded, True)


def section_range(parsed: ParsedMessage, section: Section, size: int) -> tuple[int, int] | None:
    """Where the octets RFC 3501 §6.4.5 names by section lie in a message of
    ``size`` octets (for HEADER.FIELDS[.NOT], the header they are chosen
    from), or None if there is no such part."""
    part = parsed.section(section.part)
    if part is None:
        return None
    text = section.text
    if text is None:
        return (part.body_start, part.body_end) if section.part else (0, size)
    if text == "MIME":
        return part.header_start, part.body_start
    target = _addressed(part, section)
    if target is None:
        return None
    if text == "TEXT":
        return target.body_start, target.body_end
    return target.header_start, target.body_start


def section_bytes(raw: bytes, parsed: ParsedMessage, section: Section) -> bytes | None:
    """The octets of BODY[section] of a whole message (CATENATE's URLs,
    RFC 4469 §5), or None if the message has no such part."""
    where = section_range(parsed, section, len(raw))
    if where is None:
        return None
    data = raw[where[0] : where[1]]
    if section.text in _FIELDS:
        return _header_fields(data, where[0], parsed, section)
    return data


def _addressed(part: Part, section: Section) -> Part | None:
    """The entity whose HEADER or TEXT a section names: HEADER and TEXT of a
    part number address its encapsulated message."""
    return part.message if section.part else part


def _header_fields(header: bytes, base: int, parsed: ParsedMessage, section: Section) -> bytes:
    """HEADER.FIELDS[.NOT] from the header block that starts at ``base``."""
    part = parsed.section(section.part)
    target = None if part is None else _addressed(part, section)
    assert target is not None
    wanted = {f.lower() for f in section.fields}
    keep = section.text == "HEADER.FIELDS"
    pieces = [
        header[a - base : b - base]
        for name, a, b in target.headers
        if (name.lower() in wanted) == keep
    ]
    return b"".join(pieces) + b"\r\n"


@dataclass(frozen=True, slots=True)
class _Stream:
    """A literal of octets start to end of the message, written from the
    store a chunk at a time (RFC 3501 §4.3; literal8, RFC 3516 §4.3)."""

    start: int
    end: int
    literal8: bool = False


class _Text:
    """A message's octets as FETCH reads them: in memory for a small one,
    from the store in bounded chunks for a big one."""

    __slots__ = ("store", "mailbox_id", "uid", "raw", "size")

    def __init__(
        self, store: Store[ParsedMessage], mailbox_id: int, uid: int, raw: bytes | None, size: int
    ) -> None:
        self.store = store
        self.mailbox_id = mailbox_id
        self.uid = uid
        self.raw = raw
        self.size = len(raw) if raw is not None else size

    async def read(self, start: int, end: int) -> bytes:
        if self.raw is not None:
            return self.raw[start:end]
        chunks = self.store.message_chunks(self.mailbox_id, self.uid, start, end)
        return b"".join([chunk async for chunk in chunks])

    def literal(
        self, start: int, end: int, partial: tuple[int, int] | None, literal8: bool = False
    ) -> bytes | _Stream:
        if partial is not None:
            start, end = min(start + partial[0], end), min(start + partial[0] + partial[1], end)
        if self.raw is None:
            return _Stream(start, end, literal8)
        data = self.raw[start:end]
        return encode(Literal8(data) if literal8 and b"\x00" in data else data)


async def _text_value(
    item: FetchItem, text: _Text, parsed: ParsedMessage | None
) -> bytes | _Stream:
    """The value of an item read from the message's octets (BODY[...],
    BINARY[...], RFC822 and its parts)."""
    name = item.name
    if name == "RFC822":
        return text.literal(0, text.size, None)
    assert parsed is not None
    if item.section is None:
        root = parsed.root
        if name == "RFC822.HEADER":
            return text.literal(root.header_start, root.body_start, None)
        return text.literal(root.body_start, root.body_end, None)
    section = item.section
    if name == "BODY":
        where = section_range(parsed, section, text.size)
        if where is None:
            return b"NIL"
        if section.text in _FIELDS:
            header = await text.read(*where)
            return encode(_slice(_header_fields(header, where[0], parsed, section), item.partial))
        return text.literal(*where, item.partial)
    if section.text is not None:
        # BINARY[1.MIME], BINARY[TEXT], BINARY[HEADER.FIELDS (...)]: header
        # lines and bodies of several parts carry no transfer encoding of
        # their own, so they are sent as BODY[...] would send them (RFC
        # 3516's grammar has part numbers only; Dovecot takes these too).
        where = section_range(parsed, section, text.size)
        if where is None:
            data = b""
        elif section.text in _FIELDS:
            data = _header_fields(await text.read(*where), where[0], parsed, section)
        else:
            if name == "BINARY.SIZE":
                return str(where[1] - where[0]).encode()
            return text.literal(*where, item.partial, literal8=True)
        if name == "BINARY.SIZE":
            return str(len(data)).encode()
        return encode(_slice(data, item.partial))
    # RFC 3516 §4.2: BINARY[] is the whole message; BINARY[part] a leaf's
    # content with its Content-Transfer-Encoding undone.
    if not section.part:
        if name == "BINARY.SIZE":
            return str(text.size).encode()
        return text.literal(0, text.size, item.partial, literal8=True)
    part = parsed.section(section.part)
    if part is None:
        # A part the message does not have is empty, as BODY[5] is (and as
        # Dovecot answers), not a failure of the whole FETCH.
        return b"0" if name == "BINARY.SIZE" else encode(b"")
    if part.children or part.message is not None:
        # A multipart or message/rfc822 part has no transfer encoding of its
        # own (RFC 2045 §6.4): its octets are sent as they are.
        if name == "BINARY.SIZE":
            return str(part.body_end - part.body_start).encode()
        return text.literal(part.body_start, part.body_end, item.partial, literal8=True)
    if not decodable(part):
        # RFC 3516 §4.1: an encoding the server cannot undo fails the FETCH.
        raise ImapError("Unknown Content-Transfer-Encoding", code="UNKNOWN-CTE")
    binary = transfer_decode(await text.read(part.body_start, part.body_end), part.encoding)
    if name == "BINARY.SIZE":
        return str(len(binary)).encode()
    data = _slice(binary, item.partial)
    return encode(Literal8(data) if b"\x00" in data else data)


def _item_name(item: FetchItem) -> bytes:
    if item.section is None:
        return item.name.encode()
    name = f"{item.name}[{item.section.to_text()}]"
    if item.partial is not None:
        name += f"<{item.partial[0]}>"
    return name.encode("utf-8", "surrogateescape")


def _slice(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    start, count = partial
    return data[start : start + count]


_SETS_SEEN = frozenset({"RFC822", "RFC822.TEXT"})
_NEEDS_PARSED = frozenset(
    {"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822.HEADER", "RFC822.TEXT", "PREVIEW"}
)
_NEEDS_RAW = frozenset({"RFC822", "RFC822.TEXT", "RFC822.HEADER"})


@handler("FETCH")
async def fetch(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Fetch)
    sel = s.require_selected()
    if not cmd.uid and sel.out_of_range(args.sequence):
        raise ImapError("Invalid message sequence number", bad=True)
    items = list(args.items)
    if cmd.uid and not any(i.name == "UID" for i in items):
        items.insert(0, FetchItem("UID"))  # RFC 3501 §6.4.8
    if args.changedsince is not None or any(i.name == "MODSEQ" for i in items):
        s.enable_condstore()
        if not any(i.name == "MODSEQ" for i in items):
            items.append(FetchItem("MODSEQ"))
    item_names = [i.name for i in items]
    if (
        item_names in (["FLAGS"], ["UID", "FLAGS"])
        and _meta_only(items)
        and not args.sequence.saved
        and args.changedsince is None
        and args.partial is None
        and not args.vanished
    ):
        # The usual sync, FETCH 1:* (FLAGS): from the view's index spans,
        # no (msn, uid) pair per message.
        await _send_flags(s, sel, len(item_names) == 2, sel.spans(args.sequence, cmd.uid))
        return None
    pairs = sel.resolve(args.sequence, cmd.uid)
    if args.changedsince is not None:
        pairs = [(n, u) for n, u in pairs if sel.meta[u].modseq > args.changedsince]
    if args.partial is not None:
        # RFC 9394 §3.3: the range counts the messages the set (and
        # CHANGEDSINCE) named, in UID order, from the first or the last.
        keep = set(args.partial.take([u for _n, u in pairs]))
        pairs = [(n, u) for n, u in pairs if u in keep]
    if args.vanished:
        # RFC 7162 §3.2.6: UIDs in the set expunged after CHANGEDSINCE.
        _changed, vanished = await s.store.changes_since(sel.mailbox_id, args.changedsince or 0)
        largest = sel.uids[-1] if sel.uids else 1
        # '*' stands for the largest UID, also one already expunged.
        gone = args.sequence.select(vanished, max([largest, *vanished[-1:]]))
        if gone:
            s.send(b"* VANISHED (EARLIER) " + uid_set_text(gone).encode() + b"\r\n")
    needs_parsed = any(i.name in _NEEDS_PARSED or i.section is not None for i in items)
    needs_savedate = any(i.name == "SAVEDATE" for i in items)
    needs_raw = any(i.name in _NEEDS_RAW or i.section is not None for i in items)
    # RFC 4314 §4: no \Seen without the s right.
    sets_seen = (
        not sel.readonly
        and "s" in sel.rights
        and any(
            i.name in _SETS_SEEN
            # RFC 3516 §4.2: BINARY.SIZE reads nothing, so it leaves \Seen alone.
            or (i.section is not None and not i.peek and i.name != "BINARY.SIZE")
            for i in items
        )
    )
    flags_changed: set[int] = set()
    if sets_seen:
        unseen = [u for _n, u in pairs if "\\Seen" not in sel.meta[u].flags]
        if unseen:
            result = await s.store.store_flags(sel.mailbox_id, unseen, ["\\Seen"], "add")
            for meta in result.changed:
                sel.update_meta(meta)
                flags_changed.add(meta.uid)
    send_flags = flags_changed and not any(i.name == "FLAGS" for i in items)
    if not needs_parsed and not needs_raw and not send_flags and _meta_only(items):
        await _send_meta(s, sel, items, pairs)
        return None
    missing = 0
    names = [(b" " if n else b"") + _item_name(item) + b" " for n, item in enumerate(items)]
    # Values from the session's view alone are cheap: flushed less often.
    step = _CHUNK if needs_parsed or needs_raw else 20 * _CHUNK
    for start in range(0, len(pairs), step):
        chunk = pairs[start : start + step]
        uids = [u for _n, u in chunk]
        # Big messages are never read whole: their literals are written from
        # the store a chunk at a time (RSS per slow reader is the socket
        # buffer's, not the message's); the parse says they still exist.
        big = {u for u in uids if sel.meta[u].size > STREAM_AT} if needs_raw else set()
        parsed: dict[int, ParsedMessage] = {}
        if needs_parsed or big:
            wanted = uids if needs_parsed else sorted(big)
            parsed = await s.ctx.parsed.get_many(s.store, sel.mailbox_id, sel.uidvalidity, wanted)
        savedates = await s.store.message_savedates(sel.mailbox_id, uids) if needs_savedate else {}
        raws: dict[int, bytes] = {}
        if needs_raw:
            small = [u for u in uids if u not in big]
            if small:
                raws = await s.store.messages_bytes(sel.mailbox_id, small)
        for msn, uid in chunk:
            if (
                (needs_parsed or uid in big)
                and uid not in parsed
                or (needs_raw and uid not in big and uid not in raws)
            ):
                # Expunged by another session, not yet announced: served from
                # what the node kept of it (RFC 2180 §4.1.1); when it kept
                # nothing, §4.1.2 lets the FETCH fail for it.
                kept = s.ctx.expunged.get((sel.mailbox_id, sel.uidvalidity, uid))
                if kept is None or needs_parsed and kept[1] is None:
                    missing += 1
                    continue
                raws[uid] = kept[0]
                if kept[1] is not None:
                    parsed[uid] = kept[1]
                big.discard(uid)
            out: list[bytes | _Stream] = [b"* %d FETCH (" % msn]
            text = (
                _Text(s.store, sel.mailbox_id, uid, raws.get(uid), sel.meta[uid].size)
                if needs_raw
                else None  # FETCH 1:* (FLAGS) and the like: all from the session's view
            )
            found = parsed.get(uid)
            for name, item in zip(names, items, strict=True):
                out.append(name)
                if text is not None and (item.section is not None or item.name in _NEEDS_RAW):
                    out.append(await _text_value(item, text, found))
                elif item.name == "SAVEDATE":
                    # RFC 8514 §4.2: NIL when unknown (here: a message another
                    # session expunged, served from what the node kept of it).
                    saved = savedates.get(uid)
                    out.append(b"NIL" if saved is None else quoted(internaldate(saved)))
                else:
                    out.append(_value(s, item, uid, found))
            if send_flags and uid in flags_changed:
                out.append(b" FLAGS " + sel.flags_text(uid))
            out.append(b")\r\n")
            if uid not in big:
                s.send(b"".join(piece for piece in out if isinstance(piece, bytes)))
            elif text is None or not await _send_streamed(s, text, out):  # big: octets read
                # RFC 3501 §4.3: a literal cannot be taken back; the message
                # vanished half-way through, and the connection has to go.
                s.closing = True
                return Done("", answered=True)
        await s.channel.flush()
    if missing:
        raise ImapError("Some messages were expunged meanwhile", code="EXPUNGEISSUED")
    return None


# Items whose values come from the session's view alone.
# Items answered from the session's view alone, as FETCH 1:* of a sync asks.
_META_FORMS = {
    "UID": b"UID %d",
    "FLAGS": b"FLAGS %s",
    "RFC822.SIZE": b"RFC822.SIZE %d",
    "MODSEQ": b"MODSEQ (%d)",
    "INTERNALDATE": b"INTERNALDATE %s",
}
_SIZE_OF = operator.attrgetter("size")
_MODSEQ_OF = operator.attrgetter("modseq")
_INTERNALDATE_OF = operator.attrgetter("internaldate")


def _meta_only(items: list[FetchItem]) -> bool:
    return all(i.section is None and i.name in _META_FORMS for i in items)


def _internaldate_text(when: datetime) -> bytes:
    return quoted(internaldate(when))


async def _send_meta(
    s: Session, sel: SelectedMailbox, items: list[FetchItem], pairs: list[tuple[int, int]]
) -> None:
    """FETCH of UID, FLAGS, RFC822.SIZE, MODSEQ and INTERNALDATE only
    (``FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)``, what a client asks
    of a whole mailbox at a sync): no store read; each chunk's values made
    an item at a time by map() (the flags once per distinct set), and every
    response one format of them."""
    form = b"* %d FETCH (" + b" ".join(_META_FORMS[i.name] for i in items) + b")\r\n"
    step = 20 * _CHUNK
    for start in range(0, len(pairs), step):
        chunk = pairs[start : start + step]
        uids = [u for _n, u in chunk]
        metas = list(map(sel.meta.__getitem__, uids))
        columns: list[Sequence[object]] = [[n for n, _u in chunk]]
        for item in items:
            if item.name == "UID":
                columns.append(uids)
            elif item.name == "FLAGS":
                columns.append(sel.flag_texts(uids))
            elif item.name == "RFC822.SIZE":
                columns.append(list(map(_SIZE_OF, metas)))
            elif item.name == "MODSEQ":
                columns.append(list(map(_MODSEQ_OF, metas)))
            else:
                columns.append(list(map(_internaldate_text, map(_INTERNALDATE_OF, metas))))
        s.send(b"".join(map(form.__mod__, zip(*columns, strict=True))))
        await s.channel.flush()


async def _send_flags(
    s: Session, sel: SelectedMailbox, with_uid: bool, spans: list[tuple[int, int]]
) -> None:
    """FETCH of FLAGS, or UID and FLAGS, of the messages at index spans
    [a, b) of the view: one dict look-up of the flag set's wire form per
    message (a mailbox has few distinct sets), the lines formatted by map()
    over zip() (no Python frame, no tuple kept per message)."""
    form = b"* %d FETCH (UID %d FLAGS %s)\r\n" if with_uid else b"* %d FETCH (FLAGS %s)\r\n"
    # The view cannot change while the command runs (updates wait for its
    # end), so each chunk's flags are read as it is made: the first lines
    # leave at once and the client reads them while the rest are made. A
    # small first chunk, then larger ones.
    step = _CHUNK
    for a, b in spans:
        uids = sel.uids[a:b]
        start = 0
        while start < len(uids):
            end = min(start + step, len(uids))
            chunk = uids[start:end]
            texts = sel.flag_texts(chunk)
            numbers = range(a + start + 1, a + end + 1)
            if with_uid:
                lines = map(form.__mod__, zip(numbers, chunk, texts, strict=True))
            else:
                lines = map(form.__mod__, zip(numbers, texts, strict=True))
            s.send(b"".join(lines))
            await s.channel.flush()
            start, step = end, 20 * _CHUNK


async def _send_streamed(s: Session, text: _Text, out: list[bytes | _Stream]) -> bool:
    """Write one FETCH response whose literals come from the store; False
    when the message went away before its literals were complete."""
    for piece in out:
        if isinstance(piece, bytes):
            s.send(piece)
            continue
        length = piece.end - piece.start
        s.send(b"%s{%d}\r\n" % (b"~" if piece.literal8 else b"", length))
        try:
            async for data in text.store.message_chunks(
                text.mailbox_id, text.uid, piece.start, piece.end
            ):
                s.send(data)
                length -= len(data)
                # Wait for the socket to take it before reading on.
                await s.channel.flush()
        except NotFound:
            return False
        if length:
            return False
    return True


def _value(s: Session, item: FetchItem, uid: int, parsed: ParsedMessage | None) -> bytes:
    """The value of an item that is not read from the message's octets."""
    sel = s.selected
    assert sel is not None
    meta = sel.meta[uid]
    name = item.name
    if name == "UID":
        return str(uid).encode()
    if name == "FLAGS":
        return sel.flags_text(uid)
    if name == "INTERNALDATE":
        return quoted(internaldate(meta.internaldate))
    if name == "RFC822.SIZE":
        return str(meta.size).encode()
    if name == "MODSEQ":
        return b"(%d)" % meta.modseq
    if name == "EMAILID":
        # RFC 8474 §5.1: the id JMAP gives the message (kept by MOVE).
        return b"(" + ids.encode(ids.EMAIL, meta.email_id).encode() + b")"
    if name == "THREADID":
        if not meta.thread_id:
            return b"NIL"
        return b"(" + ids.encode(ids.THREAD, meta.thread_id).encode() + b")"
    assert parsed is not None
    # 8-bit strings are literals for a session without UTF-8 in quoted strings.
    key = (sel.mailbox_id, sel.uidvalidity, uid, name + ("/utf8" if s.utf8 else ""))
    if name == "ENVELOPE":
        return s.ctx.parsed.rendered(key, lambda: envelope(parsed.envelope))
    if name == "PREVIEW":
        return s.ctx.parsed.rendered(key, lambda: quoted(preview(parsed.text)))
    extended = name == "BODYSTRUCTURE"
    return s.ctx.parsed.rendered(key, lambda: body_structure(parsed.root, extended))
