"""Search results kept up to date (RFC 5267 §4 CONTEXT=SEARCH and
CONTEXT=SORT): SEARCH or SORT with ``RETURN (UPDATE)``, the ADDTO and
REMOVEFROM updates as the mailbox changes, and CANCELUPDATE.

A context holds the UIDs of its result in the requested order. When the
session's view takes in new or changed messages (Session.poll), the search
program is evaluated again on those messages only; an expunge is announced
to the contexts just before the EXPUNGE or VANISHED responses (§4.3.4: a
REMOVEFROM of sequence numbers MUST come first) and an addition after EXISTS
(§4.3.3). A result with RFC 5032 OLDER or YOUNGER changes as time passes:
it is evaluated again on every message whenever the session polls (each
command, and IDLE when the mailbox changes). Updates stop when the mailbox
is deselected or at CANCELUPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailstack.errors import ImapError
from mailstack.imap.matching import evaluate, sort_found, uses_age
from mailstack.imap.proto.commands import CancelUpdate, Command, SearchKey
from mailstack.imap.proto.response import quoted
from mailstack.imap.selected import uid_set_text
from mailstack.imap.session import Done, Session, handler

__all__ = ["SearchContext", "age", "check_tag", "expunging", "keep", "refresh"]


@dataclass
class SearchContext:
    tag: str
    uid: bool  # UID SEARCH/SORT: updates carry UIDs, else sequence numbers
    key: SearchKey
    criteria: tuple[tuple[str, bool], ...] | None  # None: SEARCH (mailbox order)
    results: list[int]  # UIDs, in the requested order


def check_tag(s: Session, tag: str) -> None:
    """RFC 5267 §4.3: UPDATE under a tag that already names a context is BAD."""
    if tag in s.contexts:
        raise ImapError("Tag reuse", bad=True)


def keep(
    s: Session,
    cmd: Command,
    key: SearchKey,
    criteria: tuple[tuple[str, bool], ...] | None,
    uids: list[int],
) -> bool:
    """Keep a result up to date; False (and ``* NO [NOUPDATE]``, §4.3.1)
    when the session has as many contexts as ``imap_search_contexts``."""
    if len(s.contexts) >= max(s.limits.imap_search_contexts, 1):
        s.send(b"* NO [NOUPDATE " + quoted(cmd.tag) + b"] Too many contexts\r\n")
        return False
    s.contexts[cmd.tag] = SearchContext(cmd.tag, cmd.uid, key, criteria, uids)
    return True


def _number(s: Session, ctx: SearchContext, uid: int) -> int:
    if ctx.uid:
        return uid
    sel = s.require_selected()
    return sel.msn(uid) or 0


def _line(s: Session, ctx: SearchContext, items: list[bytes]) -> bytes:
    head = b"* ESEARCH (TAG " + quoted(ctx.tag) + b")" + (b" UID" if ctx.uid else b"")
    return head + b"".join(b" " + item for item in items) + b"\r\n"


def _removals(s: Session, ctx: SearchContext, gone: set[int]) -> bytes | None:
    """REMOVEFROM for the result's members in ``gone``, the context updated."""
    if not gone.intersection(ctx.results):
        return None
    if ctx.criteria is None:
        # §4.3.4: position 0 for SEARCH, the numbers in mailbox order.
        removed = [u for u in ctx.results if u in gone]
        text = uid_set_text(_number(s, ctx, u) for u in removed).encode()
        item = b"REMOVEFROM (0 " + text + b")"
    else:
        # Highest position first, so each position holds when it is applied.
        pairs = [
            b"%d %d" % (pos, _number(s, ctx, u))
            for pos, u in reversed(list(enumerate(ctx.results, 1)))
            if u in gone
        ]
        item = b"REMOVEFROM (" + b" ".join(pairs) + b")"
    ctx.results = [u for u in ctx.results if u not in gone]
    return item


async def refresh(s: Session, uids: Sequence[int]) -> None:
    """The view took in new or changed messages: update every context."""
    sel = s.selected
    if sel is None or not s.contexts:
        return
    live = [u for u in uids if u in sel.meta and u not in sel.pending]
    if not live:
        return
    for ctx in list(s.contexts.values()):
        await _update(s, ctx, live)


async def age(s: Session) -> None:
    """RFC 5032: the results with OLDER or YOUNGER, evaluated again on the
    whole view, since messages age into and out of them."""
    sel = s.selected
    if sel is None:
        return
    aging = [ctx for ctx in s.contexts.values() if uses_age(ctx.key)]
    if aging:
        live = [u for u in sel.uids if u not in sel.pending]
        for ctx in aging:
            await _update(s, ctx, live)


async def _update(s: Session, ctx: SearchContext, live: list[int]) -> None:
    """ADDTO and REMOVEFROM for the messages ``live`` as they match now."""
    matched = {u for _m, u in await evaluate(s, ctx.key, live)}
    current = set(ctx.results)
    added = [u for u in live if u in matched and u not in current]
    gone = {u for u in live if u not in matched and u in current}
    items: list[bytes] = []
    removal = _removals(s, ctx, gone)
    if removal is not None:
        items.append(removal)
    if added:
        items.append(await _additions(s, ctx, added))
    if items:
        s.send(_line(s, ctx, items))


async def _additions(s: Session, ctx: SearchContext, added: list[int]) -> bytes:
    sel = s.require_selected()
    if ctx.criteria is None:
        ctx.results = sorted([*ctx.results, *added])
        text = uid_set_text(_number(s, ctx, u) for u in added).encode()
        return b"ADDTO (0 " + text + b")"
    # §4.3.3: each addition at its position in the new order, lowest first,
    # so the result stays in the requested order as the client applies them.
    members = [(n, u) for u in [*ctx.results, *added] if (n := sel.msn(u)) is not None]
    ordered = [u for _m, u in await sort_found(s, members, ctx.criteria)]
    new = set(added)
    pairs = [b"%d %d" % (pos, _number(s, ctx, u)) for pos, u in enumerate(ordered, 1) if u in new]
    ctx.results = ordered
    return b"ADDTO (" + b" ".join(pairs) + b")"


def expunging(s: Session, uids: set[int]) -> None:
    """Before the expunge of ``uids`` is announced: REMOVEFROM for each
    context that holds them (§4.3.4, while their numbers are still valid)."""
    for ctx in s.contexts.values():
        removal = _removals(s, ctx, uids)
        if removal is not None:
            s.send(_line(s, ctx, [removal]))


@handler("CANCELUPDATE")
async def cancelupdate(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, CancelUpdate)
    unknown = [t for t in args.tags if t not in s.contexts]
    if unknown:
        raise ImapError("No such context", bad=True)
    for tag in args.tags:
        del s.contexts[tag]
    return None
