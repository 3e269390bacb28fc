"""The parsed form of every IMAP command the server understands.

``Command.args`` holds one of the argument classes below; parser.py builds
them from the wire syntax of RFC 3501 §6 and the extension RFCs.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "AclIdentifier",
    "Append",
    "AppendMessage",
    "Authenticate",
    "CancelUpdate",
    "Command",
    "Compress",
    "Create",
    "Enable",
    "Expunge",
    "Fetch",
    "FetchItem",
    "GenUrlAuth",
    "GetMetadata",
    "GetQuota",
    "Id",
    "List",
    "Login",
    "MailboxArg",
    "NoArgs",
    "Notify",
    "NotifyGroup",
    "PartialRange",
    "SORT_KEYS",
    "URLFETCH_PARAMS",
    "Qresync",
    "Rename",
    "ResetKey",
    "Search",
    "SetAcl",
    "SetMetadata",
    "SearchKey",
    "Select",
    "SequenceSet",
    "Sort",
    "Status",
    "Store",
    "Thread",
    "Transfer",
    "UidBatches",
    "UrlFetch",
    "UrlFetchArg",
]


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """RFC 3501 §9 sequence-set; 0 in a range stands for '*' (the largest number).

    ``saved`` is RFC 5182's ``$``: the result the last SEARCH RETURN (SAVE)
    saved, which the selected mailbox resolves (it has no ranges).
    """

    ranges: tuple[tuple[int, int], ...]
    saved: bool = False

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Ranges with '*' replaced by ``largest`` and each range ordered low..high."""
        out = []
        for a, b in self.ranges:
            a = a or largest
            b = b or largest
            out.append((a, b) if a <= b else (b, a))
        return out

    def contains(self, n: int, largest: int) -> bool:
        return any(lo <= n <= hi for lo, hi in self.resolve(largest))

    def select(self, numbers: Iterable[int], largest: int) -> list[int]:
        """Those of ``numbers`` in the set, in time linear in both sizes plus
        a sort (a long set against a long list must not cost their product)."""
        ranges = sorted(self.resolve(largest))
        starts = [lo for lo, _hi in ranges]
        ends: list[int] = []
        reach = 0
        for _lo, hi in ranges:
            reach = max(reach, hi)
            ends.append(reach)
        out = []
        for n in numbers:
            i = bisect.bisect_right(starts, n) - 1
            if i >= 0 and ends[i] >= n:
                out.append(n)
        return out

    def to_text(self) -> str:
        if self.saved:
            return "$"

        def num(n: int) -> str:
            return str(n) if n else "*"

        return ",".join(num(a) if a == b else f"{num(a)}:{num(b)}" for a, b in self.ranges)


@dataclass(frozen=True, slots=True)
class NoArgs:
    pass


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    mechanism: str
    initial_response: bytes | None  # RFC 4959 SASL-IR, base64 as sent ("=" is empty)


@dataclass(frozen=True, slots=True)
class Qresync:
    """RFC 7162 §3.2.5 SELECT/EXAMINE (QRESYNC (...)) parameters."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None
    seq_match: tuple[SequenceSet, SequenceSet] | None


@dataclass(frozen=True, slots=True)
class Select:
    mailbox: str
    readonly: bool
    condstore: bool = False
    qresync: Qresync | None = None


@dataclass(frozen=True, slots=True)
class MailboxArg:
    mailbox: str


@dataclass(frozen=True, slots=True)
class GetQuota:
    """RFC 9208 §4.1.1 GETQUOTA: a quota root's name."""

    root: str


@dataclass(frozen=True, slots=True)
class Create:
    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class List:
    """LIST/LSUB, with RFC 5258 selection and return options and RFC 5819 STATUS."""

    reference: str
    patterns: tuple[str, ...]
    lsub: bool = False
    extended: bool = False
    selection: frozenset[str] = frozenset()
    returns: frozenset[str] = frozenset()
    status_items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Status:
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    flags: tuple[str, ...]
    internaldate: datetime | None
    data: bytes
    # RFC 4469 CATENATE: the parts in order, ("TEXT", octets) or ("URL", url);
    # ``data`` is then empty until the server joins them.
    catenate: tuple[tuple[str, bytes | str], ...] | None = None


@dataclass(frozen=True, slots=True)
class Append:
    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class SearchKey:
    """One search key: ``name`` upper-case as in RFC 3501 §6.4.4, ``args`` its values.

    Composite keys: ``AND`` (args: keys), ``OR`` (two keys), ``NOT`` (one key).
    Sets are ``SEQSET`` / ``UID`` with a SequenceSet argument.
    """

    name: str
    args: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class PartialRange:
    """RFC 9394 §4 partial-range: 1-based positions in a result list, from
    its start, or (both negative) from its end: -1 is the last."""

    first: int
    last: int

    def take(self, items: list[int]) -> list[int]:
        """The items the range names, in the list's order."""
        lo, hi = sorted((abs(self.first), abs(self.last)))
        if self.first > 0:
            return items[lo - 1 : hi]
        n = len(items)
        return items[max(n - hi, 0) : max(n - lo + 1, 0)]

    def to_text(self) -> str:
        """As a response gives it: the nearer end first (4:2 is 2:4, -3:-1
        is -1:-3), as Dovecot answers and imaptest's sort-partial expects."""
        lo, hi = sorted((abs(self.first), abs(self.last)))
        sign = "" if self.first > 0 else "-"
        return f"{sign}{lo}:{sign}{hi}"


@dataclass(frozen=True, slots=True)
class Search:
    charset: str | None
    key: SearchKey
    returns: tuple[str, ...] | None = None  # None: plain SEARCH; () or items: ESEARCH
    partial: PartialRange | None = None  # RFC 9394 RETURN (PARTIAL m:n)


# RFC 5256 §3 sort keys and RFC 5957 DISPLAYFROM, DISPLAYTO.
SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)


@dataclass(frozen=True, slots=True)
class Sort:
    """RFC 5256 SORT; ``returns`` as in Search (RFC 5267 ESORT)."""

    criteria: tuple[tuple[str, bool], ...]  # (sort key, REVERSE)
    charset: str
    key: SearchKey
    returns: tuple[str, ...] | None = None
    partial: PartialRange | None = None


@dataclass(frozen=True, slots=True)
class Thread:
    """RFC 5256 THREAD."""

    algorithm: str
    charset: str
    key: SearchKey


@dataclass(frozen=True, slots=True)
class CancelUpdate:
    """RFC 5267 §4.3.5 CANCELUPDATE: the tags of searches with UPDATE."""

    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Section:
    """RFC 3501 §6.4.5 section-spec."""

    part: tuple[int, ...] = ()
    text: str | None = None  # HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, MIME, TEXT
    fields: tuple[str, ...] = ()

    def to_text(self) -> str:
        parts = [".".join(map(str, self.part))] if self.part else []
        if self.text:
            parts.append(self.text)
        spec = ".".join(parts)
        if self.fields:
            spec += " (" + " ".join(self.fields) + ")"
        return spec


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One fetch attribute; ``section`` is set for BODY[...] and BINARY[...]."""

    name: str
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    changedsince: int | None = None
    vanished: bool = False
    partial: PartialRange | None = None  # RFC 9394 §3.3, UID FETCH only


@dataclass(frozen=True, slots=True)
class Store:
    sequence: SequenceSet
    mode: str  # "+", "-" or "" (replace)
    silent: bool
    flags: tuple[str, ...]
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    """COPY and MOVE."""

    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Expunge:
    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class SetAcl:
    """RFC 4314 §3.1 SETACL: ``rights`` as sent (``+``/``-`` prefix kept)."""

    mailbox: str
    identifier: str
    rights: str


@dataclass(frozen=True, slots=True)
class AclIdentifier:
    """RFC 4314 §3.2 DELETEACL and §3.4 LISTRIGHTS: a mailbox and an identifier."""

    mailbox: str
    identifier: str


@dataclass(frozen=True, slots=True)
class GetMetadata:
    """RFC 5464 §4.2 GETMETADATA: entry names lower-cased; ``mailbox`` ""
    is the server; ``depth`` 0, 1 or -1 (infinity)."""

    mailbox: str
    entries: tuple[str, ...]
    maxsize: int | None = None
    depth: int = 0


@dataclass(frozen=True, slots=True)
class SetMetadata:
    """RFC 5464 §4.3 SETMETADATA: (entry, value) pairs, None removes."""

    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UidBatches:
    """RFC 10022 UIDBATCHES: the batch size and the optional batch range
    (1-based batch numbers, ``first`` <= ``last``; None: every batch)."""

    size: int
    first: int | None = None
    last: int | None = None

    def ranges(self, uids: Sequence[int]) -> list[tuple[int, int]]:
        """Each batch asked for as (highest UID, lowest UID): the messages in
        descending UID order cut into ``size`` at a time, batch 1 the newest
        (RFC 10022); the last batch may be smaller. A batch range past
        the mailbox's batches names none."""
        # ``uids`` ascend (a mailbox's UIDs in sequence order): batch n
        # holds the n-th ``size`` from the end, read by index, not copied.
        total = len(uids)
        count = -(-total // self.size)
        first = self.first or 1
        last = min(self.last or count, count)
        return [
            (uids[total - 1 - (n - 1) * self.size], uids[max(total - n * self.size, 0)])
            for n in range(first, last + 1)
        ]


@dataclass(frozen=True, slots=True)
class Compress:
    """RFC 4978 §3 COMPRESS: the mechanism, upper case."""

    mechanism: str


@dataclass(frozen=True, slots=True)
class Id:
    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One RFC 5465 event group: which mailboxes, and the events asked for
    them (empty for NONE). ``filter`` is SELECTED, SELECTED-DELAYED,
    INBOXES, PERSONAL, SUBSCRIBED, SUBTREE or MAILBOXES; ``mailboxes`` the
    names SUBTREE and MAILBOXES take; ``fetch`` MessageNew's fetch-att."""

    filter: str
    mailboxes: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    fetch: tuple[FetchItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify:
    """NOTIFY SET [STATUS] groups, or NOTIFY NONE (no groups); ``unknown``:
    events named that the server does not know (NO [BADEVENT])."""

    groups: tuple[NotifyGroup, ...]
    status: bool = False
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    name: str  # upper case; "UID FETCH" etc. keep uid separate
    args: object = field(default_factory=NoArgs)
    uid: bool = False


@dataclass(frozen=True, slots=True)
class GenUrlAuth:
    """RFC 4467 §6.1: (url-rump, mechanism) pairs."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ResetKey:
    """RFC 4467 §6.2: RESETKEY [mailbox *(SP mechanism)]."""

    mailbox: str | None
    mechanisms: tuple[str, ...]


# RFC 5524 §3.1: what an extended URLFETCH may ask of a URL.
URLFETCH_PARAMS = frozenset({"BODYPARTSTRUCTURE", "BINARY", "BODY"})


@dataclass(frozen=True, slots=True)
class UrlFetchArg:
    """One URL of URLFETCH: ``params`` is None for a URL sent alone (RFC 4467
    §6.3), the parameters asked for one in parentheses (RFC 5524 §3.1)."""

    url: str
    params: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class UrlFetch:
    """RFC 4467 §6.3 and RFC 5524 §5: URLFETCH 1*(SP url-fetch-arg)."""

    args: tuple[UrlFetchArg, ...]
