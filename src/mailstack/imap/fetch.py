"""FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2), with CONDSTORE's MODSEQ and
CHANGEDSINCE (RFC 7162 §3.1.4), QRESYNC's VANISHED modifier (§3.2.6) and
BINARY sections (RFC 3516).

ENVELOPE, BODY, BODYSTRUCTURE and every BODY[section] are answered from the
parse stored at delivery (mime.ParsedMessage) and slices of the raw bytes at
its offsets; nothing is parsed again here.
"""

from __future__ import annotations

from datetime import datetime

from mailstack.errors import ImapError
from mailstack.imap.proto.commands import Command, Fetch, FetchItem, Section
from mailstack.imap.proto.parser import MONTHS
from mailstack.imap.proto.response import Literal8, encode, quoted
from mailstack.imap.selected import flags_atoms, uid_set_text
from mailstack.imap.session import Done, Session, handler
from mailstack.mime import Envelope, ParsedMessage, Part, transfer_decode

__all__ = ["body_structure", "envelope", "internaldate", "section_bytes"]

_CHUNK = 200  # messages fetched from the store per round trip


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


def section_bytes(raw: bytes, parsed: ParsedMessage, section: Section) -> bytes | None:
    """The octets RFC 3501 §6.4.5 names by section, or None if there is no such part."""
    part = parsed.section(section.part)
    if part is None:
        return None
    text = section.text
    if text is None:
        if not section.part:
            return raw
        return raw[part.body_start : part.body_end]
    if text == "MIME":
        return raw[part.header_start : part.body_start]
    if section.part:
        # HEADER and TEXT of a part number address its encapsulated message.
        if part.message is None:
            return None
        target = part.message
    else:
        target = part
    if text == "HEADER":
        return raw[target.header_start : target.body_start]
    if text == "TEXT":
        return raw[target.body_start : target.body_end]
    wanted = {f.lower() for f in section.fields}
    keep = text == "HEADER.FIELDS"
    pieces = [raw[a:b] for name, a, b in target.headers if (name.lower() in wanted) == keep]
    return b"".join(pieces) + b"\r\n"


def _binary(raw: bytes, parsed: ParsedMessage, section: Section) -> bytes | None:
    """RFC 3516 §4.2: BINARY[] is the whole message; BINARY[part] a leaf's
    content with its Content-Transfer-Encoding undone; None for anything else."""
    if not section.part:
        return raw
    part = parsed.section(section.part)
    if part is None or part.children or part.message is not None:
        return None
    return transfer_decode(raw[part.body_start : part.body_end], part.encoding)


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
_NEEDS_PARSED = frozenset({"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822.HEADER", "RFC822.TEXT"})
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
        s.condstore = True  # RFC 7162 §3.1: CONDSTORE-enabling
        if not any(i.name == "MODSEQ" for i in items):
            items.append(FetchItem("MODSEQ"))
    pairs = sel.resolve(args.sequence, cmd.uid)
    if args.changedsince is not None:
        pairs = [(n, u) for n, u in pairs if sel.meta[u].modseq > args.changedsince]
    if args.vanished:
        # RFC 7162 §3.2.6: UIDs in the set expunged after CHANGEDSINCE.
        _changed, vanished = await s.store.changes_since(sel.mailbox_id, args.changedsince or 0)
        largest = sel.uids[-1] if sel.uids else 1
        # '*' stands for the largest UID, also one already expunged.
        gone = args.sequence.select(vanished, max([largest, *vanished[-1:]]))
        if gone:
            s.send(b"* VANISHED (EARLIER) " + uid_set_text(gone).encode() + b"\r\n")
    needs_parsed = any(i.name in _NEEDS_PARSED or i.section is not None for i in items)
    needs_raw = any(i.name in _NEEDS_RAW or i.section is not None for i in items)
    sets_seen = not sel.readonly and any(
        i.name in _SETS_SEEN or (i.section is not None and not i.peek) for i in items
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
    missing = 0
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start : start + _CHUNK]
        uids = [u for _n, u in chunk]
        parsed: dict[int, ParsedMessage] = {}
        if needs_parsed:
            parsed = await s.ctx.parsed.get_many(s.store, sel.mailbox_id, sel.uidvalidity, uids)
        raws: dict[int, bytes] = {}
        if needs_raw:
            raws = await s.store.messages_bytes(sel.mailbox_id, uids)
        for msn, uid in chunk:
            if (needs_parsed and uid not in parsed) or (needs_raw and uid not in raws):
                # Expunged by another session, not yet announced: RFC 2180
                # §4.1.2 lets the FETCH fail for it; its EXPUNGE comes later.
                missing += 1
                continue
            raw = raws.get(uid, b"")
            out = []
            for item in items:
                out.append(_item_name(item) + b" " + _value(s, item, uid, raw, parsed.get(uid)))
            if send_flags and uid in flags_changed:
                out.append(b"FLAGS " + encode(flags_atoms(sel.flags(uid))))
            s.send(b"* %d FETCH (" % msn + b" ".join(out) + b")\r\n")
        await s.channel.flush()
    if missing:
        raise ImapError("Some messages were expunged meanwhile", code="EXPUNGEISSUED")
    return None


def _value(
    s: Session, item: FetchItem, uid: int, raw: bytes, parsed: ParsedMessage | None
) -> bytes:
    sel = s.selected
    assert sel is not None
    meta = sel.meta[uid]
    name = item.name
    if item.section is not None:
        assert parsed is not None
        if name == "BODY":
            data = section_bytes(raw, parsed, item.section)
            return b"NIL" if data is None else encode(_slice(data, item.partial))
        binary = _binary(raw, parsed, item.section)
        if binary is None:
            raise ImapError("No such leaf part", code="UNKNOWN-CTE")
        if name == "BINARY.SIZE":
            return str(len(binary)).encode()
        data = _slice(binary, item.partial)
        return encode(Literal8(data) if b"\x00" in data else data)
    if name == "UID":
        return str(uid).encode()
    if name == "FLAGS":
        return encode(flags_atoms(sel.flags(uid)))
    if name == "INTERNALDATE":
        return quoted(internaldate(meta.internaldate))
    if name == "RFC822.SIZE":
        return str(meta.size).encode()
    if name == "MODSEQ":
        return b"(%d)" % meta.modseq
    if name in ("ENVELOPE", "BODYSTRUCTURE", "BODY"):
        assert parsed is not None
        key = (sel.mailbox_id, sel.uidvalidity, uid, name)
        if name == "ENVELOPE":
            return s.ctx.parsed.rendered(key, lambda: envelope(parsed.envelope))
        extended = name == "BODYSTRUCTURE"
        return s.ctx.parsed.rendered(key, lambda: body_structure(parsed.root, extended))
    if name == "RFC822":
        return encode(raw)
    assert parsed is not None
    root = parsed.root
    if name == "RFC822.HEADER":
        return encode(raw[root.header_start : root.body_start])
    return encode(raw[root.body_start : root.body_end])
