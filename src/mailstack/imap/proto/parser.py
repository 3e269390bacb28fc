"""The command grammar: a framed command's bytes to a ``Command``.

RFC 3501 §6 and §9 for the base commands; RFC 4315 (UID EXPUNGE), 6851 (MOVE),
3691 (UNSELECT), 2971 (ID), 5161 (ENABLE), 4731 (ESEARCH), 5258/5819 (LIST
extensions), 6154 (CREATE-SPECIAL-USE), 7162 (CONDSTORE/QRESYNC), 3502
(MULTIAPPEND), 4959 (SASL-IR). Every syntax error is an ImapError with
``bad=True`` and the command's tag (RFC 3501 §7.1.5: BAD).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone

from mailstack.errors import ImapError
from mailstack.imap.proto import mutf7
from mailstack.imap.proto.commands import (
    SORT_KEYS,
    URLFETCH_PARAMS,
    AclIdentifier,
    Append,
    AppendMessage,
    Authenticate,
    CancelUpdate,
    Command,
    Compress,
    Create,
    Enable,
    Expunge,
    Fetch,
    FetchItem,
    GenUrlAuth,
    GetMetadata,
    GetQuota,
    Id,
    List,
    Login,
    MailboxArg,
    NoArgs,
    Notify,
    NotifyGroup,
    PartialRange,
    Qresync,
    Rename,
    ResetKey,
    Search,
    SearchKey,
    Section,
    Select,
    SequenceSet,
    SetAcl,
    SetMetadata,
    Sort,
    Status,
    Store,
    Thread,
    Transfer,
    UidBatches,
    UrlFetch,
    UrlFetchArg,
)
from mailstack.imap.proto.lexer import tag_of
from mailstack.imap.proto.tokens import Atom, Quoted, SectionAtom, Token, tokenize

__all__ = ["ParseError", "parse_command", "parse_section", "MONTHS"]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {m.upper(): i + 1 for i, m in enumerate(MONTHS)}
_SEQ_RANGE = re.compile(r"(\d+|\*)(?::(\d+|\*))?\Z")
_TAG_LINE = re.compile(rb"([^\x00-\x20(){%*\"\\+\x7f-\xff]+) ")
_DATE_TIME = re.compile(
    r"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z"
)


class ParseError(ImapError):
    """A syntax error in a command: BAD with the command's tag."""

    def __init__(self, tag: str, text: str, code: str | None = None) -> None:
        super().__init__(text, bad=True, code=code)
        self.tag = tag


class _Args:
    """A cursor over a command's argument tokens."""

    __slots__ = ("tokens", "i", "utf8")

    def __init__(self, tokens: list[Token], utf8: bool = False) -> None:
        self.tokens = tokens
        self.i = 0
        # Mailbox names in UTF-8, not modified UTF-7 (RFC 6855 §3, RFC 9051 §5.1).
        self.utf8 = utf8

    def name(self, text: str) -> str:
        """A mailbox name or pattern as sent, decoded from modified UTF-7
        unless the session took UTF-8 names: then it must be valid UTF-8,
        and is taken in Unicode normal form C (RFC 6855 §3, Net-Unicode)."""
        if not self.utf8:
            return mutf7.decode(text)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ImapError("Mailbox name is not UTF-8", bad=True) from None
        return unicodedata.normalize("NFC", text)

    def more(self) -> bool:
        return self.i < len(self.tokens)

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, what: str) -> Token:
        if self.i >= len(self.tokens):
            raise ImapError(f"Missing {what}", bad=True)
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def end(self) -> None:
        if self.i < len(self.tokens):
            raise ImapError("Unexpected extra arguments", bad=True)

    def atom(self, what: str) -> str:
        tok = self.take(what)
        if not isinstance(tok, Atom):
            raise ImapError(f"Expected {what}", bad=True)
        return str(tok)

    def astring(self, what: str) -> str:
        return astring(self.take(what), what)

    def nstring_or_astring(self, what: str) -> str | None:
        tok = self.take(what)
        if isinstance(tok, Atom) and tok.upper() == "NIL":
            return None
        return astring(tok, what)

    def number(self, what: str) -> int:
        return number(self.take(what), what)

    def list(self, what: str) -> list[Token]:
        tok = self.take(what)
        if not isinstance(tok, list):
            raise ImapError(f"Expected parenthesised {what}", bad=True)
        return tok

    def mailbox(self) -> str:
        return canonical_inbox(self.name(astring(self.take("mailbox"), "mailbox")))


def astring(tok: Token | None, what: str) -> str:
    if isinstance(tok, bytes):
        return tok.decode("utf-8", "surrogateescape")
    if isinstance(tok, Atom):
        return str(tok)
    if isinstance(tok, SectionAtom):
        return tok.raw
    raise ImapError(f"Expected {what}", bad=True)


def number(tok: Token | None, what: str, *, limit: int = 2**63 - 1) -> int:
    if not isinstance(tok, Atom) or not tok.isdigit() or not tok.isascii() or len(tok) > 20:
        raise ImapError(f"Expected number for {what}", bad=True)
    value = int(tok)
    if value > limit:
        raise ImapError(f"Number too large for {what}", bad=True)
    return value


def canonical_inbox(name: str) -> str:
    """RFC 3501 §5.1: INBOX is case-insensitive."""
    if name.upper() == "INBOX":
        return "INBOX"
    if name.upper().startswith("INBOX/"):
        return "INBOX" + name[5:]
    return name


def sequence_set(tok: Token | None) -> SequenceSet:
    """RFC 3501 §9 sequence-set; '*' becomes 0 (the resolver substitutes it)."""
    if not isinstance(tok, Atom):
        raise ImapError("Expected sequence set", bad=True)
    if tok == "$":
        return SequenceSet((), saved=True)  # RFC 5182 §2.1
    ranges = []
    for piece in tok.split(","):
        m = _SEQ_RANGE.match(piece)
        if m is None:
            raise ImapError("Bad sequence set", bad=True)
        a = 0 if m.group(1) == "*" else int(m.group(1))
        b = a if m.group(2) is None else (0 if m.group(2) == "*" else int(m.group(2)))
        # RFC 3501 §9: seq-number is nz-number or "*"; 0 is not a valid number.
        if (a == 0 and m.group(1) != "*") or (b == 0 and m.group(2) not in (None, "*")):
            raise ImapError("Sequence numbers start at 1", bad=True)
        if a > 0xFFFFFFFF or b > 0xFFFFFFFF:
            raise ImapError("Sequence number too large", bad=True)
        ranges.append((a, b))
    return SequenceSet(tuple(ranges))


def search_date(tok: Token | None) -> date:
    """RFC 3501 §9 date: d-Mon-yyyy, quoted or not."""
    text = astring(tok, "date")
    parts = text.split("-")
    if len(parts) != 3 or parts[1].upper() not in _MONTH_NUMBER:
        raise ImapError("Bad date", bad=True)
    try:
        return date(int(parts[2]), _MONTH_NUMBER[parts[1].upper()], int(parts[0]))
    except ValueError:
        raise ImapError("Bad date", bad=True) from None


def date_time(tok: Token | None) -> datetime:
    """RFC 3501 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz"."""
    if not isinstance(tok, bytes):
        raise ImapError("Bad date-time", bad=True)
    m = _DATE_TIME.match(tok.decode("ascii", "replace"))
    if m is None or m.group(2).upper() not in _MONTH_NUMBER:
        raise ImapError("Bad date-time", bad=True)
    offset = timedelta(hours=int(m.group(8)), minutes=int(m.group(9)))
    if m.group(7) == "-":
        offset = -offset
    try:
        return datetime(
            int(m.group(3)),
            _MONTH_NUMBER[m.group(2).upper()],
            int(m.group(1)),
            int(m.group(4)),
            int(m.group(5)),
            int(m.group(6)),
            tzinfo=timezone(offset),
        )
    except ValueError:
        raise ImapError("Bad date-time", bad=True) from None


MAX_FLAGS = 100


def flag_list(tokens: list[Token]) -> tuple[str, ...]:
    if len(tokens) > MAX_FLAGS:
        raise ImapError("Too many flags", bad=True)
    flags = []
    for tok in tokens:
        if not isinstance(tok, Atom) or not _is_flag(tok):
            raise ImapError("Bad flag", bad=True)
        flags.append(str(tok))
    return tuple(flags)


def _is_flag(tok: str) -> bool:
    body = tok[1:] if tok.startswith("\\") else tok
    return bool(body) and not any(c in '(){ %*"\\]' or ord(c) < 0x21 for c in body)


# --- per-command grammars -------------------------------------------------


def _no_args(a: _Args, uid: bool) -> NoArgs:
    a.end()
    return NoArgs()


def _login(a: _Args, uid: bool) -> Login:
    user = a.astring("user name")
    password = a.astring("password")
    a.end()
    return Login(user, password)


def _authenticate(a: _Args, uid: bool) -> Authenticate:
    mech = a.atom("mechanism").upper()
    initial = None
    if a.more():
        tok = a.take("initial response")
        if not isinstance(tok, Atom):
            raise ImapError("Bad initial response", bad=True)
        initial = str(tok).encode("ascii", "replace")
    a.end()
    return Authenticate(mech, initial)


def _select(readonly: bool) -> Callable[[_Args, bool], Select]:
    def parse(a: _Args, uid: bool) -> Select:
        mailbox = a.mailbox()
        condstore = False
        qresync = None
        if a.more():
            params = a.list("select parameters")
            i = 0
            while i < len(params):
                name = astring(params[i], "select parameter").upper()
                if name == "CONDSTORE":
                    condstore = True
                    i += 1
                elif name == "QRESYNC" and i + 1 < len(params):
                    qresync = _qresync(params[i + 1])
                    i += 2
                else:
                    raise ImapError("Unknown select parameter", bad=True)
        a.end()
        return Select(mailbox, readonly, condstore, qresync)

    return parse


def _qresync(tok: Token) -> Qresync:
    # RFC 7162 §3.2.5: (uidvalidity mod-sequence-value [known-uids [seq-match-data]])
    if not isinstance(tok, list) or len(tok) < 2 or len(tok) > 4:
        raise ImapError("Bad QRESYNC parameter", bad=True)
    uidvalidity = number(tok[0], "uidvalidity", limit=0xFFFFFFFF)
    modseq = number(tok[1], "modseq")
    if uidvalidity == 0 or modseq == 0:
        raise ImapError("Bad QRESYNC parameter", bad=True)
    known = None
    match = None
    rest = tok[2:]
    if rest and isinstance(rest[0], Atom):
        known = sequence_set(rest[0])
        rest = rest[1:]
    if rest:
        pair = rest[0]
        if not isinstance(pair, list) or len(pair) != 2:
            raise ImapError("Bad QRESYNC sequence match data", bad=True)
        match = (sequence_set(pair[0]), sequence_set(pair[1]))
    return Qresync(uidvalidity, modseq, known, match)


def _mailbox(a: _Args, uid: bool) -> MailboxArg:
    mailbox = a.mailbox()
    a.end()
    return MailboxArg(mailbox)


def _create(a: _Args, uid: bool) -> Create:
    mailbox = a.mailbox()
    uses: tuple[str, ...] = ()
    if a.more():
        # RFC 6154 §3: CREATE name (USE (\Drafts ...))
        params = a.list("create parameters")
        if len(params) != 2 or astring(params[0], "USE").upper() != "USE":
            raise ImapError("Unknown create parameter", bad=True)
        if not isinstance(params[1], list):
            raise ImapError("Bad USE list", bad=True)
        uses = flag_list(params[1])
    a.end()
    return Create(mailbox, uses)


def _rename(a: _Args, uid: bool) -> Rename:
    old = a.mailbox()
    new = a.mailbox()
    a.end()
    return Rename(old, new)


def _list_pattern(a: _Args, tok: Token | None) -> str:
    return a.name(astring(tok, "mailbox pattern"))


# RFC 5258 §6 CHILDREN and SUBSCRIBED, RFC 6154 §2 SPECIAL-USE, RFC 5819 STATUS,
# RFC 8440 MYRIGHTS.
_LIST_RETURNS = frozenset({"CHILDREN", "SUBSCRIBED", "SPECIAL-USE", "STATUS", "MYRIGHTS"})


def _list(a: _Args, uid: bool) -> List:
    selection: set[str] = set()
    extended = False
    if isinstance(a.peek(), list):
        # RFC 5258 §3: list-select-opts
        extended = True
        for tok in a.list("selection options"):
            selection.add(astring(tok, "selection option").upper())
    reference = a.name(a.astring("reference"))
    tok = a.take("mailbox pattern")
    if isinstance(tok, list):
        extended = True
        patterns = tuple(_list_pattern(a, t) for t in tok)
        if not patterns:
            raise ImapError("Empty pattern list", bad=True)
    else:
        patterns = (_list_pattern(a, tok),)
    returns: set[str] = set()
    status_items: tuple[str, ...] = ()
    if a.more():
        extended = True
        if a.atom("RETURN").upper() != "RETURN":
            raise ImapError("Expected RETURN", bad=True)
        opts = a.list("return options")
        i = 0
        while i < len(opts):
            opt = astring(opts[i], "return option").upper()
            following = opts[i + 1] if i + 1 < len(opts) else None
            if opt == "STATUS":
                # RFC 5819 §2: STATUS takes its parenthesised items.
                if not isinstance(following, list):
                    raise ImapError("Expected STATUS items", bad=True)
                status_items = _status_items(following)
                i += 1
            elif opt not in _LIST_RETURNS:
                raise ImapError("Unknown return option", bad=True)
            returns.add(opt)
            i += 1
    a.end()
    known_selection = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
    if selection - known_selection:
        raise ImapError("Unknown selection option", bad=True)
    if "RECURSIVEMATCH" in selection and not selection - {"RECURSIVEMATCH", "REMOTE"}:
        # RFC 5258 §3: RECURSIVEMATCH alone (or with only REMOTE) is a syntax error.
        raise ImapError("RECURSIVEMATCH needs another selection option", bad=True)
    return List(
        reference,
        patterns,
        extended=extended,
        selection=frozenset(selection),
        returns=frozenset(returns),
        status_items=status_items,
    )


def _lsub(a: _Args, uid: bool) -> List:
    reference = a.name(a.astring("reference"))
    pattern = _list_pattern(a, a.take("mailbox pattern"))
    a.end()
    return List(reference, (pattern,), lsub=True)


STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE",
     "DELETED", "DELETED-STORAGE",  # RFC 9208 §4.2
     "MAILBOXID"}  # RFC 8474 §4.2
)  # fmt: skip


def _status_items(tokens: list[Token]) -> tuple[str, ...]:
    items = []
    for tok in tokens:
        item = astring(tok, "status item").upper()
        if item not in STATUS_ITEMS:
            raise ImapError("Unknown status item", bad=True)
        items.append(item)
    if not items:
        raise ImapError("Empty status item list", bad=True)
    return tuple(items)


def _status(a: _Args, uid: bool) -> Status:
    mailbox = a.mailbox()
    items = _status_items(a.list("status items"))
    a.end()
    return Status(mailbox, items)


def _append(a: _Args, uid: bool) -> Append:
    mailbox = a.mailbox()
    messages = []
    while True:
        flags: tuple[str, ...] = ()
        when = None
        tok = a.take("message literal")
        if isinstance(tok, list):
            flags = flag_list(tok)
            tok = a.take("message literal")
        # RFC 3501 §9: date-time is always quoted; a literal is a message,
        # followed by the next message of a MULTIAPPEND (RFC 3502).
        if isinstance(tok, Quoted) and a.more():
            when = date_time(tok)
            tok = a.take("message literal")
        if _is_word(tok, "CATENATE"):
            parts = _catenate(a.list("CATENATE parts"), a.utf8)
            messages.append(AppendMessage(flags, when, b"", parts))
        else:
            utf8 = _is_word(tok, "UTF8")
            if utf8:
                if not a.utf8:
                    # RFC 6855 §4: only after ENABLE UTF8=ACCEPT.
                    raise ImapError("UTF8 needs ENABLE UTF8=ACCEPT", bad=True)
                tok = _utf8_literal(a.list("UTF8 literal"))
            if not isinstance(tok, bytes):
                raise ImapError("Expected message literal", bad=True)
            messages.append(AppendMessage(flags, when, tok))
        # RFC 3502: further messages follow, each with its own flags and date.
        if not a.more():
            break
    return Append(mailbox, tuple(messages))


def _utf8_literal(tokens: list[Token]) -> bytes:
    """RFC 6855 §4: "UTF8" SP "(" literal8 ")" (a message with UTF-8 headers)."""
    if len(tokens) != 1 or not isinstance(tokens[0], bytes) or isinstance(tokens[0], Quoted):
        raise ImapError("UTF8 takes one literal", bad=True)
    return tokens[0]


MAX_CATENATE_PARTS = 100


def _catenate(tokens: list[Token], utf8: bool) -> tuple[tuple[str, bytes | str], ...]:
    """RFC 4469 §5: "CATENATE" SP "(" cat-part *(SP cat-part) ")", cat-part
    TEXT literal or URL astring; RFC 6855 §4 adds UTF8 (literal8)."""
    parts: list[tuple[str, bytes | str]] = []
    i = 0
    while i < len(tokens):
        kind = astring(tokens[i], "CATENATE part").upper()
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        if kind == "TEXT" and isinstance(value, bytes) and not isinstance(value, Quoted):
            parts.append(("TEXT", value))
        elif kind == "UTF8" and isinstance(value, list) and utf8:
            parts.append(("TEXT", _utf8_literal(value)))
        elif kind == "URL" and value is not None and not isinstance(value, list):
            parts.append(("URL", astring(value, "URL")))
        else:
            raise ImapError("Bad CATENATE part", bad=True)
        i += 2
    if not parts or len(parts) > MAX_CATENATE_PARTS:
        raise ImapError("Bad CATENATE part list", bad=True)
    return tuple(parts)


def parse_section(text: str) -> FetchItem:
    """A section-spec as IMAP URLs carry it (RFC 5092 §5 ;SECTION=), read as
    BODY[text]; ImapError when it is not one."""
    try:
        tokens = tokenize(f"BODY[{text}]\r\n".encode(), 0, max_depth=4)
    except ImapError:
        raise ImapError("Bad section", bad=True) from None
    if len(tokens) != 1 or not isinstance(tokens[0], SectionAtom):
        raise ImapError("Bad section", bad=True)
    return _section(tokens[0])


_SIMPLE_KEYS = frozenset(
    {
        "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT",
        "SEEN", "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN",
        "SAVEDATESUPPORTED",
    }
)  # fmt: skip
_STRING_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
_DATE_KEYS = frozenset(
    {"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE",
     "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE"}  # RFC 8514 §4.3
)  # fmt: skip
_NUMBER_KEYS = frozenset({"LARGER", "SMALLER"})
# RFC 5032 §4: OLDER / YOUNGER take an interval in seconds, an nz-number.
_INTERVAL_KEYS = frozenset({"OLDER", "YOUNGER"})


MAX_SEARCH_KEYS = 1000
_OBJECTID = re.compile(r"[A-Za-z0-9_-]{1,255}\Z")


def _search_key(a: _Args, depth: int, budget: list[int]) -> SearchKey:
    if depth > 64:
        raise ImapError("Search too deeply nested", bad=True)
    # Every key is evaluated against every message: bound how many there are.
    budget[0] -= 1
    if budget[0] < 0:
        raise ImapError("Too many search keys", bad=True)
    tok = a.take("search key")
    if isinstance(tok, list):
        sub = _Args(tok)
        keys = [_search_key(sub, depth + 1, budget) for _ in iter(sub.more, False)]
        if not keys:
            raise ImapError("Empty search list", bad=True)
        return keys[0] if len(keys) == 1 else SearchKey("AND", tuple(keys))
    if not isinstance(tok, Atom):
        raise ImapError("Expected search key", bad=True)
    name = tok.upper()
    if name in _SIMPLE_KEYS:
        return SearchKey(name)
    if name in _STRING_KEYS:
        return SearchKey(name, (a.astring("search string"),))
    if name in _DATE_KEYS:
        return SearchKey(name, (search_date(a.take("date")),))
    if name in _NUMBER_KEYS:
        return SearchKey(name, (a.number("size"),))
    if name in _INTERVAL_KEYS:
        interval = number(a.take("interval"), "interval", limit=2**32 - 1)
        if not interval:
            raise ImapError("The interval must be at least one second", bad=True)
        return SearchKey(name, (interval,))
    if name in ("KEYWORD", "UNKEYWORD"):
        flag = a.atom("keyword")
        if not _is_flag(flag) or flag.startswith("\\"):
            raise ImapError("Bad keyword", bad=True)
        return SearchKey(name, (flag,))
    if name == "HEADER":
        return SearchKey(name, (a.astring("header name"), a.astring("search string")))
    if name in ("EMAILID", "THREADID"):
        # RFC 8474 §6: objectid = 1*255(ALPHA / DIGIT / "_" / "-")
        objectid = a.atom("object id")
        if not _OBJECTID.match(objectid):
            raise ImapError("Bad object id", bad=True)
        return SearchKey(name, (objectid,))
    if name == "UID":
        return SearchKey("UID", (sequence_set(a.take("UID set")),))
    if name == "NOT":
        return SearchKey("NOT", (_search_key(a, depth + 1, budget),))
    if name == "OR":
        first = _search_key(a, depth + 1, budget)
        return SearchKey("OR", (first, _search_key(a, depth + 1, budget)))
    if name == "MODSEQ":
        # RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer
        if isinstance(a.peek(), bytes):
            a.take("entry name")
            a.atom("entry type")
        return SearchKey("MODSEQ", (a.number("modseq"),))
    if name[:1].isdigit() or name[:1] in ("*", "$"):
        return SearchKey("SEQSET", (sequence_set(tok),))
    raise ImapError("Unknown search key", bad=True)


def _is_word(tok: Token | None, word: str) -> bool:
    return isinstance(tok, Atom) and tok.upper() == word


_PARTIAL_RANGE = re.compile(r"(-?)([1-9]\d{0,9}):(-?)([1-9]\d{0,9})\Z")


def partial_range(tok: Token | None) -> PartialRange:
    """RFC 9394 §4: nz-number ":" nz-number, or both negated (from the end)."""
    m = _PARTIAL_RANGE.match(tok) if isinstance(tok, Atom) else None
    if m is None or m.group(1) != m.group(3):
        raise ImapError("Bad partial range", bad=True)
    first, last = int(m.group(2)), int(m.group(4))
    if max(first, last) > 0xFFFFFFFF:
        raise ImapError("Bad partial range", bad=True)
    sign = -1 if m.group(1) else 1
    return PartialRange(sign * first, sign * last)


# RFC 4731 §3.1 (MIN MAX ALL COUNT), RFC 5182 SAVE, RFC 5267 §4 (UPDATE
# CONTEXT, and PARTIAL as RFC 9394 revised it).
_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE", "UPDATE", "CONTEXT"})


def _return_options(a: _Args) -> tuple[tuple[str, ...], PartialRange | None]:
    a.take("RETURN")
    opts: list[str] = []
    partial = None
    tokens = a.list("return options")
    i = 0
    while i < len(tokens):
        opt = astring(tokens[i], "return option").upper()
        i += 1
        if opt == "PARTIAL":
            if i >= len(tokens):
                raise ImapError("PARTIAL needs a range", bad=True)
            partial = partial_range(tokens[i])
            i += 1
        elif opt not in _RETURN_OPTIONS:
            raise ImapError("Unknown search return option", bad=True)
        if opt in opts:
            raise ImapError("Repeated search return option", bad=True)
        opts.append(opt)
    if "PARTIAL" in opts and "ALL" in opts:
        # RFC 9394 §3.1: one PARTIAL, one ALL, or neither.
        raise ImapError("PARTIAL and ALL cannot both be asked for", bad=True)
    return tuple(opts), partial


def _search_program(a: _Args) -> SearchKey:
    budget = [MAX_SEARCH_KEYS]
    keys = [_search_key(a, 0, budget)]
    while a.more():
        keys.append(_search_key(a, 0, budget))
    return keys[0] if len(keys) == 1 else SearchKey("AND", tuple(keys))


def _search(a: _Args, uid: bool) -> Search:
    returns: tuple[str, ...] | None = None
    partial = None
    charset = None
    if _is_word(a.peek(), "RETURN"):
        returns, partial = _return_options(a)
    if _is_word(a.peek(), "CHARSET"):
        a.take("CHARSET")
        charset = a.astring("charset").upper()
    return Search(charset, _search_program(a), returns, partial)


def _sort(a: _Args, uid: bool) -> Sort:
    # RFC 5256 §5 and RFC 5267 §5: SORT [RETURN (...)] (criteria) charset keys
    returns: tuple[str, ...] | None = None
    partial = None
    if _is_word(a.peek(), "RETURN"):
        returns, partial = _return_options(a)
    tokens = a.list("sort criteria")
    criteria: list[tuple[str, bool]] = []
    reverse = False
    for tok in tokens:
        word = astring(tok, "sort criterion").upper()
        if word == "REVERSE" and not reverse:
            reverse = True
            continue
        if word not in SORT_KEYS:
            raise ImapError("Unknown sort criterion", bad=True)
        criteria.append((word, reverse))
        reverse = False
    if reverse or not criteria:
        raise ImapError("Bad sort criteria", bad=True)
    charset = a.astring("charset").upper()
    if returns is None and _is_word(a.peek(), "RETURN"):
        # Dovecot also takes the options after the charset, where SEARCH
        # keys begin (imaptest's sort-partial writes them there).
        returns, partial = _return_options(a)
    return Sort(tuple(criteria), charset, _search_program(a), returns, partial)


def _thread(a: _Args, uid: bool) -> Thread:
    algorithm = a.atom("thread algorithm").upper()
    charset = a.astring("charset").upper()
    return Thread(algorithm, charset, _search_program(a))


def _cancelupdate(a: _Args, uid: bool) -> CancelUpdate:
    # RFC 5267 §5: "CANCELUPDATE" 1*(SP quoted)
    tags = []
    while a.more():
        tok = a.take("tag")
        if not isinstance(tok, bytes):
            raise ImapError("Expected a quoted tag", bad=True)
        tags.append(tok.decode("utf-8", "surrogateescape"))
    if not tags:
        raise ImapError("CANCELUPDATE needs a tag", bad=True)
    return CancelUpdate(tuple(tags))


_FETCH_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_FETCH_ATTS = frozenset(
    {
        "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
        "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ", "PREVIEW", "EMAILID",
        "THREADID", "SAVEDATE",
    }
)  # fmt: skip
MAX_FETCH_ITEMS = 100
_SECTION_TEXT = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "MIME", "TEXT"})


def _section(tok: SectionAtom) -> FetchItem:
    name = tok.name.upper()
    peek = name.endswith(".PEEK")
    base = name[:-5] if peek else name
    if base not in ("BODY", "BINARY", "BINARY.SIZE"):
        raise ImapError("Unknown fetch attribute", bad=True)
    inner = tok.inner
    if not inner:
        spec = Section()
    else:
        head = inner[0]
        if not isinstance(head, Atom):
            raise ImapError("Bad section", bad=True)
        pieces = head.upper().split(".")
        part: list[int] = []
        while pieces and pieces[0].isdigit():
            n = int(pieces.pop(0))
            if n == 0:
                raise ImapError("Section parts start at 1", bad=True)
            part.append(n)
        text = ".".join(pieces) or None
        if text is not None and text not in _SECTION_TEXT:
            raise ImapError("Bad section", bad=True)
        if text == "MIME" and not part:
            raise ImapError("MIME needs a part number", bad=True)
        fields: tuple[str, ...] = ()
        if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            if len(inner) != 2 or not isinstance(inner[1], list) or not inner[1]:
                raise ImapError("Bad header field list", bad=True)
            fields = tuple(astring(t, "header field") for t in inner[1])
        elif len(inner) != 1:
            raise ImapError("Bad section", bad=True)
        spec = Section(tuple(part), text, fields)
    partial = None
    if tok.partial is not None:
        if base == "BINARY.SIZE":
            raise ImapError("BINARY.SIZE takes no partial", bad=True)
        m = re.fullmatch(r"(\d{1,10})\.(\d{1,10})", tok.partial)
        if m is None or int(m.group(2)) == 0:
            raise ImapError("Bad partial", bad=True)
        partial = (int(m.group(1)), int(m.group(2)))
    if not tok.raw.endswith(">" if partial else "]"):
        raise ImapError("Bad fetch attribute", bad=True)
    return FetchItem(base, spec, peek, partial)


def _fetch_att(tok: Token) -> FetchItem:
    if isinstance(tok, SectionAtom):
        return _section(tok)
    if not isinstance(tok, Atom):
        raise ImapError("Bad fetch attribute", bad=True)
    name = tok.upper()
    if name not in _FETCH_ATTS:
        raise ImapError("Unknown fetch attribute", bad=True)
    return FetchItem(name)


def _preview_modifiers(tokens: list[Token]) -> list[Token]:
    """The attributes without PREVIEW's modifier list: RFC 8970 §3 allows
    ``PREVIEW (LAZY)``, and every preview is at hand (made from the stored
    parse), so LAZY changes nothing."""
    out: list[Token] = []
    for tok in tokens:
        if isinstance(tok, list) and out and _is_word(out[-1], "PREVIEW"):
            if not tok or any(not _is_word(m, "LAZY") for m in tok):
                raise ImapError("Unknown PREVIEW modifier", bad=True)
            continue
        out.append(tok)
    return out


def _fetch(a: _Args, uid: bool) -> Fetch:
    seq = sequence_set(a.take("sequence set"))
    tok = a.take("fetch attributes")
    if isinstance(tok, list):
        if not tok:
            raise ImapError("Empty fetch attribute list", bad=True)
        if len(tok) > MAX_FETCH_ITEMS:
            raise ImapError("Too many fetch attributes", bad=True)
        # A repeated attribute is answered once (each costs work per message).
        items = tuple(dict.fromkeys(_fetch_att(t) for t in _preview_modifiers(tok)))
    elif isinstance(tok, Atom) and tok.upper() in _FETCH_MACROS:
        items = tuple(FetchItem(n) for n in _FETCH_MACROS[tok.upper()])
    else:
        items = (_fetch_att(tok),)
        # RFC 8970 §3: "FETCH n PREVIEW (LAZY)", told from CHANGEDSINCE's list.
        lazy = a.peek()
        if _is_word(tok, "PREVIEW") and isinstance(lazy, list) and lazy:
            if _is_word(lazy[0], "LAZY"):
                _preview_modifiers([tok, a.take("PREVIEW modifiers")])
    changedsince = None
    vanished = False
    partial = None
    if a.more():
        # RFC 7162 §3.1.4 and §3.2.6: (CHANGEDSINCE n [VANISHED])
        mods = a.list("fetch modifiers")
        i = 0
        while i < len(mods):
            mod = astring(mods[i], "fetch modifier").upper()
            if mod == "CHANGEDSINCE" and i + 1 < len(mods):
                changedsince = number(mods[i + 1], "CHANGEDSINCE")
                i += 2
            elif mod == "VANISHED":
                vanished = True
                i += 1
            elif mod == "PARTIAL" and i + 1 < len(mods) and partial is None:
                # RFC 9394 §3.3: UID FETCH ... (PARTIAL range)
                if not uid:
                    raise ImapError("PARTIAL is for UID FETCH", bad=True)
                partial = partial_range(mods[i + 1])
                i += 2
            else:
                raise ImapError("Unknown fetch modifier", bad=True)
        if vanished and (not uid or changedsince is None):
            raise ImapError("VANISHED needs UID FETCH with CHANGEDSINCE", bad=True)
    a.end()
    return Fetch(seq, items, changedsince, vanished, partial)


def _store(a: _Args, uid: bool) -> Store:
    seq = sequence_set(a.take("sequence set"))
    unchangedsince = None
    if isinstance(a.peek(), list):
        mods = a.list("store modifiers")
        if len(mods) != 2 or astring(mods[0], "modifier").upper() != "UNCHANGEDSINCE":
            raise ImapError("Unknown store modifier", bad=True)
        unchangedsince = number(mods[1], "UNCHANGEDSINCE")
    item = a.atom("store item").upper()
    mode = item[0] if item[:1] in ("+", "-") else ""
    item = item[len(mode) :]
    silent = item.endswith(".SILENT")
    if silent:
        item = item[:-7]
    if item != "FLAGS":
        raise ImapError("Bad store item", bad=True)
    if isinstance(a.peek(), list):
        flags = flag_list(a.list("flags"))
    else:
        flags = flag_list(a.tokens[a.i :])
        a.i = len(a.tokens)
    a.end()
    return Store(seq, mode, silent, flags, unchangedsince)


def _transfer(a: _Args, uid: bool) -> Transfer:
    seq = sequence_set(a.take("sequence set"))
    mailbox = a.mailbox()
    a.end()
    return Transfer(seq, mailbox)


def _expunge(a: _Args, uid: bool) -> Expunge:
    if uid:
        seq = sequence_set(a.take("UID set"))
        a.end()
        return Expunge(seq)
    a.end()
    return Expunge()


def _enable(a: _Args, uid: bool) -> Enable:
    caps = []
    while a.more():
        caps.append(a.atom("capability").upper())
    if not caps:
        raise ImapError("ENABLE needs a capability", bad=True)
    return Enable(tuple(caps))


# RFC 5465 §8: the events, as the RFC spells them (they are matched in any case).
NOTIFY_EVENTS = {
    e.upper(): e
    for e in (
        "MessageNew",
        "MessageExpunge",
        "FlagChange",
        "AnnotationChange",
        "MailboxName",
        "SubscriptionChange",
        "MailboxMetadataChange",
        "ServerMetadataChange",
    )
}
MESSAGE_EVENTS = frozenset({"MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange"})
_NOTIFY_FILTERS = frozenset(
    {"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE", "MAILBOXES"}
)
# A NOTIFY names at most this many mailboxes in all (each is matched per change).
MAX_NOTIFY_MAILBOXES = 1000


def _notify(a: _Args, uid: bool) -> Notify:
    """RFC 5465 §8: ``NOTIFY NONE`` / ``NOTIFY SET [STATUS] event-group...``."""
    verb = a.atom("SET or NONE").upper()
    if verb == "NONE":
        a.end()
        return Notify(())
    if verb != "SET":
        raise ImapError("Expected SET or NONE", bad=True)
    status = _is_word(a.peek(), "STATUS")
    if status:
        a.take("STATUS")
    groups: list[NotifyGroup] = []
    unknown: list[str] = []
    names = 0
    while a.more():
        group = _notify_group(a.list("event group"), a, unknown)
        names += len(group.mailboxes)
        if names > MAX_NOTIFY_MAILBOXES:
            raise ImapError("Too many mailboxes in NOTIFY", bad=True)
        groups.append(group)
    if not groups:
        raise ImapError("NOTIFY SET needs an event group", bad=True)
    if sum(g.filter.startswith("SELECTED") for g in groups) > 1:
        raise ImapError("SELECTED named twice", bad=True)
    return Notify(tuple(groups), status, tuple(dict.fromkeys(unknown)))


def _notify_group(tokens: list[Token], a: _Args, unknown: list[str]) -> NotifyGroup:
    if not tokens or not isinstance(tokens[0], Atom) or tokens[0].upper() not in _NOTIFY_FILTERS:
        raise ImapError("Bad mailbox filter", bad=True)
    kind = tokens[0].upper()
    rest = tokens[1:]
    mailboxes: tuple[str, ...] = ()
    if kind in ("SUBTREE", "MAILBOXES"):
        if not rest:
            raise ImapError("Missing mailboxes", bad=True)
        one_or_more = rest[0] if isinstance(rest[0], list) else [rest[0]]
        if not one_or_more:
            raise ImapError("Missing mailboxes", bad=True)
        mailboxes = tuple(canonical_inbox(a.name(astring(t, "mailbox"))) for t in one_or_more)
        rest = rest[1:]
    if len(rest) != 1:
        raise ImapError("Expected the events of an event group", bad=True)
    if _is_word(rest[0], "NONE"):
        return NotifyGroup(kind, mailboxes)
    if not isinstance(rest[0], list) or not rest[0]:
        raise ImapError("Expected a list of events", bad=True)
    events: list[str] = []
    fetch: tuple[FetchItem, ...] = ()
    listed = rest[0]
    i = 0
    while i < len(listed):
        tok = listed[i]
        i += 1
        if not isinstance(tok, Atom):
            raise ImapError("Bad event", bad=True)
        event = NOTIFY_EVENTS.get(tok.upper())
        if event is None:
            unknown.append(str(tok))
            continue
        if event in events:
            raise ImapError("Event named twice", bad=True)
        events.append(event)
        atts = listed[i] if i < len(listed) else None
        if event == "MessageNew" and isinstance(atts, list):
            i += 1
            if not atts or len(atts) > MAX_FETCH_ITEMS:
                raise ImapError("Bad MessageNew fetch attributes", bad=True)
            fetch = tuple(dict.fromkeys(_fetch_att(t) for t in atts))
            if any(item.name in ("RFC822", "RFC822.TEXT") for item in fetch):
                # A notification must not change the message (\Seen): the
                # BODY.PEEK forms say the same without.
                raise ImapError("MessageNew takes BODY.PEEK, not RFC822", bad=True)
    if kind.startswith("SELECTED") and not set(events) <= MESSAGE_EVENTS:
        # RFC 5465 §6.1: the selected mailbox takes message events only.
        raise ImapError("Only message events apply to the selected mailbox", bad=True)
    has = set(events)
    if ("MessageNew" in has) != ("MessageExpunge" in has) or (
        has & {"FlagChange", "AnnotationChange"} and "MessageNew" not in has
    ):
        # RFC 5465 §5: MessageNew and MessageExpunge come together, and
        # FlagChange or AnnotationChange only with them.
        raise ImapError("MessageNew and MessageExpunge go together", bad=True)
    return NotifyGroup(kind, mailboxes, tuple(events), fetch)


def _id(a: _Args, uid: bool) -> Id:
    tok = a.take("ID parameters")
    a.end()
    if isinstance(tok, Atom) and tok.upper() == "NIL":
        return Id(None)
    if not isinstance(tok, list) or len(tok) % 2 or len(tok) > 60:
        raise ImapError("Bad ID parameters", bad=True)
    params = []
    for i in range(0, len(tok), 2):
        key = astring(tok[i], "ID field")
        value_tok = tok[i + 1]
        value = (
            None
            if isinstance(value_tok, Atom) and value_tok.upper() == "NIL"
            else (astring(value_tok, "ID value"))
        )
        params.append((key, value))
    return Id(tuple(params))


def _compress(a: _Args, uid: bool) -> Compress:
    mechanism = a.atom("compression mechanism").upper()
    a.end()
    return Compress(mechanism)


_BATCH_RANGE = re.compile(r"([1-9]\d{0,9}):([1-9]\d{0,9})\Z")


def _uidbatches(a: _Args, uid: bool) -> UidBatches:
    # RFC 10022 formal syntax: "UIDBATCHES" SP nz-number [SP nz-number ":" nz-number],
    # the batch size then the range of batches wanted.
    size = number(a.take("batch size"), "batch size", limit=0xFFFFFFFF)
    if size == 0:
        raise ImapError("The batch size is a non-zero number", bad=True)
    if not a.more():
        return UidBatches(size)
    tok = a.take("batch range")
    m = _BATCH_RANGE.match(tok) if isinstance(tok, Atom) else None
    if m is None:
        raise ImapError("Bad batch range", bad=True)
    first, last = int(m.group(1)), int(m.group(2))
    if max(first, last) > 0xFFFFFFFF:
        raise ImapError("Bad batch range", bad=True)
    if first > last:
        # RFC 10022: a range whose start is past its end is invalid (BAD).
        raise ImapError("The batch range must not be reversed", bad=True)
    a.end()
    return UidBatches(size, first, last)


def _getquota(a: _Args, uid: bool) -> GetQuota:
    root = a.astring("quota root")
    a.end()
    return GetQuota(root)


def _setacl(a: _Args, uid: bool) -> SetAcl:
    # RFC 4314 §7: "SETACL" SP mailbox SP identifier SP mod-rights
    mailbox = a.mailbox()
    identifier = a.astring("identifier")
    rights = a.astring("rights")
    a.end()
    return SetAcl(mailbox, identifier, rights)


def _acl_identifier(a: _Args, uid: bool) -> AclIdentifier:
    mailbox = a.mailbox()
    identifier = a.astring("identifier")
    a.end()
    return AclIdentifier(mailbox, identifier)


# URLs one GENURLAUTH or URLFETCH may carry.
MAX_URLS = 100


def _genurlauth(a: _Args, uid: bool) -> GenUrlAuth:
    # RFC 4467 §9: "GENURLAUTH" 1*(SP url-rump SP mechanism)
    pairs = []
    while a.more():
        rump = a.astring("URL rump")
        pairs.append((rump, a.atom("URLAUTH mechanism").upper()))
    if not pairs or len(pairs) > MAX_URLS:
        raise ImapError("GENURLAUTH needs 1 to 100 URLs", bad=True)
    return GenUrlAuth(tuple(pairs))


def _resetkey(a: _Args, uid: bool) -> ResetKey:
    # RFC 4467 §9: "RESETKEY" [SP mailbox *(SP mechanism)]
    if not a.more():
        return ResetKey(None, ())
    mailbox = a.mailbox()
    mechanisms = []
    while a.more():
        mechanisms.append(a.atom("URLAUTH mechanism").upper())
    return ResetKey(mailbox, tuple(mechanisms))


def _urlfetch(a: _Args, uid: bool) -> UrlFetch:
    # RFC 5524 §5: "URLFETCH" 1*(SP url-fetch-arg), where
    #   url-fetch-arg = url-full / "(" url-full *(SP url-fetch-param) ")"
    found = []
    while a.more():
        tok = a.take("URL")
        if isinstance(tok, list):
            found.append(_url_fetch_ext(tok))
        else:
            found.append(UrlFetchArg(astring(tok, "URL")))
    if not found or len(found) > MAX_URLS:
        raise ImapError("URLFETCH needs 1 to 100 URLs", bad=True)
    return UrlFetch(tuple(found))


def _url_fetch_ext(tokens: list[Token]) -> UrlFetchArg:
    """RFC 5524 §5: url-fetch-param = "BODY" / "BINARY" / "BODYPARTSTRUCTURE"
    / atom; an atom this server does not know is refused, as an unknown FETCH
    item is."""
    if not tokens:
        raise ImapError("Missing URL", bad=True)
    url = astring(tokens[0], "URL")
    params: set[str] = set()
    for tok in tokens[1:]:
        if not isinstance(tok, Atom) or tok.upper() not in URLFETCH_PARAMS:
            raise ImapError("Unknown URLFETCH parameter", bad=True)
        name = tok.upper()
        # RFC 5524 §3.1: "Metadata items MUST NOT appear more than once per
        # URL requested, and clients MUST NOT request both BINARY and BODY."
        if name in params:
            raise ImapError("URLFETCH parameter given twice", bad=True)
        params.add(name)
    if {"BINARY", "BODY"} <= params:
        raise ImapError("URLFETCH takes BINARY or BODY, not both", bad=True)
    return UrlFetchArg(url, frozenset(params))


# RFC 5464 §3.2: entry names are slash-separated, without "*", "%", control
# characters, "//" or a final "/", under /private/ or /shared/.
_ENTRY = re.compile(r"/(private|shared)(/[\x21-\x7e]+)?\Z")
_DEPTHS = {"0": 0, "1": 1, "INFINITY": -1}


def metadata_entry(tok: Token | None, *, root_ok: bool = False) -> str:
    """An entry name, lower-cased (RFC 5464 §3.2: names are case-insensitive);
    ``root_ok``: "/private" or "/shared" alone (GETMETADATA with DEPTH)."""
    name = astring(tok, "entry name").lower()
    m = _ENTRY.match(name)
    if (
        m is None
        or (m.group(2) is None and not root_ok)
        or "*" in name
        or "%" in name
        or "//" in name
        or name.endswith("/")
    ):
        raise ImapError("Invalid entry name", bad=True)
    return name


def _getmetadata(a: _Args, uid: bool) -> GetMetadata:
    # RFC 5464 §4.2: "GETMETADATA" [SP options] SP mailbox SP entries; the
    # RFC's own examples put the options after the mailbox, so both go.
    options: list[Token] = []
    if isinstance(a.peek(), list):
        options = a.list("options")
    mailbox = a.mailbox()
    after = a.peek()
    if not options and isinstance(after, list) and after and (
        _is_word(after[0], "MAXSIZE") or _is_word(after[0], "DEPTH")
    ):
        options = a.list("options")
    tok = a.take("entries")
    a.end()
    entries = tok if isinstance(tok, list) else [tok]
    if not entries:
        raise ImapError("Missing entry names", bad=True)
    names = tuple(dict.fromkeys(metadata_entry(e, root_ok=True) for e in entries))
    maxsize: int | None = None
    depth: int | None = None
    for i in range(0, len(options), 2):
        key = options[i]
        value = options[i + 1] if i + 1 < len(options) else None
        if _is_word(key, "MAXSIZE") and maxsize is None:
            maxsize = number(value, "MAXSIZE", limit=2**32 - 1)
        elif _is_word(key, "DEPTH") and depth is None and isinstance(value, Atom):
            if value.upper() not in _DEPTHS:
                raise ImapError("DEPTH is 0, 1 or infinity", bad=True)
            depth = _DEPTHS[value.upper()]
        else:
            raise ImapError("Bad GETMETADATA option", bad=True)
    return GetMetadata(mailbox, names, maxsize, depth or 0)


def _setmetadata(a: _Args, uid: bool) -> SetMetadata:
    # RFC 5464 §4.3: "SETMETADATA" SP mailbox SP "(" entry SP value ... ")",
    # value = nstring / literal8.
    mailbox = a.mailbox()
    pairs = a.list("entry values")
    a.end()
    if not pairs or len(pairs) % 2:
        raise ImapError("Entries and values go in pairs", bad=True)
    entries: dict[str, bytes | None] = {}
    for i in range(0, len(pairs), 2):
        name = metadata_entry(pairs[i])
        value = pairs[i + 1]
        if _is_word(value, "NIL"):
            entries[name] = None
        elif isinstance(value, bytes):
            entries[name] = bytes(value)
        else:
            raise ImapError("An entry's value is a string, a literal or NIL", bad=True)
    return SetMetadata(mailbox, tuple(entries.items()))


_GRAMMAR: dict[str, Callable[[_Args, bool], object]] = {
    "CAPABILITY": _no_args,
    "NOOP": _no_args,
    "LOGOUT": _no_args,
    "STARTTLS": _no_args,
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "SELECT": _select(False),
    "EXAMINE": _select(True),
    "CREATE": _create,
    "DELETE": _mailbox,
    "RENAME": _rename,
    "SUBSCRIBE": _mailbox,
    "UNSUBSCRIBE": _mailbox,
    "LIST": _list,
    "LSUB": _lsub,
    "STATUS": _status,
    "APPEND": _append,
    "CHECK": _no_args,
    "CLOSE": _no_args,
    "UNSELECT": _no_args,
    "EXPUNGE": _expunge,
    "SEARCH": _search,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _transfer,
    "MOVE": _transfer,
    "NAMESPACE": _no_args,
    "IDLE": _no_args,
    "ENABLE": _enable,
    "ID": _id,
    "GETQUOTA": _getquota,  # RFC 9208 §4.1
    "GETQUOTAROOT": _mailbox,
    "SETACL": _setacl,  # RFC 4314 §3
    "DELETEACL": _acl_identifier,
    "GETACL": _mailbox,
    "LISTRIGHTS": _acl_identifier,
    "MYRIGHTS": _mailbox,
    "COMPRESS": _compress,  # RFC 4978
    "SORT": _sort,  # RFC 5256
    "THREAD": _thread,
    "CANCELUPDATE": _cancelupdate,  # RFC 5267 §4.3.5
    "NOTIFY": _notify,  # RFC 5465
    "GENURLAUTH": _genurlauth,  # RFC 4467 §6
    "RESETKEY": _resetkey,
    "URLFETCH": _urlfetch,
    "GETMETADATA": _getmetadata,  # RFC 5464 §4
    "SETMETADATA": _setmetadata,
    "UIDBATCHES": _uidbatches,  # RFC 10022
}
_UID_COMMANDS = frozenset({"COPY", "MOVE", "FETCH", "SEARCH", "STORE", "EXPUNGE", "SORT", "THREAD"})


def parse_command(
    raw: bytes,
    *,
    max_depth: int = 32,
    literals: Sequence[bytes] | None = None,
    utf8: bool = False,
) -> Command:
    """Parse one framed command: its whole bytes, or (RawCommand.lines,
    literals=RawCommand.literals) to leave big literals uncopied; ``utf8``:
    mailbox names are UTF-8 (RFC 6855, RFC 9051), not modified UTF-7.
    Raises ParseError."""
    m = _TAG_LINE.match(raw)
    if m is None:
        raise ParseError(tag_of(raw), "Missing or invalid tag")
    tag = m.group(1).decode("ascii")
    try:
        tokens = tokenize(raw, m.end(), max_depth=max_depth, literals=literals)
        if not tokens or not isinstance(tokens[0], Atom):
            raise ImapError("Missing command", bad=True)
        name = tokens[0].upper()
        uid = False
        rest = tokens[1:]
        if name == "UID":
            if not rest or not isinstance(rest[0], Atom) or rest[0].upper() not in _UID_COMMANDS:
                raise ImapError("Bad UID command", bad=True)
            name = rest[0].upper()
            uid = True
            rest = rest[1:]
        grammar = _GRAMMAR.get(name)
        if grammar is None:
            raise ImapError("Unknown command", bad=True)
        args = grammar(_Args(rest, utf8), uid)
    except ParseError:
        raise
    except ImapError as exc:
        raise ParseError(tag, exc.text, exc.code) from None
    return Command(tag, name, args, uid)
