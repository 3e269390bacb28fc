"""SORT, THREAD, ESORT, PARTIAL and CONTEXT=SEARCH/SORT (RFC 5256, 5957,
5267, 9394) as transcripts over a real store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from transcript import USER, Client, message, setup_account, two_sessions

from support import append


def mail(
    subject: str,
    sender: str,
    date: str,
    mid: str,
    refs: str = "",
    to: str = USER,
    cc: str = "",
    body: str = "hi",
) -> bytes:
    extra = f"References: {refs}\r\n" if refs else ""
    extra += f"Cc: {cc}\r\n" if cc else ""
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
        f"Message-ID: <{mid}>\r\n{extra}\r\n{body}\r\n"
    ).encode()


MESSAGES = [
    # 1: the thread's start
    mail("Lunch?", "Zoe Zed <zoe@z.example>", "Mon, 3 Jan 2022 10:00:00 +0000", "1@x",
         to="carl@c.example", cc="bea@b.example", body="x" * 300),
    # 2: no Date: sorts by its INTERNALDATE (10 Jan)
    b"From: amy@a.example\r\nTo: zack@z.example\r\nSubject: Report\r\nMessage-ID: <2@x>\r\n"
    b"\r\nbody\r\n",
    # 3: a reply to 1
    mail("Re: Lunch?", "Bob <bob@b.example>", "Tue, 4 Jan 2022 09:00:00 +0100", "3@x", "<1@x>",
         to="=?utf-8?q?Andr=C3=A9?= <zed@z.example>"),
    # 4: a reply to 3
    mail("RE: Re: lunch?", "Zoe Zed <zoe@z.example>", "Wed, 5 Jan 2022 10:00:00 +0000", "4@x",
         "<1@x> <3@x>", to="Amy <amy@a.example>"),
    # 5: a reply to a message not in the mailbox, like 6
    mail("[list] Trip", "carl@c.example", "Sun, 2 Jan 2022 10:00:00 +0000", "5@x", "<gone@x>",
         body="y" * 100),
    mail("Re: [list] Trip", "amy@a.example", "Thu, 6 Jan 2022 10:00:00 +0000", "6@x",
         "<gone@x>"),
]  # fmt: skip


async def noop(c: Client, tag: str) -> list[str]:
    """NOOP once the store's change notification has reached the session (a
    loaded machine may take longer than the transcript client's pause)."""
    for _ in range(200):
        if c.session.changed.is_set():
            break
        await asyncio.sleep(0.01)
    return await c.send(f"{tag} NOOP")


async def mailbox(store) -> Client:
    await store.domain_add("hamburger.edu")
    account = await store.account_add(USER, "hungry")
    inbox = await store.mailbox_get(account.id, "INBOX")
    for n, raw in enumerate(MESSAGES, 1):
        when = datetime(2022, 1, 10 if n == 2 else n, tzinfo=UTC)
        await append(store, inbox.id, raw, ["\\Seen"] if n % 2 else [], when)
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    return c


async def test_sort_keys(store) -> None:
    c = await mailbox(store)
    await c.transcript(
        """
        C: a1 SORT (DATE) UTF-8 ALL
        S: * SORT 5 1 3 4 6 2
        S: a1 OK SORT completed
        C: a2 SORT (REVERSE ARRIVAL) US-ASCII ALL
        S: * SORT 2 6 5 4 3 1
        S: a2 OK SORT completed
        C: a3 SORT (SUBJECT DATE) UTF-8 ALL
        S: * SORT 1 3 4 2 5 6
        S: a3 OK SORT completed
        C: a4 SORT (FROM REVERSE SIZE) UTF-8 ALL
        S: * SORT 6 2 3 5 1 4
        S: a4 OK SORT completed
        C: a5 SORT (TO) UTF-8 ALL
        S: * SORT 4 5 6 1 2 3
        S: a5 OK SORT completed
        C: a6 SORT (CC SIZE) UTF-8 ALL
        S: * SORT 2 6 4 3 5 1
        S: a6 OK SORT completed
        C: a7 UID SORT (SUBJECT) UTF-8 UNSEEN
        S: * SORT 4 2 6
        S: a7 OK SORT completed
        C: a8 SORT (SIZE) UTF-8 SUBJECT nothing
        S: * SORT
        S: a8 OK SORT completed
        """
    )


async def test_whole_mailbox_sort_answer_follows_the_view(store) -> None:
    """A SORT of ALL is answered again from what the session kept, until a
    message joins or leaves its view: then numbers and members change."""
    c = await mailbox(store)
    await c.transcript(
        """
        C: a1 SORT (DATE) UTF-8 ALL
        S: * SORT 5 1 3 4 6 2
        S: a1 OK SORT completed
        C: a2 SORT (DATE) UTF-8 ALL
        S: * SORT 5 1 3 4 6 2
        S: a2 OK SORT completed
        C: a3 UID SORT (DATE) UTF-8 ALL
        S: * SORT 5 1 3 4 6 2
        S: a3 OK SORT completed
        C: a4 STORE 1 +FLAGS.SILENT (\\Deleted)
        S: a4 OK STORE completed
        C: a5 EXPUNGE
        S: * 1 EXPUNGE
        S: a5 OK EXPUNGE completed
        C: a6 SORT (DATE) UTF-8 ALL
        S: * SORT 4 2 3 5 1
        S: a6 OK SORT completed
        C: a7 UID SORT (DATE) UTF-8 ALL
        S: * SORT 5 3 4 6 2
        S: a7 OK SORT completed
        """
    )
    inbox = await store.mailbox_get(c.session.account.id, "INBOX")
    await append(
        store, inbox.id, mail("Early", "amy@a.example", "Sat, 1 Jan 2022 10:00:00 +0000", "7@x")
    )
    lines = await noop(c, "a8")
    assert "* 6 EXISTS" in lines
    await c.transcript(
        """
        C: a9 SORT (DATE) UTF-8 ALL
        S: * SORT 6 4 2 3 5 1
        S: a9 OK SORT completed
        C: b1 UID SORT (DATE) UTF-8 ALL
        S: * SORT 7 5 3 4 6 2
        S: b1 OK SORT completed
        """
    )


async def test_sort_display(store) -> None:
    """RFC 5957: the display name when there is one, else the addr-spec."""
    c = await mailbox(store)
    await c.transcript(
        """
        C: d1 SORT (DISPLAYFROM) UTF-8 ALL
        S: * SORT 2 6 3 5 1 4
        S: d1 OK SORT completed
        C: d2 SORT (DISPLAYTO DATE) UTF-8 ALL
        S: * SORT 4 3 5 6 1 2
        S: d2 OK SORT completed
        """
    )
    caps = (await c.send("d3 CAPABILITY"))[0].split()
    for cap in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT",
                "CONTEXT=SEARCH", "CONTEXT=SORT", "PARTIAL"):  # fmt: skip
        assert cap in caps


async def test_sort_errors(store) -> None:
    c = await mailbox(store)
    await c.transcript(
        """
        C: e1 SORT (DATE) KOI8-R ALL
        S: e1 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset
        C: e2 SORT (SHOESIZE) UTF-8 ALL
        S: e2 BAD Unknown sort criterion
        C: e3 SORT () UTF-8 ALL
        S: e3 BAD Bad sort criteria
        C: e4 SORT (DATE REVERSE) UTF-8 ALL
        S: e4 BAD Bad sort criteria
        C: e5 SORT (DATE) UTF-8
        S: e5 BAD Missing search key
        C: e6 SORT DATE UTF-8 ALL
        S: e6 BAD Expected parenthesised sort criteria
        C: e7 THREAD LOOSE UTF-8 ALL
        S: e7 BAD Unsupported threading algorithm
        C: e8 THREAD REFERENCES BIG5 ALL
        S: e8 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset
        C: e9 UNSELECT
        S: e9 OK UNSELECT completed
        C: f1 SORT (DATE) UTF-8 ALL
        S: f1 BAD SORT not allowed now
        """
    )


async def test_thread(store) -> None:
    c = await mailbox(store)
    await c.transcript(
        """
        C: t1 THREAD ORDEREDSUBJECT UTF-8 ALL
        S: * THREAD (5 6)(1 (3)(4))(2)
        S: t1 OK THREAD completed
        C: t2 THREAD REFERENCES UTF-8 ALL
        S: * THREAD ((5)(6))(1 3 4)(2)
        S: t2 OK THREAD completed
        C: t3 UID THREAD REFERENCES UTF-8 NOT SUBJECT trip
        S: * THREAD (1 3 4)(2)
        S: t3 OK THREAD completed
        C: t4 THREAD REFERENCES UTF-8 SUBJECT nothing
        S: * THREAD
        S: t4 OK THREAD completed
        """
    )
    # 3 is not threaded: 4 hangs from 1 through 3's place, a dummy pruned away.
    await c.transcript(
        """
        C: t5 THREAD REFERENCES UTF-8 NOT 3
        S: * THREAD ((5)(6))(1 4)(2)
        S: t5 OK THREAD completed
        """
    )


async def test_esort_and_partial(store) -> None:
    c = await mailbox(store)
    await c.transcript(
        """
        C: p1 SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL
        S: * ESEARCH (TAG "p1") MIN 5 MAX 2 COUNT 6
        S: p1 OK SORT completed
        C: p2 UID SORT RETURN () (REVERSE DATE) UTF-8 ALL
        S: * ESEARCH (TAG "p2") UID ALL 2,6,4,3,1,5
        S: p2 OK SORT completed
        C: p3 SORT RETURN (ALL) (SUBJECT) UTF-8 ALL
        S: * ESEARCH (TAG "p3") ALL 1,3:4,2,5:6
        S: p3 OK SORT completed
        C: p4 SORT RETURN (PARTIAL 2:3) (DATE) UTF-8 ALL
        S: * ESEARCH (TAG "p4") PARTIAL (2:3 1,3)
        S: p4 OK SORT completed
        C: p41 SORT (DATE) UTF-8 RETURN (PARTIAL 2:3) ALL
        S: * ESEARCH (TAG "p41") PARTIAL (2:3 1,3)
        S: p41 OK SORT completed
        C: p43 SORT (DATE) UTF-8 RETURN (PARTIAL 3:2) ALL
        S: * ESEARCH (TAG "p43") PARTIAL (2:3 1,3)
        S: p43 OK SORT completed
        C: p44 SEARCH RETURN (PARTIAL -2:-1) ALL
        S: * ESEARCH (TAG "p44") PARTIAL (-1:-2 5:6)
        S: p44 OK SEARCH completed
        C: p42 SORT RETURN (MIN) (DATE) UTF-8 RETURN (MAX) ALL
        S: p42 BAD Unknown search key
        C: p5 SEARCH RETURN (PARTIAL -1:-2 COUNT) ALL
        S: * ESEARCH (TAG "p5") PARTIAL (-1:-2 5:6) COUNT 6
        S: p5 OK SEARCH completed
        C: p6 UID SEARCH RETURN (PARTIAL 5:10) SEEN
        S: * ESEARCH (TAG "p6") UID PARTIAL (5:10 NIL)
        S: p6 OK SEARCH completed
        C: p7 SEARCH RETURN (PARTIAL 1:2 ALL) ALL
        S: p7 BAD PARTIAL and ALL cannot both be asked for
        C: p8 SEARCH RETURN (PARTIAL 0:2) ALL
        S: p8 BAD Bad partial range
        C: p9 SEARCH RETURN (PARTIAL -1:2) ALL
        S: p9 BAD Bad partial range
        C: q1 UID FETCH 1:* (FLAGS) (PARTIAL -1:-2)
        S: * 5 FETCH (UID 5 FLAGS (\\Recent \\Seen))
        S: * 6 FETCH (UID 6 FLAGS (\\Recent))
        S: q1 OK FETCH completed
        C: q2 UID FETCH 2:* (FLAGS) (PARTIAL 1:2)
        S: * 2 FETCH (UID 2 FLAGS (\\Recent))
        S: * 3 FETCH (UID 3 FLAGS (\\Recent \\Seen))
        S: q2 OK FETCH completed
        C: q3 FETCH 1:* (FLAGS) (PARTIAL 1:2)
        S: q3 BAD PARTIAL is for UID FETCH
        """
    )


async def test_search_context_updates(store) -> None:
    a, b, inbox = await two_sessions(store, count=3)
    await a.transcript(
        """
        C: c1 SEARCH RETURN (UPDATE) UNSEEN
        S: * ESEARCH (TAG "c1") ALL 1:3
        S: c1 OK SEARCH completed
        C: c2 UID SEARCH RETURN (UPDATE COUNT) SUBJECT "message 3"
        S: * ESEARCH (TAG "c2") UID COUNT 1
        S: c2 OK SEARCH completed
        C: c1 SEARCH RETURN (UPDATE) ALL
        S: c1 BAD Tag reuse
        """
    )
    await b.send("b1 STORE 2 +FLAGS (\\Seen)")
    await append(store, inbox.id, b"Subject: message 3 again\r\n\r\nhi\r\n")
    # ADDTO after EXISTS (RFC 5267 §4.3.3); the flag change is a REMOVEFROM.
    lines = await noop(a, "c4")
    exists = lines.index("* 4 EXISTS")
    assert lines.index('* ESEARCH (TAG "c1") REMOVEFROM (0 2) ADDTO (0 4)') > exists
    assert lines.index('* ESEARCH (TAG "c2") UID ADDTO (0 4)') > exists
    await b.send("b2 STORE 3 +FLAGS (\\Deleted)")
    await b.send("b3 EXPUNGE")
    lines = await noop(a, "c5")
    # The REMOVEFROMs come before the EXPUNGE, with the numbers still valid.
    removals = [n for n, line in enumerate(lines) if "REMOVEFROM" in line]
    expunge = lines.index("* 3 EXPUNGE")
    assert removals and max(removals) < expunge, lines
    assert '* ESEARCH (TAG "c1") REMOVEFROM (0 3)' in lines
    assert '* ESEARCH (TAG "c2") UID REMOVEFROM (0 3)' in lines
    await a.transcript(
        """
        C: c6 CANCELUPDATE "c1"
        S: c6 OK CANCELUPDATE completed
        C: c7 CANCELUPDATE "c1"
        S: c7 BAD No such context
        C: c8 CANCELUPDATE c2
        S: c8 BAD Expected a quoted tag
        """
    )
    await b.send("b4 STORE 1 +FLAGS (\\Seen)")  # would leave c1 (UNSEEN), cancelled
    lines = await noop(a, "c9")
    assert any(line.startswith("* 1 FETCH") for line in lines), lines  # the change came
    assert not any("ESEARCH" in line for line in lines), lines


async def test_addto_reaches_the_context(store) -> None:
    a, b, inbox = await two_sessions(store, count=2)
    await a.transcript(
        """
        C: c1 UID SEARCH RETURN (UPDATE) SUBJECT fresh
        S: * ESEARCH (TAG "c1") UID
        S: c1 OK SEARCH completed
        """
    )
    await append(store, inbox.id, b"Subject: fresh one\r\n\r\nhi\r\n")
    await append(store, inbox.id, b"Subject: stale\r\n\r\nhi\r\n")
    await append(store, inbox.id, b"Subject: fresh two\r\n\r\nhi\r\n")
    lines = await noop(a, "c2")
    exists = lines.index("* 5 EXISTS")
    addto = lines.index('* ESEARCH (TAG "c1") UID ADDTO (0 3,5)')
    assert exists < addto, lines


async def test_sort_context_positions(store) -> None:
    a, b, inbox = await two_sessions(store, count=0)
    for n, raw in enumerate(MESSAGES[:3], 1):
        await append(store, inbox.id, raw, (), datetime(2022, 1, n, tzinfo=UTC))
    await a.send("n1 NOOP")
    await a.transcript(
        """
        C: c1 SORT RETURN (UPDATE) (REVERSE DATE) UTF-8 ALL
        S: * ESEARCH (TAG "c1") ALL 3,1:2
        S: c1 OK SORT completed
        """
    )
    # 4 is dated 2 Jan 10:00 (after 2's INTERNALDATE, 2 Jan 00:00), 5 is 5 Jan.
    await append(store, inbox.id, MESSAGES[4], (), datetime(2022, 1, 4, tzinfo=UTC))
    await append(store, inbox.id, MESSAGES[3], (), datetime(2022, 1, 5, tzinfo=UTC))
    lines = await noop(a, "c2")
    assert lines.index('* ESEARCH (TAG "c1") ADDTO (1 5 4 4)') > lines.index("* 5 EXISTS")
    await b.send("b0 NOOP")
    await b.send("b1 STORE 3 +FLAGS.SILENT (\\Deleted)")
    await b.send("b2 EXPUNGE")
    lines = await noop(a, "c3")
    assert lines.index('* ESEARCH (TAG "c1") REMOVEFROM (2 3)') < lines.index("* 3 EXPUNGE")
    await a.transcript(
        """
        C: c4 SORT RETURN () (REVERSE DATE) UTF-8 ALL
        S: * ESEARCH (TAG "c4") ALL 4,1,3,2
        S: c4 OK SORT completed
        """
    )


async def test_noupdate_past_the_limit(store) -> None:
    from dataclasses import replace

    from mailstack.limits import Limits

    a, _b, _inbox = await two_sessions(store, count=1)
    a.session.limits = replace(Limits(), imap_search_contexts=1)
    await a.transcript(
        """
        C: c1 SEARCH RETURN (UPDATE) ALL
        S: * ESEARCH (TAG "c1") ALL 1
        S: c1 OK SEARCH completed
        C: c2 SEARCH RETURN (UPDATE COUNT) ALL
        S: * ESEARCH (TAG "c2") COUNT 1
        S: * NO [NOUPDATE "c2"] Too many contexts
        S: c2 OK SEARCH completed
        C: c3 UNSELECT
        S: c3 OK UNSELECT completed
        C: c4 SELECT INBOX
        S: ~
        S: c4 OK [READ-WRITE] SELECT completed
        C: c5 SEARCH RETURN (UPDATE) ALL
        S: * ESEARCH (TAG "c5") ALL 1
        S: c5 OK SEARCH completed
        """
    )


async def test_sort_key_cache_reads_records_and_keeps_a_bound(store):
    """Keys come from the records kept at delivery (no parse read); past
    its capacity the cache drops the mailbox least recently sorted, whole."""
    from mailstack.imap.cache import ParsedCache, SortKeyCache

    account, inbox = await setup_account(store, 3)
    work = await store.mailbox_create(account.id, "Work")
    for n in range(4):
        await append(store, work.id, message(10 + n, subject=f"Re: work {n}"))
    reads = {"records": 0, "parsed": 0}
    records, parsed = store.messages_sort_records, store.messages_parsed

    async def counted_records(mailbox_id, uids):
        reads["records"] += len(uids)
        return await records(mailbox_id, uids)

    async def counted_parsed(mailbox_id, uids):
        reads["parsed"] += len(uids)
        return await parsed(mailbox_id, uids)

    store.messages_sort_records, store.messages_parsed = counted_records, counted_parsed
    cache = SortKeyCache(capacity=5)
    try:
        got = await cache.get_many(store, ParsedCache(), inbox.id, 1, [1, 2, 3])
        assert [got[u].subject for u in (1, 2, 3)] == ["MESSAGE 1", "MESSAGE 2", "MESSAGE 3"]
        assert reads == {"records": 3, "parsed": 0}
        await cache.get_many(store, ParsedCache(), inbox.id, 1, [1, 2, 3])
        assert reads["records"] == 3  # kept
        got = await cache.get_many(store, ParsedCache(), work.id, 1, [1, 2, 3, 4])
        assert got[2].subject == "WORK 1" and got[2].reply
        assert reads["records"] == 7
        await cache.get_many(store, ParsedCache(), work.id, 1, [1, 2, 3, 4])
        assert reads["records"] == 7  # Work kept, INBOX dropped for it
        await cache.get_many(store, ParsedCache(), inbox.id, 1, [1, 2, 3])
        assert reads == {"records": 10, "parsed": 0}
    finally:
        del store.messages_sort_records, store.messages_parsed


async def test_sort_by_arrival_or_size_reads_no_sort_keys(store, monkeypatch):
    """ARRIVAL and SIZE are in the view: a SORT by them alone reads no
    message's sort keys; a SORT by anything else does."""
    _account, inbox = await setup_account(store, 0)
    for n, size in enumerate((300, 100, 200)):
        when = datetime(2024, 1, 3 - n, tzinfo=UTC)  # the later appended, the earlier
        await append(store, inbox.id, message(n) + b"x" * size, internaldate=when)
    c = Client(store)
    await c.login()
    await c.send("a1 SELECT INBOX")
    asked = []
    get_many = c.ctx.sort_keys.get_many

    async def counting(*args):
        asked.append(args)
        return await get_many(*args)

    monkeypatch.setattr(c.ctx.sort_keys, "get_many", counting)
    assert (await c.send("a2 SORT (ARRIVAL) UTF-8 ALL"))[0] == "* SORT 3 2 1"
    assert (await c.send("a3 SORT (REVERSE SIZE) UTF-8 ALL"))[0] == "* SORT 1 3 2"
    assert (await c.send("a4 SORT (SIZE ARRIVAL) UTF-8 UID 1:2"))[0] == "* SORT 2 1"
    assert asked == []
    await c.send("a5 SORT (SUBJECT) UTF-8 ALL")
    assert len(asked) == 1
