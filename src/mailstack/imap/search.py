"""SEARCH and UID SEARCH (RFC 3501 §6.4.4), with ESEARCH results (RFC 4731),
MODSEQ criteria (RFC 7162 §3.1.5) and OLDER/YOUNGER (RFC 5032).

Header, address and text keys read the stored parse (mime.ParsedMessage:
decoded header fields and the searchable text), never the message again.
Strings match as case-insensitive substrings; CHARSET may be UTF-8 or
US-ASCII (RFC 3501 §6.4.4: others get NO [BADCHARSET]).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from mailstack.errors import ImapError
from mailstack.imap.proto.commands import Command, Search, SearchKey, SequenceSet
from mailstack.imap.proto.response import quoted
from mailstack.imap.selected import SelectedMailbox, uid_set_text
from mailstack.imap.session import Done, Session, handler
from mailstack.mime import Address, ParsedMessage, decode_header
from mailstack.store import MessageMeta

__all__ = ["evaluate", "needs_parsed"]

CHARSETS = ("UTF-8", "US-ASCII")
_PARSED_KEYS = frozenset(
    {"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO", "HEADER",
     "SENTBEFORE", "SENTON", "SENTSINCE"}
)  # fmt: skip
_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}


def needs_parsed(key: SearchKey) -> bool:
    if key.name in _PARSED_KEYS:
        return True
    return any(isinstance(a, SearchKey) and needs_parsed(a) for a in key.args)


def _uses_modseq(key: SearchKey) -> bool:
    if key.name == "MODSEQ":
        return True
    return any(isinstance(a, SearchKey) and _uses_modseq(a) for a in key.args)


def _contains(haystack: str | None, needle: str) -> bool:
    return haystack is not None and needle.casefold() in haystack.casefold()


# SEARCH FROM/TO/CC/BCC read the addresses as ENVELOPE gives them: the first
# field of each, parsed at delivery (comments and quoting gone).
_ADDRESS_KEYS = {"FROM": "from_", "TO": "to", "CC": "cc", "BCC": "bcc"}


def _address_match(addresses: list[Address] | None, needle: str) -> bool:
    """The needle in an address's ``mailbox@host``, its display name (encoded
    words decoded) or both as ``name <mailbox@host>``, as Dovecot matches."""
    if not addresses:
        return False
    needle = needle.casefold()
    for address in addresses:
        if address.host is None:
            continue  # RFC 3501 §7.4.2 group markers
        spec = f"{address.mailbox}@{address.host}" if address.host else address.mailbox or ""
        name = address.name
        if name is not None and "=?" in name:
            name = decode_header(name)
        text = f"{name} <{spec}>" if name else spec
        if needle in text.casefold():
            return True
    return False


def _whole_text(parsed: ParsedMessage) -> str:
    return parsed.header_text() + "\n" + parsed.text


def _day(when: datetime) -> date:
    return when.date()


class _Eval:
    def __init__(self, sel: SelectedMailbox, now: datetime) -> None:
        self.sel = sel
        self.now = now
        self._sets: dict[int, frozenset[int]] = {}

    def _members(self, key: SearchKey) -> frozenset[int]:
        """The UIDs a SEQSET or UID key names, resolved once per search (a
        long set against a big mailbox would otherwise cost their product)."""
        members = self._sets.get(id(key))
        if members is None:
            seq = key.args[0]
            assert isinstance(seq, SequenceSet)
            members = frozenset(u for _n, u in self.sel.resolve(seq, key.name == "UID"))
            self._sets[id(key)] = members
        return members

    def match(
        self, key: SearchKey, msn: int, meta: MessageMeta, parsed: ParsedMessage | None
    ) -> bool:
        name = key.name
        args = key.args
        if name == "ALL":
            return True
        if name in ("AND", "OR", "NOT"):
            subkeys = [k for k in args if isinstance(k, SearchKey)]
            if name == "AND":
                return all(self.match(k, msn, meta, parsed) for k in subkeys)
            if name == "OR":
                return any(self.match(k, msn, meta, parsed) for k in subkeys)
            return not self.match(subkeys[0], msn, meta, parsed)
        flags = self.sel.flags(meta.uid)
        if name in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[name]
            return (flag in flags) == present
        if name == "RECENT":
            return "\\Recent" in flags
        if name == "NEW":
            return "\\Recent" in flags and "\\Seen" not in flags
        if name == "OLD":
            return "\\Recent" not in flags
        if name in ("KEYWORD", "UNKEYWORD"):
            wanted = str(args[0]).casefold()
            present = any(f.casefold() == wanted for f in flags)
            return present == (name == "KEYWORD")
        if name in ("SEQSET", "UID"):
            return meta.uid in self._members(key)
        if name == "LARGER":
            return meta.size > _number(args[0])
        if name == "SMALLER":
            return meta.size < _number(args[0])
        if name == "MODSEQ":
            return meta.modseq >= _number(args[0])
        if name in ("BEFORE", "ON", "SINCE"):
            return _compare(name, _day(meta.internaldate), _date(args[0]))
        if name in ("OLDER", "YOUNGER"):
            age = (self.now - meta.internaldate).total_seconds()
            limit = _number(args[0])
            return age >= limit if name == "OLDER" else age <= limit
        assert parsed is not None
        if name in ("SENTBEFORE", "SENTON", "SENTSINCE"):
            if parsed.sent_date is None:
                return False
            return _compare(name[4:], _day(parsed.sent_date), _date(args[0]))
        if name in _ADDRESS_KEYS:
            return _address_match(getattr(parsed.envelope, _ADDRESS_KEYS[name]), str(args[0]))
        if name == "SUBJECT":
            return any(_contains(v, str(args[0])) for v in parsed.header_values(name))
        if name == "HEADER":
            field, needle = str(args[0]), str(args[1])
            values = parsed.header_values(field)
            # RFC 3501 §6.4.4: an empty string matches every message that has the field.
            return bool(values) and (not needle or any(_contains(v, needle) for v in values))
        if name == "BODY":
            return _contains(parsed.text, str(args[0]))
        if name == "TEXT":
            return _contains(_whole_text(parsed), str(args[0]))
        raise ImapError("Unsupported search key", bad=True)


def _number(arg: object) -> int:
    assert isinstance(arg, int)
    return arg


def _date(arg: object) -> date:
    assert isinstance(arg, date)
    return arg


def _compare(op: str, day: date, wanted: date) -> bool:
    if op == "BEFORE":
        return day < wanted
    if op == "ON":
        return day == wanted
    return day >= wanted


async def evaluate(s: Session, key: SearchKey) -> list[tuple[int, int]]:
    """(msn, uid) of every message in the selected mailbox that matches."""
    sel = s.require_selected()
    ev = _Eval(sel, datetime.now(UTC))
    pairs = list(enumerate(sel.uids, 1))
    out: list[tuple[int, int]] = []
    if not needs_parsed(key):
        for msn, uid in pairs:
            if ev.match(key, msn, sel.meta[uid], None):
                out.append((msn, uid))
        return out
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        parsed = await s.ctx.parsed.get_many(
            s.store, sel.mailbox_id, sel.uidvalidity, [u for _m, u in chunk]
        )
        for msn, uid in chunk:
            p = parsed.get(uid)
            if p is not None and ev.match(key, msn, sel.meta[uid], p):
                out.append((msn, uid))
    return out


@handler("SEARCH")
async def search(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Search)
    sel = s.require_selected()
    if args.charset is not None and args.charset not in CHARSETS:
        raise ImapError("Unsupported charset", code="BADCHARSET (UTF-8 US-ASCII)")
    if args.returns is not None and "SAVE" in args.returns:
        raise ImapError("SEARCHRES is not supported", bad=True)
    uses_modseq = _uses_modseq(args.key)
    if uses_modseq:
        s.enable_condstore()
    found = await evaluate(s, args.key)
    numbers = [uid if cmd.uid else msn for msn, uid in found]
    highest = max((sel.meta[uid].modseq for _m, uid in found), default=0)
    if args.returns is None:
        line = b"* SEARCH" + b"".join(b" %d" % n for n in numbers)
        if uses_modseq and numbers:
            line += b" (MODSEQ %d)" % highest
        s.send(line + b"\r\n")
        return None
    # RFC 4731 §3.1: RETURN () means ALL.
    wanted = set(args.returns) or {"ALL"}
    parts = [b"* ESEARCH (TAG " + quoted(cmd.tag) + b")"]
    if cmd.uid:
        parts.append(b"UID")
    if numbers:
        if "MIN" in wanted:
            parts.append(b"MIN %d" % min(numbers))
        if "MAX" in wanted:
            parts.append(b"MAX %d" % max(numbers))
        if "ALL" in wanted:
            parts.append(b"ALL " + uid_set_text(numbers).encode())
    if "COUNT" in wanted:
        parts.append(b"COUNT %d" % len(numbers))
    if uses_modseq and numbers:
        if wanted & {"ALL", "COUNT"}:
            parts.append(b"MODSEQ %d" % highest)
        else:
            # RFC 4731 §3.2: with only MIN and/or MAX, the highest mod-sequence
            # of the messages actually returned.
            modseq = {n: sel.meta[uid].modseq for (_m, uid), n in zip(found, numbers, strict=True)}
            chosen = [f(numbers) for name, f in (("MIN", min), ("MAX", max)) if name in wanted]
            parts.append(b"MODSEQ %d" % max(modseq[n] for n in chosen))
    s.send(b" ".join(parts) + b"\r\n")
    return None
