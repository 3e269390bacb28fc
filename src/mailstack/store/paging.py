"""Changes since a state, a page at a time, for both backends (RFC 8620 §5.2
``maxChanges`` and ``hasMoreChanges``; see ``contract.accounts``).

Each changed object comes with the MODSEQ of its first change after
``since`` that the store can still tell (its creation when that came after,
else its latest change, or its destruction). A page holds the objects up to
some MODSEQ ``cut`` and says ``cut`` is its state: every object created up
to ``cut`` is in its ``created`` list, and every object that changed after
``cut`` shows up again on the next page, so a client that goes on from
``cut`` misses nothing. Stores give each change of an object a MODSEQ of
its own, so a page can end between any two objects.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailstack.store.contract.accounts import Changes, MailboxChanges

# (object id, MODSEQ of its first change after since that is known)
Change = tuple[int, int]


def page_changes(
    state: int,
    created: Sequence[Change],
    updated: Sequence[Change],
    destroyed: Sequence[Change],
    limit: int | None,
) -> Changes | None:
    """The first page of these changes (``state``: the state after all of
    them); None when the first MODSEQ alone holds more than ``limit``
    objects (then the changes cannot be paged: cannotCalculateChanges)."""
    everything = sorted(
        [(key, 0, oid) for oid, key in created]
        + [(key, 1, oid) for oid, key in updated]
        + [(key, 2, oid) for oid, key in destroyed]
    )
    has_more = limit is not None and len(everything) > limit
    if has_more:
        assert limit is not None
        # The page ends where a MODSEQ ends: everything up to cut, nothing after.
        cut = everything[limit][0] - 1
        everything = [entry for entry in everything[:limit] if entry[0] <= cut]
        if not everything:
            return None
        state = cut
    lists: tuple[list[int], list[int], list[int]] = ([], [], [])
    for _key, kind, oid in everything:
        lists[kind].append(oid)
    return Changes(state, lists[0], lists[1], lists[2], has_more)


# (email id, thread id, created MODSEQ, MODSEQ, alive): an email that changed
# (alive) or was destroyed (its tombstone) after since.
EmailEvent = tuple[int, int, int, int, bool]


def email_page(
    state: int, since: int, events: Sequence[EmailEvent], limit: int | None
) -> Changes | None:
    created: list[Change] = []
    updated: list[Change] = []
    destroyed: list[Change] = []
    for email_id, _thread, created_at, modseq, alive in events:
        if created_at > since:
            if alive:  # created and perhaps updated: created only
                created.append((email_id, created_at))
        elif alive:
            updated.append((email_id, modseq))
        else:
            destroyed.append((email_id, modseq))
    return page_changes(state, created, updated, destroyed, limit)


def thread_firsts(since: int, events: Sequence[EmailEvent]) -> tuple[dict[int, int], set[int]]:
    """The threads these email events touch, each with the MODSEQ of its
    first known change, and those created after since (a thread's id is its
    first email's)."""
    first: dict[int, int] = {}
    born: set[int] = set()
    for email_id, thread_id, created_at, modseq, _alive in events:
        key = created_at if created_at > since else modseq
        first[thread_id] = min(key, first.get(thread_id, key))
        if email_id == thread_id and created_at > since:
            born.add(thread_id)
    return first, born


def thread_page(
    state: int, first: dict[int, int], born: set[int], alive: set[int], limit: int | None
) -> Changes | None:
    """``alive``: the threads among ``first`` that have an email now."""
    created = [(t, key) for t, key in first.items() if t in born and t in alive]
    updated = [(t, key) for t, key in first.items() if t not in born and t in alive]
    destroyed = [(t, key) for t, key in first.items() if t not in born and t not in alive]
    return page_changes(state, created, updated, destroyed, limit)


def mailbox_page(
    state: int,
    since: int,
    mailboxes: Sequence[tuple[int, int, int, int]],
    tombstones: Sequence[tuple[int, int, int]],
    limit: int | None,
) -> MailboxChanges | None:
    """``mailboxes``: (id, created MODSEQ, MODSEQ of its own properties,
    HIGHESTMODSEQ) of every mailbox of the account; ``tombstones``: (id,
    created MODSEQ, MODSEQ) of those destroyed after since."""
    created: list[Change] = []
    updated: list[Change] = []
    destroyed: list[Change] = []
    props: dict[int, int] = {}
    for mailbox_id, created_at, props_modseq, highest in mailboxes:
        if created_at > since:
            created.append((mailbox_id, created_at))
            continue
        later = [modseq for modseq in (props_modseq, highest) if modseq > since]
        if later:
            updated.append((mailbox_id, min(later)))
            props[mailbox_id] = props_modseq
    for mailbox_id, created_at, modseq in tombstones:
        if created_at <= since:
            destroyed.append((mailbox_id, modseq))
    page = page_changes(state, created, updated, destroyed, limit)
    if page is None:
        return None
    counts_only = bool(page.updated) and all(props[m] <= since for m in page.updated)
    return MailboxChanges(
        page.state, page.created, page.updated, page.destroyed, page.has_more, counts_only
    )


def record_page(
    state: int, since: int, records: Sequence[tuple[int, int, int, bool]], limit: int | None
) -> Changes | None:
    """``records``: (id, created MODSEQ, MODSEQ, alive) of those changed after since."""
    created: list[Change] = []
    updated: list[Change] = []
    destroyed: list[Change] = []
    for record_id, created_at, modseq, alive in records:
        if created_at > since:
            if alive:
                created.append((record_id, created_at))
        elif alive:
            updated.append((record_id, modseq))
        else:
            destroyed.append((record_id, modseq))
    return page_changes(state, created, updated, destroyed, limit)
