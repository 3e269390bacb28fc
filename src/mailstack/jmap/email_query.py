"""Email/query and Email/queryChanges (RFC 8621 §4.4, §4.5; RFC 8620 §5.5,
§5.6).

Every FilterCondition of RFC 8621 §4.4.1 with the AND/OR/NOT operators,
every sort property of §4.4.2 with the collations ``i;ascii-casemap``,
``i;unicode-casemap`` and ``i;octet``, ``collapseThreads``,
position/anchor/anchorOffset/limit and ``calculateTotal``.

Conditions on metadata (mailbox, dates, size, keywords) read the store's
``EmailMeta`` only; header and text conditions and the from/to/subject/sentAt
sorts read the parse kept at delivery (``messages_parsed``), fetched once per
query for the emails the metadata conditions left. The common case (inMailbox,
receivedAt descending, a limit) never reads a parse. Top-level text
conditions (text, body, from, to, cc, bcc, subject, header) are first
narrowed by the store's full-text index (``Store.search_text``): only the
emails whose indexed text holds every term have their parse read and
checked.

The query state is the account's state: it changes whenever any email does,
which RFC 8620 §5.5 allows ("MUST change if the results ... have changed").
Email/queryChanges recomputes the results and reports every email changed
since the old state (and, when threads matter, every email of a changed
thread) as removed, and those of them in the results as added: RFC 8620 §5.6
allows removed to name extra ids.

``TextQuery`` is how a text condition matches; SearchSnippet uses it too.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mailstack.jmap import emailview, ids, sharing
from mailstack.jmap.keywords import has_keyword, is_keyword, visible
from mailstack.jmap.method import (
    Args,
    Call,
    Method,
    MethodError,
    filter_operator,
)
from mailstack.mime.subject import base_subject

if TYPE_CHECKING:
    from mailstack.mime import ParsedMessage
    from mailstack.store import EmailMeta, Store

MAIL = "urn:ietf:params:jmap:mail"
# RFC 8620 §1.3: UnsignedInt is at most 2^53-1.
MAX_INT = 2**53 - 1
COLLATIONS = ("i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap", "i;octet")
DEFAULT_COLLATION = "i;unicode-casemap"
# Results of this many recent queries are kept per node (their email ids, a
# few octets each): ten clients asking for the same list at the same state
# cost one run.
CACHED_QUERIES = 32
_UTC_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_TERM = re.compile(r'"([^"]*)"|(\S+)')
_DIGITS = re.compile(r"[0-9]+")


def invalid(description: str) -> MethodError:
    return MethodError("invalidArguments", description)


# -- text matching (SearchSnippet reuses it) ---------------------------------


@dataclass(frozen=True, slots=True)
class TextQuery:
    """The terms of a text condition: words, or "quoted phrases". Text
    matches when it holds every term, case-insensitively."""

    terms: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> TextQuery:
        terms = (quoted or word for quoted, word in _TERM.findall(text))
        return cls(tuple(" ".join(term.casefold().split()) for term in terms if term.strip()))

    def matches(self, text: str | None) -> bool:
        if not self.terms:
            return True
        if text is None:
            return False
        folded = text.casefold()
        return all(term in folded for term in self.terms)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where any term occurs in text, in order, not overlapping."""
        if not self.terms:
            return []
        pattern = "|".join(re.escape(t) for t in sorted(self.terms, key=len, reverse=True))
        return [m.span() for m in re.finditer(pattern, text, re.IGNORECASE)]


# -- argument checks ---------------------------------------------------------


def unsigned(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT


def integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_INT <= value <= MAX_INT


def read_utc_date(value: object) -> datetime | None:
    """A UTCDate (RFC 8620 §1.4: RFC 3339 ``date-time`` with ``Z``), or None."""
    if not isinstance(value, str) or not _UTC_DATE.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError:
        return None


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# -- the emails a query looks at ---------------------------------------------


@dataclass(slots=True)
class _Email:
    meta: EmailMeta
    parsed: ParsedMessage | None = None


@dataclass(slots=True)
class _Context:
    """What conditions read besides an email: its thread's emails' flags."""

    threads: dict[int, list[frozenset[str]]] = field(default_factory=dict)

    def thread_flags(self, email: _Email) -> list[frozenset[str]]:
        return self.threads.get(email.meta.thread_id) or [email.meta.flags]


Check = Callable[[_Email], bool]


@dataclass(frozen=True, slots=True)
class _Node:
    """A compiled filter: an operator over children, or one check."""

    operator: str  # "AND", "OR", "NOT" or "" for a check
    children: tuple[_Node, ...] = ()
    check: Check | None = None
    mailbox: int | None = None  # an inMailbox check: its mailbox
    parsed: bool = False  # reads the stored parse
    thread: bool = False  # reads the thread's flags
    # The index field (fulltext: "text", "body", "header") holding every
    # term of a matching email: the full-text index narrows the emails.
    narrow: tuple[str, tuple[str, ...]] | None = None

    def __call__(self, email: _Email) -> bool:
        if self.check is not None:
            return self.check(email)
        if self.operator == "AND":
            return all(child(email) for child in self.children)
        if self.operator == "OR":
            return any(child(email) for child in self.children)
        return not any(child(email) for child in self.children)


def _operator(operator: str, children: Sequence[_Node]) -> _Node:
    return _Node(
        operator,
        tuple(children),
        parsed=any(c.parsed for c in children),
        thread=any(c.thread for c in children),
    )


def _parsed_check(
    test: Callable[[ParsedMessage], bool], narrow: tuple[str, tuple[str, ...]] | None = None
) -> _Node:
    def check(email: _Email) -> bool:
        return email.parsed is not None and test(email.parsed)

    return _Node("", check=check, parsed=True, narrow=narrow)


def _header_text(names: Sequence[str]) -> Callable[[ParsedMessage], str]:
    def text(parsed: ParsedMessage) -> str:
        return "\n".join(value for name in names for value in parsed.header_values(name))

    return text


_ADDRESS_FIELDS = ("from", "to", "cc", "bcc", "subject")


def has_attachment(parsed: ParsedMessage) -> bool:
    """hasAttachment as Email/get reports it (RFC 8621 §4.1.4)."""
    structure = emailview.body_structure(parsed.root)
    return emailview.has_attachment(emailview.split_body(structure)[2])


def _string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    return value


def _keyword(name: str, value: object) -> str:
    if not isinstance(value, str) or not is_keyword(value):
        raise invalid(f"{name} must be a keyword")
    return value


def _condition(name: str, value: Any, ctx: _Context) -> _Node:
    """One property of a FilterCondition (RFC 8621 §4.4.1)."""
    if name == "inMailbox":
        mailbox = ids.decode(ids.MAILBOX, _string(name, value))
        return _Node("", check=lambda e: e.meta.mailbox_id == mailbox, mailbox=mailbox)
    if name == "inMailboxOtherThan":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid("inMailboxOtherThan must be a list of ids")
        others = {ids.decode(ids.MAILBOX, v) for v in value}
        return _Node("", check=lambda e: e.meta.mailbox_id not in others)
    if name in ("before", "after"):
        when = read_utc_date(value)
        if when is None:
            raise invalid(f"{name} must be a UTCDate")
        if name == "before":
            return _Node("", check=lambda e: _aware(e.meta.internaldate) < when)
        return _Node("", check=lambda e: _aware(e.meta.internaldate) >= when)
    if name in ("minSize", "maxSize"):
        if not unsigned(value):
            raise invalid(f"{name} must be an UnsignedInt")
        if name == "minSize":
            return _Node("", check=lambda e: e.meta.size >= value)
        return _Node("", check=lambda e: e.meta.size < value)
    if name in ("hasKeyword", "notKeyword"):
        keyword = _keyword(name, value)
        want = name == "hasKeyword"
        return _Node("", check=lambda e: has_keyword(e.meta.flags, keyword) == want)
    if name in ("allInThreadHaveKeyword", "someInThreadHaveKeyword", "noneInThreadHaveKeyword"):
        keyword = _keyword(name, value)
        if name == "allInThreadHaveKeyword":
            thread_check: Check = lambda e: all(  # noqa: E731
                has_keyword(f, keyword) for f in ctx.thread_flags(e)
            )
        elif name == "someInThreadHaveKeyword":
            thread_check = lambda e: any(  # noqa: E731
                has_keyword(f, keyword) for f in ctx.thread_flags(e)
            )
        else:
            thread_check = lambda e: not any(  # noqa: E731
                has_keyword(f, keyword) for f in ctx.thread_flags(e)
            )
        return _Node("", check=thread_check, thread=True)
    if name == "hasAttachment":
        if not isinstance(value, bool):
            raise invalid("hasAttachment must be a boolean")
        return _parsed_check(lambda p: has_attachment(p) == value)
    if name == "text":
        query = TextQuery.parse(_string(name, value))
        headers = _header_text(_ADDRESS_FIELDS)
        return _parsed_check(
            lambda p: query.matches(headers(p) + "\n" + p.text), ("text", query.terms)
        )
    if name in _ADDRESS_FIELDS:
        query = TextQuery.parse(_string(name, value))
        header = _header_text((name,))
        return _parsed_check(lambda p: query.matches(header(p)), ("header", query.terms))
    if name == "body":
        query = TextQuery.parse(_string(name, value))
        return _parsed_check(lambda p: query.matches(p.text), ("body", query.terms))
    if name == "header":
        if (
            not isinstance(value, list)
            or len(value) not in (1, 2)
            or not all(isinstance(v, str) for v in value)
        ):
            raise invalid("header must be a list of one or two strings")
        field_name = value[0].lower()
        if len(value) == 1:
            return _parsed_check(lambda p: any(n == field_name for n, _ in p.fields))
        needle = value[1].casefold()
        return _parsed_check(
            lambda p: any(needle in v.casefold() for v in p.header_values(field_name)),
            ("header", (needle,)),
        )
    raise MethodError("unsupportedFilter", f"unknown filter property {name}")


def compile_filter(spec: object, ctx: _Context, depth: int = 0) -> _Node:
    """A FilterOperator or FilterCondition (RFC 8620 §5.5), checked whole."""
    found = filter_operator(spec, depth)
    if found is not None:
        operator, conditions = found
        return _operator(operator, [compile_filter(c, ctx, depth + 1) for c in conditions])
    assert isinstance(spec, dict)
    return _operator("AND", [_condition(name, value, ctx) for name, value in spec.items()])


# -- sorting -----------------------------------------------------------------


_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def collate(collation: str, text: str) -> Any:
    """The sort key of text under a collation (RFC 4790, RFC 5051)."""
    if collation == "i;ascii-casemap":
        return text.translate(_ASCII_FOLD)
    if collation == "i;unicode-casemap":
        return unicodedata.normalize("NFKD", text.casefold())
    if collation == "i;ascii-numeric":
        # RFC 4790 §9.1: the number the string begins with; a string that
        # begins with no digit is greater than every number.
        digits = _DIGITS.match(text)
        return (0, int(digits.group())) if digits else (1, 0)
    return text.encode("utf-8", "surrogatepass")


def _first_address(addresses: Any) -> str:
    """RFC 8621 §4.4.2: the name of the first address, else its email."""
    from mailstack.mime import decode_header

    for address in addresses or ():
        if address.host is None and address.mailbox is not None:
            continue  # a group's start marker
        if address.name:
            return decode_header(address.name)
        return f"{address.mailbox or ''}@{address.host}" if address.host else address.mailbox or ""
    return ""


SORT_PROPERTIES = frozenset(
    {"receivedAt", "size", "from", "to", "subject", "sentAt", "hasKeyword",
     "allInThreadHaveKeyword", "someInThreadHaveKeyword"}
)  # fmt: skip
_PARSED_SORTS = frozenset({"from", "to", "subject", "sentAt"})
_THREAD_SORTS = frozenset({"allInThreadHaveKeyword", "someInThreadHaveKeyword"})


@dataclass(frozen=True, slots=True)
class Comparator:
    property: str
    ascending: bool
    collation: str
    keyword: str | None

    def key(self, ctx: _Context) -> Callable[[_Email], Any]:
        prop, collation, keyword = self.property, self.collation, self.keyword or ""
        if prop == "receivedAt":
            return lambda e: _aware(e.meta.internaldate)
        if prop == "size":
            return lambda e: e.meta.size
        if prop == "hasKeyword":
            return lambda e: has_keyword(e.meta.flags, keyword)
        if prop == "allInThreadHaveKeyword":
            return lambda e: all(has_keyword(f, keyword) for f in ctx.thread_flags(e))
        if prop == "someInThreadHaveKeyword":
            return lambda e: any(has_keyword(f, keyword) for f in ctx.thread_flags(e))
        if prop == "sentAt":
            # An email without a (readable) Date sorts before every dated one.
            return lambda e: (
                (0, 0.0)
                if e.parsed is None or e.parsed.sent_date is None
                else (1, _aware(e.parsed.sent_date).timestamp())
            )
        if prop == "subject":
            return lambda e: collate(
                collation, base_subject(e.parsed.envelope.subject or "") if e.parsed else ""
            )
        attribute = "from_" if prop == "from" else "to"
        return lambda e: collate(
            collation, _first_address(getattr(e.parsed.envelope, attribute)) if e.parsed else ""
        )


def parse_sort(spec: object) -> list[Comparator]:
    """A list of Comparators (RFC 8620 §5.5, RFC 8621 §4.4.2)."""
    if spec is None:
        return [Comparator("receivedAt", False, DEFAULT_COLLATION, None)]
    if not isinstance(spec, list):
        raise invalid("sort must be a list of Comparators")
    out: list[Comparator] = []
    for item in spec:
        if not isinstance(item, dict) or not isinstance(item.get("property"), str):
            raise invalid("a Comparator is an object with a property")
        prop = item["property"]
        if prop not in SORT_PROPERTIES:
            raise MethodError("unsupportedSort", f"cannot sort by {prop}")
        ascending = item.get("isAscending", True)
        if not isinstance(ascending, bool):
            raise invalid("isAscending must be a boolean")
        collation = item.get("collation", DEFAULT_COLLATION)
        if not isinstance(collation, str):
            raise invalid("collation must be a string")
        if collation not in COLLATIONS:
            raise MethodError("unsupportedSort", f"unknown collation {collation}")
        keyword = item.get("keyword")
        if prop in ("hasKeyword", *_THREAD_SORTS):
            keyword = _keyword("keyword", keyword)
        out.append(Comparator(prop, ascending, collation, keyword))
    return out


def _top_mailbox(spec: object) -> int | None:
    """The mailbox an inMailbox that every result must satisfy names (-1 for
    an id that names none), found in the filter or its top-level ANDs."""
    if not isinstance(spec, dict):
        return None
    if spec.get("operator") == "AND" and isinstance(spec.get("conditions"), list):
        for condition in spec["conditions"]:
            found = _top_mailbox(condition)
            if found is not None:
                return found
        return None
    if "operator" in spec or not isinstance(spec.get("inMailbox"), str):
        return None
    mailbox = ids.decode(ids.MAILBOX, spec["inMailbox"])
    return -1 if mailbox is None else mailbox


# -- running a query ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled filter and sort, run against an account's emails."""

    filter: _Node | None
    sort: list[Comparator]
    collapse_threads: bool
    ctx: _Context
    mailbox_id: int | None  # an inMailbox every result must satisfy
    key: str  # the filter, sort and collapseThreads as canonical JSON

    @classmethod
    def from_args(cls, args: Args) -> Query:
        ctx = _Context()
        spec = args.get("filter")
        node = None if spec is None else compile_filter(spec, ctx)
        collapse = args.get("collapseThreads", False)
        if not isinstance(collapse, bool):
            raise invalid("collapseThreads must be a boolean")
        sort = parse_sort(args.get("sort"))
        key = json.dumps([spec, args.get("sort"), collapse], sort_keys=True)
        return cls(node, sort, collapse, ctx, _top_mailbox(spec), key)

    @property
    def uses_threads(self) -> bool:
        return (self.filter is not None and self.filter.thread) or any(
            c.property in _THREAD_SORTS for c in self.sort
        )

    async def results(
        self, call: Call, account: int, state: int, mailboxes: set[int] | None = None
    ) -> list[int]:
        """The results' email ids, in order, for the account at this state
        (only emails in ``mailboxes`` when given, as ``run``).

        An account's results cannot change while its state does not (every
        change to an email, flags and moves included, takes a new MODSEQ, and
        so does a change of a mailbox's rights), so they are kept by state
        and query for the next identical call."""
        cache = call.node.jmap_shared.email_queries
        reach = None if mailboxes is None else tuple(sorted(mailboxes))
        key = (account, state, reach, self.key)
        found = cache.pop(key, None)
        if found is None:
            found = [m.email_id for m in await self.run(store_of(call), account, mailboxes)]
            while len(cache) >= CACHED_QUERIES:
                del cache[next(iter(cache))]
        cache[key] = found  # the most recent last
        return found

    async def run(
        self, store: Store[ParsedMessage], account: int, mailboxes: set[int] | None = None
    ) -> list[EmailMeta]:
        """The results, in order; only emails in ``mailboxes`` when given
        (those the user may read in a shared account)."""
        metas = await store.emails(account, self.mailbox_id) if self.mailbox_id != -1 else []
        emails = [
            _Email(m)
            for m in metas
            if visible(m.flags) and (mailboxes is None or m.mailbox_id in mailboxes)
        ]
        if self.uses_threads:
            await self._load_threads(store, account, emails, mailboxes)
        emails = await self._filter(store, emails)
        if any(c.property in _PARSED_SORTS for c in self.sort):
            await _load_parsed(store, [e for e in emails if e.parsed is None])
        # Ties are broken by the email id, in the first comparator's
        # direction, so the order is the same on every call (RFC 8620 §5.5).
        descending = not self.sort[0].ascending
        if len({c.ascending for c in self.sort}) == 1:
            keys = [c.key(self.ctx) for c in self.sort]
            if len(keys) == 1:
                (only,) = keys
                emails.sort(key=lambda e: (only(e), e.meta.email_id), reverse=descending)
            else:
                emails.sort(
                    key=lambda e: (*(k(e) for k in keys), e.meta.email_id), reverse=descending
                )
        else:
            emails.sort(key=lambda e: e.meta.email_id, reverse=descending)
            for comparator in reversed(self.sort):
                emails.sort(key=comparator.key(self.ctx), reverse=not comparator.ascending)
        if self.collapse_threads:
            seen: set[int] = set()
            kept = []
            for email in emails:
                if email.meta.thread_id not in seen:
                    seen.add(email.meta.thread_id)
                    kept.append(email)
            emails = kept
        return [e.meta for e in emails]

    async def _load_threads(
        self,
        store: Store[ParsedMessage],
        account: int,
        emails: list[_Email],
        readable: set[int] | None,
    ) -> None:
        threads = await store.thread_emails(account, sorted({e.meta.thread_id for e in emails}))
        self.ctx.threads.update(
            (
                thread,
                [
                    m.flags
                    for m in members
                    if visible(m.flags) and (readable is None or m.mailbox_id in readable)
                ],
            )
            for thread, members in threads.items()
        )

    async def _filter(self, store: Store[ParsedMessage], emails: list[_Email]) -> list[_Email]:
        node = self.filter
        if node is None:
            return emails
        # Top-level conjuncts on metadata run first; only the emails they
        # leave have their parse read.
        # An inMailbox the store's read already applied is not checked again.
        conjuncts = [
            c for c in _conjuncts(node) if c.mailbox is None or c.mailbox != self.mailbox_id
        ]
        cheap = [c for c in conjuncts if not c.parsed]
        costly = [c for c in conjuncts if c.parsed]
        emails = [e for e in emails if all(c(e) for c in cheap)]
        for c in costly:
            if c.narrow is not None and emails:
                emails = await _narrow(store, emails, *c.narrow)
        if costly:
            await _load_parsed(store, emails)
            emails = [e for e in emails if all(c(e) for c in costly)]
        return emails


def _conjuncts(node: _Node) -> Iterator[_Node]:
    if node.operator == "AND":
        for child in node.children:
            yield from _conjuncts(child)
    else:
        yield node


async def _narrow(
    store: Store[ParsedMessage], emails: list[_Email], field: str, terms: tuple[str, ...]
) -> list[_Email]:
    """The emails whose indexed ``field`` holds every term the full-text
    index can look up (a term it cannot narrows nothing)."""

    async def look_up(mailbox_id: int) -> set[int] | None:
        found: set[int] | None = None
        for term in terms:
            hits = await store.search_text(mailbox_id, field, term)
            if hits is not None:
                found = hits if found is None else found & hits
                if not found:
                    break  # no email of this mailbox can match: the other terms need no look
        return found

    # The mailboxes' look-ups at once (the store's readers or pool serve them
    # side by side), not one after another.
    mailbox_ids = sorted({e.meta.mailbox_id for e in emails})
    by_mailbox = dict(
        zip(mailbox_ids, await asyncio.gather(*map(look_up, mailbox_ids)), strict=True)
    )
    kept = []
    for email in emails:
        hits = by_mailbox[email.meta.mailbox_id]
        if hits is None or email.meta.uid in hits:
            kept.append(email)
    return kept


async def _load_parsed(store: Store[ParsedMessage], emails: list[_Email]) -> None:
    by_mailbox: dict[int, list[_Email]] = {}
    for email in emails:
        by_mailbox.setdefault(email.meta.mailbox_id, []).append(email)
    for mailbox_id, members in by_mailbox.items():
        parsed = await store.messages_parsed(mailbox_id, [e.meta.uid for e in members])
        for email in members:
            email.parsed = parsed.get(email.meta.uid)


def store_of(call: Call) -> Store[ParsedMessage]:
    store = call.node.store
    assert store is not None, "the node's store is open while it serves"
    return store


def parse_state(value: object) -> int | None:
    """The account state a state string names (its decimal form), or None."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > 1 and value[0] == "0" or len(value) > 20:
        return None
    return int(value)


# -- the methods -------------------------------------------------------------


async def email_query(call: Call, args: Args) -> Args:
    # In a shared account, only the emails of mailboxes the user may read.
    reach = sharing.reach(call, args)
    account = reach.account_id
    query = Query.from_args(args)
    position = args.get("position", 0)
    if not integer(position):
        raise invalid("position must be an Int")
    anchor = args.get("anchor")
    if anchor is not None and not isinstance(anchor, str):
        raise invalid("anchor must be an Id or null")
    anchor_offset = args.get("anchorOffset", 0)
    if not integer(anchor_offset):
        raise invalid("anchorOffset must be an Int")
    limit = args.get("limit")
    if limit is not None and not unsigned(limit):
        raise invalid("limit must be an UnsignedInt or null")
    calculate_total = args.get("calculateTotal", False)
    if not isinstance(calculate_total, bool):
        raise invalid("calculateTotal must be a boolean")

    store = store_of(call)
    state = await store.account_state(account)
    results = await query.results(call, account, state, reach.readable_mailboxes())
    total = len(results)
    if anchor is not None:
        # RFC 8620 §5.5: with an anchor, position is ignored.
        number = ids.decode(ids.EMAIL, anchor)
        try:
            start = results.index(-1 if number is None else number) + anchor_offset
        except ValueError:
            raise MethodError("anchorNotFound") from None
        start = max(start, 0)
    else:
        start = position if position >= 0 else max(total + position, 0)
    end = total if limit is None else start + limit
    response: Args = {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "queryState": str(state),
        "canCalculateChanges": True,
        "position": start,
        "ids": [ids.encode(ids.EMAIL, number) for number in results[start:end]],
    }
    if calculate_total:
        response["total"] = total
    return response


async def email_query_changes(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    query = Query.from_args(args)
    since = parse_state(args.get("sinceQueryState"))
    if not isinstance(args.get("sinceQueryState"), str):
        raise invalid("sinceQueryState must be a string")
    max_changes = args.get("maxChanges")
    if max_changes is not None and (not unsigned(max_changes) or max_changes == 0):
        raise invalid("maxChanges must be a positive UnsignedInt or null")
    up_to = args.get("upToId")
    if up_to is not None and not isinstance(up_to, str):
        raise invalid("upToId must be an Id or null")
    calculate_total = args.get("calculateTotal", False)
    if not isinstance(calculate_total, bool):
        raise invalid("calculateTotal must be a boolean")

    store = store_of(call)
    state = await store.account_state(account)
    if since is None or since > state:
        raise MethodError("cannotCalculateChanges")
    changes = await store.email_changes(account, since) if since < state else None
    if since < state and changes is None:
        raise MethodError("cannotCalculateChanges")
    results = await query.results(call, account, state, reach.readable_mailboxes())
    changed: set[int] = set()
    created: set[int] = set()
    if changes is not None:
        changed.update(changes.created, changes.updated, changes.destroyed)
        created.update(changes.created)
        if query.collapse_threads or query.uses_threads:
            # Another email of a changed thread may have entered or left the
            # results (a new representative, a thread keyword now true).
            threads = await store.thread_changes(account, since)
            if threads is None:
                raise MethodError("cannotCalculateChanges")
            touched = [*threads.created, *threads.updated, *threads.destroyed]
            for members in (await store.thread_emails(account, touched)).values():
                changed.update(m.email_id for m in members)
    # An email created since the old state was not in the old results.
    removed = sorted(changed - created)
    added = [
        {"id": ids.encode(ids.EMAIL, number), "index": index}
        for index, number in enumerate(results)
        if number in changed
    ]
    if max_changes is not None and len(removed) + len(added) > max_changes:
        raise MethodError("tooManyChanges")
    response: Args = {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldQueryState": args["sinceQueryState"],
        "newQueryState": str(state),
        "removed": [ids.encode(ids.EMAIL, i) for i in removed],
        "added": added,
    }
    if calculate_total:
        response["total"] = len(results)
    return response


METHODS: dict[str, Method] = {
    "Email/query": Method(MAIL, email_query),
    "Email/queryChanges": Method(MAIL, email_query_changes),
}
