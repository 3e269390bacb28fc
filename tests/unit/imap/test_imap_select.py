"""SELECT and EXAMINE: the responses of RFC 3501 §6.3.1, read-only state, \\Recent."""

import asyncio
import contextlib
from collections.abc import Iterator

from transcript import Client, logged_in, message, setup_account

from mailstack.imap.cache import MetaInterner

from support import append


@contextlib.contextmanager
def _calls(store, name: str) -> Iterator[list[int]]:
    """The mailbox ids the store's method ``name`` is called with while the
    block runs (the calls still go through)."""
    seen: list[int] = []
    method = getattr(store, name)

    async def counted(mailbox_id):
        seen.append(mailbox_id)
        return await method(mailbox_id)

    setattr(store, name, counted)
    try:
        yield seen
    finally:
        delattr(store, name)


async def test_select_and_examine(store):
    c, _account, inbox = await logged_in(store)
    await c.transcript(
        f"""
        C: a1 SELECT inbox
        S: * FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen)
        S: * 3 EXISTS
        S: * 3 RECENT
        S: * OK [UNSEEN 1] First unseen message
        S: * OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen \\*)] ...
        S: * OK [UIDVALIDITY {inbox.uidvalidity}] UIDs valid
        S: * OK [UIDNEXT 4] Predicted next UID
        S: * OK [HIGHESTMODSEQ ...
        S: * OK [MAILBOXID (M{inbox.id})] Ok
        S: * OK [URLMECH INTERNAL] URLAUTH mechanisms
        S: a1 OK [READ-WRITE] SELECT completed
        C: a2 EXAMINE INBOX
        S: * OK [CLOSED] Previous mailbox closed
        S: * FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen)
        S: * 3 EXISTS
        S: * 0 RECENT
        S: ~
        S: * OK [PERMANENTFLAGS ()] Flags permitted
        S: ~
        S: a2 OK [READ-ONLY] EXAMINE completed
        C: a3 STORE 1 +FLAGS (\\Seen)
        S: a3 NO [READ-ONLY] Mailbox is read-only
        C: a4 SELECT Nope
        S: * OK [CLOSED] Previous mailbox closed
        S: a4 NO [NONEXISTENT] No such mailbox
        C: a5 FETCH 1 FLAGS
        S: a5 BAD FETCH not allowed now
        """
    )


async def test_recent_belongs_to_one_session(store):
    c, account, inbox = await logged_in(store)
    other = Client(store)
    await other.login()
    got = await other.send("b0 EXAMINE INBOX")
    assert "* 3 RECENT" in got  # seen, not claimed (RFC 3501 §6.3.2)
    got = await c.send("a1 SELECT INBOX")
    assert "* 3 RECENT" in got
    got = await other.send("b1 SELECT INBOX")
    assert "* 0 RECENT" in got
    got = await other.send("b2 STATUS INBOX (RECENT)")
    assert got[0] == '* STATUS "INBOX" (RECENT 0)'
    await append(store, inbox.id, b"Subject: new\r\n\r\nx\r\n")
    await asyncio.sleep(0.05)  # the store's change notification reaches the sessions
    got = await c.send("a2 STATUS INBOX (RECENT)")
    assert got == [
        '* STATUS "INBOX" (RECENT 3)',
        "* 4 EXISTS",
        "* 4 RECENT",  # the new message is this session's: it saw it first
        "a2 OK STATUS completed",
    ]
    got = await other.send("b3 NOOP")
    assert got == ["* 4 EXISTS", "* 0 RECENT", "b3 OK NOOP completed"]


async def test_sessions_on_one_mailbox_share_message_objects(store):
    c, account, inbox = await logged_in(store)
    other = Client(store)
    other.ctx = c.ctx
    other.session.ctx = c.ctx
    await other.login()
    await c.send("a1 SELECT INBOX")
    await other.send("b1 EXAMINE INBOX")
    mine, theirs = c.session.selected, other.session.selected
    assert all(mine.meta[u] is theirs.meta[u] for u in mine.uids)
    await c.send("a2 STORE 1 +FLAGS (\\Flagged)")
    got = await other.send("b2 NOOP")
    assert got[0] == "* 1 FETCH (FLAGS (\\Flagged))"
    assert "\\Flagged" in theirs.meta[1].flags and "\\Flagged" in mine.meta[1].flags


async def test_select_again_reads_only_changes(store):
    """The node keeps a selected mailbox's message list: selecting it again
    reads what changed since (flags, expunges, new mail), not every row,
    and the view is what a fresh read would give."""
    c, _account, inbox = await logged_in(store, 5)
    await c.send("a1 SELECT INBOX")
    await store.store_flags(inbox.id, [2], ["\\Flagged", "$Later"], "add")
    await store.store_flags(inbox.id, [3], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    await append(store, inbox.id, message(6), flags=["\\Seen"])
    with _calls(store, "messages") as reads:
        got = await c.send("a2 SELECT INBOX")
        assert "* 5 EXISTS" in got
        assert "* FLAGS ($Later \\Answered \\Deleted \\Draft \\Flagged \\Seen)" in got
        got = await c.send("a3 FETCH 1:* (UID FLAGS)")
    assert reads == []
    assert got == [
        "* 1 FETCH (UID 1 FLAGS ())",
        "* 2 FETCH (UID 2 FLAGS ($Later \\Flagged))",
        "* 3 FETCH (UID 4 FLAGS ())",
        "* 4 FETCH (UID 5 FLAGS ())",
        "* 5 FETCH (UID 6 FLAGS (\\Recent \\Seen))",
        "a3 OK FETCH completed",
    ]


async def test_sessions_share_the_listing_until_their_view_changes(store):
    """A SELECT of a mailbox another session selected copies nothing: both
    views read the node's one listing of it. The first change a view takes
    in (an expunge, new mail, a flag) makes it copy, leaving the listing
    and the other view as they were until that one is told."""
    c, account, inbox = await logged_in(store, 4)
    other = Client(store)
    other.ctx = c.ctx
    other.session.ctx = c.ctx
    await other.login()
    await store.store_flags(inbox.id, [1, 2], ["\\Seen"], "add")
    await c.send("a1 SELECT INBOX")
    got = await other.send("b1 SELECT INBOX")
    assert "* OK [UNSEEN 3] First unseen message" in got
    mine, theirs = c.session.selected, other.session.selected
    listing = mine.listing
    assert listing is not None and theirs.listing is listing
    assert mine.uids is theirs.uids and mine.meta is theirs.meta
    await c.send("a2 STORE 2 +FLAGS.SILENT (\\Deleted)")
    got = await c.send("a3 EXPUNGE")
    assert got == ["* 2 EXPUNGE", "a3 OK EXPUNGE completed"]
    assert mine.listing is None and mine.uids == [1, 3, 4]
    # The other view, and the listing under it, still hold message 2 ...
    assert theirs.listing is listing and listing.uids == [1, 2, 3, 4]
    assert 2 in listing.meta and "\\Deleted" not in listing.meta[2].flags
    got = await other.send("b2 FETCH 2 (UID FLAGS)")
    assert got[0] == "* 2 FETCH (UID 2 FLAGS (\\Seen))"
    # ... until it is told of the expunge, when it copies in turn.
    got = await other.send("b3 NOOP")
    assert "* 2 EXPUNGE" in got
    assert theirs.listing is None and theirs.uids == [1, 3, 4]
    assert listing.uids == [1, 2, 3, 4]
    # A new SELECT reads a new listing, the expunge in it.
    await c.send("a4 SELECT INBOX")
    assert c.session.selected.listing is not listing
    assert c.session.selected.uids == [1, 3, 4]


async def test_select_claims_recent_only_when_there_is_something_to_claim(store):
    """A claim of \\Recent is a write (a commit); a SELECT makes one only
    when messages came since the last claim. What comes later is still
    claimed once, by one session."""
    c, _account, inbox = await logged_in(store)
    other = Client(store)
    await other.login()
    with _calls(store, "claim_recent") as claims:
        got = await c.send("a1 SELECT INBOX")
        assert "* 3 RECENT" in got and claims == [inbox.id]
        got = await other.send("b1 SELECT INBOX")
        assert "* 0 RECENT" in got and claims == [inbox.id]
        got = await c.send("a2 SELECT INBOX")
        assert "* 0 RECENT" in got and claims == [inbox.id]
        await append(store, inbox.id, b"Subject: new\r\n\r\nx\r\n")
        await asyncio.sleep(0.05)  # the store's change notification reaches the sessions
        got = await other.send("b2 NOOP")
        assert got == ["* 4 EXISTS", "* 1 RECENT", "b2 OK NOOP completed"]
        got = await c.send("a3 NOOP")
        assert got == ["* 4 EXISTS", "* 0 RECENT", "a3 OK NOOP completed"]
        assert len(claims) == 2
        # A message that came while no session had the mailbox selected is
        # claimed by the next SELECT.
        await other.send("b3 UNSELECT")
        await c.send("a4 UNSELECT")
        await append(store, inbox.id, b"Subject: newer\r\n\r\ny\r\n")
        got = await c.send("a5 SELECT INBOX")
        assert "* 1 RECENT" in got and len(claims) == 3
        got = await other.send("b4 SELECT INBOX")
        assert "* 0 RECENT" in got and len(claims) == 3


async def test_select_reads_the_mailbox_again_when_it_changed_under_the_select(store):
    """Mail that arrives between SELECT's first read of the mailbox and its
    second (made once the listener is set) is in the view, counted in
    EXISTS and UIDNEXT, and claimed \\Recent by this session."""
    c, _account, inbox = await logged_in(store)
    await c.send("a1 SELECT INBOX")  # claims the three
    await c.send("a2 UNSELECT")
    sync = store.mailbox_sync
    arrived = []

    async def with_delivery(mailbox_id, modseq):
        if not arrived:
            arrived.append(await append(store, inbox.id, b"Subject: late\r\n\r\nx\r\n"))
        return await sync(mailbox_id, modseq)

    store.mailbox_sync = with_delivery
    try:
        got = await c.send("a3 SELECT INBOX")
    finally:
        del store.mailbox_sync
    assert arrived == [4]
    assert "* 4 EXISTS" in got and "* 1 RECENT" in got
    assert "* OK [UIDNEXT 5] Predicted next UID" in got
    assert (await c.send("a4 FETCH 4 (UID FLAGS)"))[0] == "* 4 FETCH (UID 4 FLAGS (\\Recent))"


async def test_the_node_keeps_listings_of_at_most_capacity_messages(store):
    """Listings past the interner's capacity are dropped, the least recently
    selected first; a dropped one is read whole again when next selected."""
    account, inbox = await setup_account(store, 3)
    other = await store.mailbox_create(account.id, "Other")
    for n in range(3):
        await append(store, other.id, message(n + 10))
    with _calls(store, "messages") as reads:
        interner = MetaInterner(capacity=5)
        first = await interner.select(store, await store.mailbox_by_id(inbox.id))
        assert await interner.select(store, await store.mailbox_by_id(inbox.id)) is first
        assert reads == [inbox.id]
        await interner.select(store, await store.mailbox_by_id(other.id))  # 6 > 5: INBOX goes
        again = await interner.select(store, await store.mailbox_by_id(inbox.id))
        assert reads == [inbox.id, other.id, inbox.id]
        assert again is not first and again.uids == first.uids == [1, 2, 3]
