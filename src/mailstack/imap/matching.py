"""Which messages of the selected mailbox match a search program (RFC 3501
§6.4.4 keys, RFC 7162 §3.1.5 MODSEQ, RFC 5032 OLDER/YOUNGER, RFC 8514 SAVED*), and in what
order SORT puts them (RFC 5256, ordering.py), and RFC 8474 EMAILID and
THREADID: what SEARCH, SORT, THREAD and
the RFC 5267 contexts share.

Header, address and text keys read the stored parse (mime.ParsedMessage:
decoded header fields and the searchable text), never the message again;
sort keys come from the node's SortKeyCache, made from the same parse.
Strings match as case-insensitive substrings; CHARSET may be UTF-8 or
US-ASCII (RFC 3501 §6.4.4: others get NO [BADCHARSET]).

The store's full-text index (``Store.search_text``, kept at delivery) answers
TEXT and BODY outright and narrows SUBJECT and HEADER to the messages whose
header lines hold the string, which are then checked against the parse as
before; AND, OR and NOT of those combine the sets. So a search reads the
parse of the messages it may find, not of the whole mailbox. The address
keys (matched on parsed addresses, RFC 3501 §6.4.4, as Dovecot does) are
narrowed to the messages whose header lines hold every part of the string
that the line must hold as it is (``_address_pieces``). Strings the index
cannot look up (under three characters, a line break) scan.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from mailstack.errors import ImapError
from mailstack.imap.ordering import Entry, MessageKeys, sort_order
from mailstack.imap.proto.commands import SearchKey, SequenceSet
from mailstack.imap.selected import SelectedMailbox
from mailstack.jmap import ids
from mailstack.mime import Address, ParsedMessage, decode_header
from mailstack.store import MessageMeta
from mailstack.store.fulltext import MIN_NEEDLE

if TYPE_CHECKING:
    from mailstack.imap.session import Session

__all__ = [
    "check_charset", "clock", "entries", "evaluate", "needs_parsed", "sort_found", "uses_age",
    "uses_modseq",
]  # fmt: skip

CHARSETS = ("UTF-8", "US-ASCII")
_PARSED_KEYS = frozenset(
    {"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO", "HEADER",
     "SENTBEFORE", "SENTON", "SENTSINCE"}
)  # fmt: skip
_SAVED_KEYS = frozenset({"SAVEDBEFORE", "SAVEDON", "SAVEDSINCE"})
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


def uses_age(key: SearchKey) -> bool:
    """RFC 5032 OLDER, YOUNGER: what matches changes as time passes."""
    if key.name in ("OLDER", "YOUNGER"):
        return True
    return any(isinstance(a, SearchKey) and uses_age(a) for a in key.args)


def clock() -> datetime:
    """The time OLDER and YOUNGER count from (tests set it)."""
    return datetime.now(UTC)


def uses_savedate(key: SearchKey) -> bool:
    """RFC 8514 §4.3 SAVEDBEFORE, SAVEDON, SAVEDSINCE: read from the store."""
    if key.name in _SAVED_KEYS:
        return True
    return any(isinstance(a, SearchKey) and uses_savedate(a) for a in key.args)


def uses_modseq(key: SearchKey) -> bool:
    if key.name == "MODSEQ":
        return True
    return any(isinstance(a, SearchKey) and uses_modseq(a) for a in key.args)


def _contains(haystack: str | None, needle: str) -> bool:
    return haystack is not None and needle.casefold() in haystack.casefold()


# SEARCH FROM/TO/CC/BCC read the addresses as ENVELOPE gives them: the first
# field of each, parsed at delivery (comments and quoting gone).
_ADDRESS_KEYS = {"FROM": "from_", "TO": "to", "CC": "cc", "BCC": "bcc"}


def _address_match(addresses: list[Address] | None, needle: str) -> bool:
    """The needle in an address's ``mailbox@host``, its display name (encoded
    words decoded), both as ``name <mailbox@host>``, or a group's name, as
    Dovecot matches."""
    if not addresses:
        return False
    needle = needle.casefold()
    for address in addresses:
        if address.host is None:
            # RFC 3501 §7.4.2 group markers: the start names the group
            # (RFC 5322 §3.4 display-name), which matches as Dovecot's does.
            if address.mailbox is not None and needle in address.mailbox.casefold():
                return True
            continue
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
    def __init__(
        self, sel: SelectedMailbox, now: datetime, savedates: dict[int, datetime] | None = None
    ) -> None:
        self.sel = sel
        self.now = now
        self.savedates = savedates or {}
        self._sets: dict[int, frozenset[int]] = {}
        # TEXT and BODY keys the full-text index answered: their UIDs.
        self.known: dict[int, set[int]] = {}

    def needs_parsed(self, key: SearchKey) -> bool:
        """Whether matching reads the parse, given the keys the index answered."""
        if id(key) in self.known:
            return False
        if key.name in _PARSED_KEYS:
            return True
        return any(isinstance(a, SearchKey) and self.needs_parsed(a) for a in key.args)

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
        if name in ("ALL", "SAVEDATESUPPORTED"):
            # RFC 8514 §4.3: every mailbox here keeps save dates.
            return True
        known = self.known.get(id(key))
        if known is not None:
            return meta.uid in known
        if name in ("AND", "OR", "NOT"):
            subkeys = [k for k in args if isinstance(k, SearchKey)]
            if name == "AND":
                return all(self.match(k, msn, meta, parsed) for k in subkeys)
            if name == "OR":
                return any(self.match(k, msn, meta, parsed) for k in subkeys)
            return not self.match(subkeys[0], msn, meta, parsed)
        if name in _ON_FLAGS:
            return _flag_match(key, self.sel.flags(meta.uid))
        if name in ("SEQSET", "UID"):
            return meta.uid in self._members(key)
        if name == "LARGER":
            return meta.size > _number(args[0])
        if name == "SMALLER":
            return meta.size < _number(args[0])
        if name == "MODSEQ":
            return meta.modseq >= _number(args[0])
        if name == "EMAILID":
            return ids.encode(ids.EMAIL, meta.email_id) == args[0]
        if name == "THREADID":
            return bool(meta.thread_id) and ids.encode(ids.THREAD, meta.thread_id) == args[0]
        if name in ("BEFORE", "ON", "SINCE"):
            return _compare(name, _day(meta.internaldate), _date(args[0]))
        if name in _SAVED_KEYS:
            saved = self.savedates.get(meta.uid)
            return saved is not None and _compare(name[5:], _day(saved), _date(args[0]))
        if name in ("OLDER", "YOUNGER"):
            # RFC 5032 §3: the internal date's age in seconds; OLDER n and
            # YOUNGER n split the mailbox in two (a message exactly n
            # seconds old is OLDER), as Dovecot does.
            age = (self.now - meta.internaldate).total_seconds()
            limit = _number(args[0])
            return age >= limit if name == "OLDER" else age < limit
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


# Keys that read nothing but a message's flags (\\Recent included).
_ON_FLAGS = frozenset({*_FLAG_KEYS, "RECENT", "NEW", "OLD", "KEYWORD", "UNKEYWORD"})
_RECENT = frozenset({"\\Recent"})
_FLAGS_OF = operator.attrgetter("flags")


def _flags_only(key: SearchKey) -> bool:
    """Whether key reads nothing but flags (with ALL, AND, OR and NOT)."""
    if key.name in _ON_FLAGS or key.name == "ALL":
        return True
    if key.name in ("AND", "OR", "NOT"):
        return all(_flags_only(a) for a in key.args if isinstance(a, SearchKey))
    return False


def _flag_match(key: SearchKey, flags: frozenset[str]) -> bool:
    """Whether a message with ``flags`` matches a key ``_flags_only`` takes."""
    name = key.name
    if name == "ALL":
        return True
    if name in ("AND", "OR", "NOT"):
        subkeys = [k for k in key.args if isinstance(k, SearchKey)]
        if name == "AND":
            return all(_flag_match(k, flags) for k in subkeys)
        if name == "OR":
            return any(_flag_match(k, flags) for k in subkeys)
        return not _flag_match(subkeys[0], flags)
    if name in _FLAG_KEYS:
        flag, present = _FLAG_KEYS[name]
        return (flag in flags) == present
    if name == "RECENT":
        return "\\Recent" in flags
    if name == "NEW":
        return "\\Recent" in flags and "\\Seen" not in flags
    if name == "OLD":
        return "\\Recent" not in flags
    wanted = str(key.args[0]).casefold()
    present = any(f.casefold() == wanted for f in flags)
    return present == (name == "KEYWORD")


def _by_flag_sets(
    key: SearchKey, sel: SelectedMailbox, pairs: list[tuple[int, int]] | None
) -> list[tuple[int, int]]:
    """The pairs (None: the whole view) whose message matches key, a
    ``_flags_only`` one: decided once per distinct flag set (a mailbox has
    few), not once per message, and the view walked by map() and compress()
    (100,000 messages: a few ms)."""
    uids = sel.uids if pairs is None else [u for _n, u in pairs]
    if pairs is None and sel.listing is not None:
        stored = sel.listing.flags  # the view is the node's listing still
    else:
        stored = list(map(_FLAGS_OF, map(sel.meta.__getitem__, uids)))
    distinct = set(stored)
    good = {flags for flags in distinct if _flag_match(key, flags)}
    recent = sel.recent if sel.show_recent else None
    numbered = enumerate(uids, 1) if pairs is None else iter(pairs)
    if not recent:
        if not good:
            return []
        if len(good) == len(distinct):
            return list(numbered)
        return list(itertools.compress(numbered, map(good.__contains__, stored)))
    return [
        pair
        for pair, flags in zip(numbered, stored, strict=True)
        if (_flag_match(key, flags | _RECENT) if pair[1] in recent else flags in good)
    ]


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


# Keys the index answers outright (the field it looks in), and those it
# narrows to the messages whose header lines hold the string.
_INDEX_EXACT = {"TEXT": "text", "BODY": "body"}
_INDEX_HEADER = frozenset({"SUBJECT", "HEADER"})
# What may stand between the parts of an address in its header line and not
# in its ENVELOPE form, or the other way round: white space (folding, the
# space between words), comments, quotes and quoted pairs, the dots of an
# obsolete local part or domain with white space around them, brackets.
_ADDRESS_SEPARATORS = re.compile(r'[\s@<>"\\().,\[\]:;]+')


def _address_pieces(needle: str) -> list[str]:
    """The runs of the needle that any header line an address key matches
    must hold as they are (the decoded line, as the index keeps it), long
    enough for the index to look up."""
    return sorted({p for p in _ADDRESS_SEPARATORS.split(needle) if len(p) >= MIN_NEEDLE})


async def _narrow(s: Session, ev: _Eval, key: SearchKey) -> set[int] | None:
    """The UIDs among which every match of ``key`` lies, from the store's
    full-text index (None: no narrowing); TEXT and BODY keys it answered
    are noted in ``ev.known``, so matching does not read their parse."""
    name = key.name
    mailbox_id = ev.sel.mailbox_id
    if name in _INDEX_EXACT:
        found = await s.store.search_text(mailbox_id, _INDEX_EXACT[name], str(key.args[0]))
        if found is not None:
            ev.known[id(key)] = found
        return found
    if name in _INDEX_HEADER:
        needle = str(key.args[-1])
        if not needle:
            return None  # HEADER with "": every message with the field
        return await s.store.search_text(mailbox_id, "header", needle)
    if name in _ADDRESS_KEYS:
        found = None
        for piece in _address_pieces(str(key.args[0])):
            holding = await s.store.search_text(mailbox_id, "header", piece)
            if holding is not None:
                found = holding if found is None else found & holding
        return found
    subkeys = [k for k in key.args if isinstance(k, SearchKey)]
    if name == "AND":
        found = None
        for sub in subkeys:
            narrowed = await _narrow(s, ev, sub)
            if narrowed is not None:
                found = narrowed if found is None else found & narrowed
        return found
    if name == "OR":
        union: set[int] = set()
        narrowable = True
        for sub in subkeys:
            narrowed = await _narrow(s, ev, sub)
            if narrowed is None:
                narrowable = False  # still look: the others may be known exactly
            elif narrowable:
                union |= narrowed
        return union if narrowable else None
    if name == "NOT":
        await _narrow(s, ev, subkeys[0])
    return None


async def evaluate(
    s: Session, key: SearchKey, uids: Sequence[int] | None = None
) -> list[tuple[int, int]]:
    """(msn, uid) of every message in the selected mailbox that matches, in
    mailbox order; only among ``uids`` when given."""
    sel = s.require_selected()
    if key.name == "ALL" and uids is None:
        return list(enumerate(sel.uids, 1))
    if uids is None and _flags_only(key):
        return _by_flag_sets(key, sel, None)
    ev = _Eval(sel, clock())
    narrowed = await _narrow(s, ev, key) if needs_parsed(key) else None
    if uids is None:
        if narrowed is None:
            pairs = list(enumerate(sel.uids, 1))
        elif len(narrowed) * 16 < len(sel.uids):
            # Few found: each looked up (a bisection), not the mailbox walked.
            pairs = [(n, u) for u in sorted(narrowed) if (n := sel.msn(u)) is not None]
        else:
            pairs = [(n, u) for n, u in enumerate(sel.uids, 1) if u in narrowed]
    else:
        pairs = sorted(
            (n, u)
            for u in uids
            if (narrowed is None or u in narrowed) and (n := sel.msn(u)) is not None
        )
    if uses_savedate(key):
        ev.savedates = await s.store.message_savedates(sel.mailbox_id, [u for _n, u in pairs])
    if id(key) in ev.known:
        return pairs  # the index's answer, exactly
    if _flags_only(key):
        return _by_flag_sets(key, sel, pairs)
    out: list[tuple[int, int]] = []
    if not ev.needs_parsed(key):
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


def check_charset(charset: str | None) -> None:
    if charset is not None and charset not in CHARSETS:
        raise ImapError("Unsupported charset", code="BADCHARSET (UTF-8 US-ASCII)")


_NO_KEYS = MessageKeys(None, "", False, "", "", "", "", "", None, ())


# Sort criteria read from the view alone, without the messages' sort keys.
_META_CRITERIA = frozenset({"ARRIVAL", "SIZE"})


async def entries(
    s: Session, found: Sequence[tuple[int, int]], *, uid: bool, keys_needed: bool = True
) -> list[Entry]:
    """The found (msn, uid) pairs with their sort keys (none read when not
    ``keys_needed``); ``Entry.number`` is the UID or the sequence number,
    as the answer needs."""
    sel = s.require_selected()
    keys: dict[int, MessageKeys] = {}
    if keys_needed:
        keys = await s.ctx.sort_keys.get_many(
            s.store, s.ctx.parsed, sel.mailbox_id, sel.uidvalidity, [u for _m, u in found]
        )
    out = []
    for msn, u in found:
        meta = sel.meta[u]
        out.append(
            Entry.of(u if uid else msn, msn, meta.internaldate, meta.size, keys.get(u, _NO_KEYS))
        )
    return out


async def sort_found(
    s: Session, found: Sequence[tuple[int, int]], criteria: Sequence[tuple[str, bool]]
) -> list[tuple[int, int]]:
    """The found (msn, uid) pairs in the order of the sort criteria.

    The order of the whole mailbox is kept per criteria until a message
    joins or leaves the view; the found messages are then picked from it in
    one pass (the order is total, so a subset keeps it). A search that found
    few messages of a big mailbox sorts just those.
    """
    sel = s.require_selected()
    criteria = tuple(criteria)
    order = sel.recall(("SORT", criteria), sel.generation)
    # ARRIVAL and SIZE alone read no message's keys (a first SORT (ARRIVAL)
    # of 100,000 messages would otherwise read them all).
    keys_needed = any(name not in _META_CRITERIA for name, _reverse in criteria)
    if order is None:
        if len(found) * 4 < len(sel.uids):
            few = await entries(s, found, uid=True, keys_needed=keys_needed)
            return [(e.msn, e.number) for e in sort_order(few, criteria)]
        everything = await entries(
            s, list(enumerate(sel.uids, 1)), uid=True, keys_needed=keys_needed
        )
        order = [e.number for e in sort_order(everything, criteria)]
        sel.remember(("SORT", criteria), sel.generation, order)
    assert isinstance(order, list)
    if len(found) != len(sel.uids):
        wanted = {u for _m, u in found}
        order = list(itertools.compress(order, map(wanted.__contains__, order)))
    position = dict(zip(sel.uids, itertools.count(1), strict=False))
    return list(zip(map(position.__getitem__, order), order, strict=True))
