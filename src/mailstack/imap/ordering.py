"""Sorting and threading of messages (RFC 5256 SORT and THREAD, RFC 5957
DISPLAYFROM/DISPLAYTO), with no I/O.

Every key is made at delivery from the parse and kept by the store
(``MessageKeys``, mime.sortkeys; ``MessageKeys.of`` takes a ParsedMessage),
small, so a node can cache the keys of a big
mailbox and sort or thread it again without reading a message.

Strings compare with the i;ascii-casemap collation (RFC 5256 §3: ASCII
letters folded to upper case, then octet order; Python's code point order is
the UTF-8 octet order). Ties keep mailbox order (RFC 5256 §3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from mailstack.mime.sortkeys import SortKeys, casemap
from mailstack.mime.subject import base_subject_and_reply

__all__ = [
    "MessageKeys",
    "Node",
    "base_subject",
    "casemap",
    "sort_order",
    "thread_orderedsubject",
    "thread_references",
    "thread_text",
]


def base_subject(subject: str | None) -> tuple[str, bool]:
    """RFC 5256 §2.1: the base subject, and whether the subject marked a
    reply or forward (mime.subject's, the one JMAP threads by)."""
    return base_subject_and_reply(subject) if subject else ("", False)


# What SORT and THREAD read of a message, made at delivery and kept by the
# store (mime.sortkeys); ``MessageKeys.of`` makes them from a parse.
MessageKeys = SortKeys


class Entry(NamedTuple):
    """One message to sort or thread: its number in the answer (a sequence
    number or UID), its mailbox position, INTERNALDATE and RFC 5256 §2.2
    sent date (the INTERNALDATE when there is no valid Date:) as
    timestamps, size and keys. A tuple: thousands are made per SORT."""

    number: int
    msn: int
    arrival: float
    size: int
    keys: MessageKeys
    sent: float

    @classmethod
    def of(cls, number: int, msn: int, arrival: datetime, size: int, keys: MessageKeys) -> Entry:
        when = arrival.timestamp()
        return cls(number, msn, when, size, keys, when if keys.sent is None else keys.sent)


_CRITERIA: dict[str, Callable[[Entry], str | float]] = {
    "ARRIVAL": lambda e: e.arrival,
    "DATE": lambda e: e.sent,
    "SIZE": lambda e: e.size,
    "SUBJECT": lambda e: e.keys.subject,
    "FROM": lambda e: e.keys.from_,
    "TO": lambda e: e.keys.to,
    "CC": lambda e: e.keys.cc,
    "DISPLAYFROM": lambda e: e.keys.display_from,
    "DISPLAYTO": lambda e: e.keys.display_to,
}


def sort_order(entries: Iterable[Entry], criteria: Sequence[tuple[str, bool]]) -> list[Entry]:
    """RFC 5256 §3: sorted by the criteria (name, reverse) in turn; ties in
    mailbox order. Stable sorts from the last criterion to the first, so
    REVERSE reverses only its own key."""
    out = sorted(entries, key=lambda e: e.msn)
    for name, reverse in reversed(criteria):
        out.sort(key=_CRITERIA[name], reverse=reverse)
    return out


# -- THREAD --------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """A thread node: a message, or a dummy (``entry`` None) standing for a
    referenced message that is not among those threaded."""

    entry: Entry | None
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None

    def first_message(self) -> Entry | None:
        if self.entry is not None:
            return self.entry
        for child in self.children:
            found = child.first_message()
            if found is not None:
                return found
        return None

    def sort_key(self) -> tuple[float, int]:
        entry = self.first_message()
        return (entry.sent, entry.msn) if entry is not None else (0.0, 0)


def _sort_siblings(nodes: list[Node]) -> None:
    for node in nodes:
        if node.children:
            _sort_siblings(node.children)
    if len(nodes) > 1:
        nodes.sort(key=Node.sort_key)


def thread_orderedsubject(entries: Iterable[Entry]) -> list[Node]:
    """RFC 5256 §3 ORDEREDSUBJECT: sorted by base subject then sent date;
    each run of one base subject is a thread whose first message is the
    parent of the others; threads ordered by their first message's sent date."""
    ordered = sorted(entries, key=lambda e: (e.keys.subject, e.sent, e.msn))
    roots: list[Node] = []
    current: Node | None = None
    for entry in ordered:
        if (
            current is not None
            and current.entry is not None
            and (current.entry.keys.subject == entry.keys.subject)
        ):
            current.children.append(Node(entry, parent=current))
            continue
        current = Node(entry)
        roots.append(current)
    roots.sort(key=Node.sort_key)
    return roots


def _is_ancestor(node: Node, of: Node) -> bool:
    """Whether ``node`` is ``of`` or one of its ancestors."""
    walk: Node | None = of
    while walk is not None:
        if walk is node:
            return True
        walk = walk.parent
    return False


def _link(parent: Node, child: Node) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def thread_references(entries: Iterable[Entry]) -> list[Node]:
    """RFC 5256 §3 REFERENCES."""
    ordered = sorted(entries, key=lambda e: e.msn)
    by_id: dict[str, Node] = {}
    nodes: list[Node] = []
    # (1) Every message gets a node under its Message-ID; a message without
    # one, or with a duplicate, gets a unique one (a node not in by_id).
    for entry in ordered:
        node = Node(entry)
        mid = entry.keys.message_id
        if mid is not None:
            known = by_id.get(mid)
            if known is None:
                by_id[mid] = node
            elif known.entry is None:
                # A dummy made for an earlier reference: this is that message.
                known.entry = entry
                node = known
        nodes.append(node)

    def container(mid: str) -> Node:
        node = by_id.get(mid)
        if node is None:
            node = by_id[mid] = Node(None)
        return node

    for node in nodes:
        assert node.entry is not None
        refs = [container(r) for r in node.entry.keys.references]
        # (1A) link the references in order: each the parent of the next,
        # keeping a link that exists (the References may have been cut
        # short) and never making a loop.
        for parent, child in zip(refs, refs[1:], strict=False):
            if child.parent is None and not _is_ancestor(child, parent):
                _link(parent, child)
        # (1B) the last reference is the message's parent: an existing link
        # is replaced, unless that would make a loop; no references, no parent.
        last = refs[-1] if refs else None
        if last is None:
            if node.parent is not None:
                node.parent.children.remove(node)
                node.parent = None
        elif last is not node and not _is_ancestor(node, last):
            _link(last, node)

    # (2) the root set: every node without a parent.
    seen: set[int] = set()
    roots: list[Node] = []
    for node in [*nodes, *by_id.values()]:
        if node.parent is None and id(node) not in seen:
            seen.add(id(node))
            roots.append(node)

    # (3) prune dummies.
    roots = _prune(roots, top=True)
    for root in roots:
        root.parent = None
    # (4) sort the roots by sent date (a dummy by its first child's).
    _sort_siblings(roots)
    # (5) merge threads with the same base subject.
    roots = _merge_subjects(roots)
    # (6) sort every set of siblings.
    _sort_siblings(roots)
    return roots


def _prune(nodes: list[Node], *, top: bool) -> list[Node]:
    out: list[Node] = []
    for node in nodes:
        node.children = _prune(node.children, top=False)
        for child in node.children:
            child.parent = node
        if node.entry is not None:
            out.append(node)
        elif not node.children:
            continue  # (3A) a dummy without children goes
        elif top and len(node.children) > 1:
            out.append(node)  # (3B) children are not promoted to the root level
        else:
            out.extend(node.children)  # (3B) promoted to this level
    return out


def _thread_subject(node: Node) -> tuple[str, bool] | None:
    """(5B) a thread's base subject: its root's, or a dummy's first child's."""
    entry = (
        node.entry
        if node.entry is not None
        else (node.children[0].entry if node.children else None)
    )
    if entry is None or not entry.keys.subject:
        return None
    return entry.keys.subject, entry.keys.reply


def _merge_subjects(roots: list[Node]) -> list[Node]:
    table: dict[str, Node] = {}
    for root in roots:
        found = _thread_subject(root)
        if found is None:
            continue
        subject, reply = found
        held = table.get(subject)
        # (5C) a dummy, or a message that is not a reply, wins over a reply.
        if held is None or (
            held.entry is not None and (root.entry is None or (_reply(held) and not reply))
        ):
            table[subject] = root
    out: list[Node] = []
    for root in roots:
        found = _thread_subject(root)
        held = table.get(found[0]) if found is not None else None
        if held is None or held is root:
            out.append(root)
            continue
        if held.entry is None and root.entry is None:
            # (5D) both dummies: the children become siblings.
            for child in root.children:
                child.parent = held
            held.children.extend(root.children)
        elif held.entry is None or (root.entry is not None and _reply(root) and not _reply(held)):
            # (5D) under the dummy, or a reply under the original.
            root.parent = held
            held.children.append(root)
        else:
            dummy = Node(None, [held, root])
            held.parent = dummy
            root.parent = dummy
            assert found is not None
            table[found[0]] = dummy
            out[out.index(held)] = dummy
    return out


def _reply(node: Node) -> bool:
    return node.entry is not None and node.entry.keys.reply


def thread_text(roots: Sequence[Node]) -> bytes:
    """RFC 5256 §5 thread-list: ``(1 2 (3)(4 5))`` per thread, concatenated."""
    return b"".join(_thread(root) for root in roots)


def _thread(node: Node) -> bytes:
    return b"(" + _members(node) + b")"


def _members(node: Node) -> bytes:
    """A node and its descendants: a chain of only children goes in line,
    two or more children each in their own parentheses."""
    parts: list[bytes] = []
    walk = node
    while True:
        if walk.entry is not None:
            parts.append(b"%d" % walk.entry.number)
        if len(walk.children) == 1:
            walk = walk.children[0]
            continue
        if walk.children:
            parts.append(b"".join(_thread(child) for child in walk.children))
        break
    return b" ".join(parts)
