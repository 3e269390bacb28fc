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

from mailstack.store.contract.accounts import Changes

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
