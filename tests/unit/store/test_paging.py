"""Changes a page at a time (store/paging.py), without a store."""

from __future__ import annotations

from mailstack.store.paging import email_page, mailbox_page, page_changes, thread_firsts


def test_a_page_ends_where_a_modseq_ends():
    page = page_changes(20, [(1, 11), (2, 12)], [(3, 13), (4, 13)], [(5, 15)], limit=3)
    # 3 and 4 share MODSEQ 13: the page stops before them.
    assert (page.created, page.updated, page.destroyed) == ([1, 2], [], [])
    assert page.state == 12 and page.has_more
    whole = page_changes(20, [(1, 11), (2, 12)], [(3, 13), (4, 13)], [(5, 15)], limit=None)
    assert whole.state == 20 and not whole.has_more and whole.updated == [3, 4]


def test_a_first_modseq_over_the_limit_cannot_be_paged():
    assert page_changes(9, [], [(1, 5), (2, 5), (3, 5)], [], limit=2) is None
    assert page_changes(9, [], [(1, 5), (2, 5)], [], limit=2).state == 9


def test_email_page_created_updated_destroyed_since():
    events = [
        (1, 1, 3, 12, True),   # created before, changed after: updated
        (2, 2, 11, 14, True),  # created after and changed: created only
        (3, 1, 11, 13, False),  # created and destroyed after: nowhere
        (4, 4, 2, 15, False),  # destroyed after: destroyed
    ]
    page = email_page(15, 10, events, None)
    assert (page.created, page.updated, page.destroyed) == ([2], [1], [4])
    first, born = thread_firsts(10, events)
    assert first == {1: 11, 2: 11, 4: 15} and born == {2}


def test_mailbox_page_counts_only():
    page = mailbox_page(30, 10, [(1, 1, 5, 20), (2, 1, 25, 26), (3, 12, 12, 12)], [], None)
    assert page.created == [3] and page.updated == [1, 2] and not page.counts_only
    only = mailbox_page(30, 10, [(1, 1, 5, 20)], [(9, 1, 22), (8, 11, 23)], None)
    assert only.updated == [1] and only.counts_only and only.destroyed == [9]
