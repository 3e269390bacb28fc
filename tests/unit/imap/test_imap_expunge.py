"""EXPUNGE, UID EXPUNGE and CLOSE; expunges held back while FETCH runs (RFC 3501 §7.4.1)."""

from transcript import two_sessions


async def test_expunge_and_pending_expunges(store):
    a, b, inbox = await two_sessions(store)
    await a.transcript(
        """
        C: a1 STORE 1:2 +FLAGS.SILENT (\\Deleted)
        S: a1 OK STORE completed
        C: a2 EXPUNGE
        S: * 2 EXPUNGE
        S: * 1 EXPUNGE
        S: a2 OK EXPUNGE completed
        """
    )
    # RFC 3501 §7.4.1: no EXPUNGE while responding to FETCH; the numbers stay.
    got = await b.send("b1 FETCH 3 UID")
    assert "* 3 FETCH (UID 3)" in got and not any("EXPUNGE" in x for x in got)
    got = await b.send("b2 NOOP")
    assert got == ["* 2 EXPUNGE", "* 1 EXPUNGE", "b2 OK NOOP completed"]
    got = await b.send("b3 FETCH 1 UID")
    assert got[0] == "* 1 FETCH (UID 3)"


async def test_uid_expunge_only_named(store):
    a, _b, inbox = await two_sessions(store)
    await a.transcript(
        """
        C: a1 STORE 1:3 +FLAGS.SILENT (\\Deleted)
        S: a1 OK STORE completed
        C: a2 UID EXPUNGE 2
        S: * 2 EXPUNGE
        S: a2 OK EXPUNGE completed
        C: a3 CLOSE
        S: a3 OK CLOSE completed
        C: a4 STATUS INBOX (MESSAGES)
        S: * STATUS "INBOX" (MESSAGES 0)
        S: a4 OK STATUS completed
        """
    )


async def test_fetch_of_a_message_expunged_meanwhile(store):
    # RFC 2180 §4.1.1: b still numbers the message 2 (RFC 3501 §7.4.1) and is
    # served its data until it is told of the expunge.
    a, b, inbox = await two_sessions(store)
    await a.send("a1 STORE 2 +FLAGS.SILENT (\\Deleted)")
    await a.send("a2 EXPUNGE")
    await b.transcript(
        """
        C: b1 FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])
        S: * 1 FETCH (UID 1 RFC822.SIZE 158 BODY[HEADER.FIELDS (SUBJECT)] {22}
        S: Subject: message 1
        S:
        S: )
        S: * 2 FETCH (UID 2 RFC822.SIZE 158 BODY[HEADER.FIELDS (SUBJECT)] {22}
        S: Subject: message 2
        S:
        S: )
        S: * 3 FETCH (UID 3 RFC822.SIZE 158 BODY[HEADER.FIELDS (SUBJECT)] {22}
        S: Subject: message 3
        S:
        S: )
        S: b1 OK FETCH completed
        C: b2 FETCH 2 (ENVELOPE BODY[TEXT])
        S: * 2 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "message 2" ...
        S: Hello number 2.
        S: )
        S: b2 OK FETCH completed
        C: b3 NOOP
        S: * 2 EXPUNGE
        S: b3 OK NOOP completed
        C: b4 FETCH 2 UID
        S: * 2 FETCH (UID 3)
        S: b4 OK FETCH completed
        """
    )


async def test_fetch_of_a_message_moved_meanwhile(store):
    a, b, inbox = await two_sessions(store)
    await a.send("a1 MOVE 1 Trash")
    got = await b.send("b1 FETCH 1 BODY.PEEK[TEXT]")
    assert got == ["* 1 FETCH (BODY[TEXT] {17}", "Hello number 1.", ")", "b1 OK FETCH completed"]


async def test_fetch_of_a_message_expunged_elsewhere_fails(store):
    # Expunged past the IMAP sessions (as by POP3): nothing was kept, so
    # RFC 2180 §4.1.2 applies; its EXPUNGE comes later.
    a, b, inbox = await two_sessions(store)
    await store.store_flags(inbox.id, [2], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    got = await b.send("b1 FETCH 1:3 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert got[0].startswith("* 1 FETCH (UID 1 ")
    assert not any(line.startswith("* 2 FETCH") for line in got)
    assert any(line.startswith("* 3 FETCH (UID 3 ") for line in got)
    assert got[-1] == "b1 NO [EXPUNGEISSUED] Some messages were expunged meanwhile"
    got = await b.send("b2 NOOP")
    assert got == ["* 2 EXPUNGE", "b2 OK NOOP completed"]


async def test_copy_with_a_message_expunged_meanwhile_copies_nothing(store):
    a, b, inbox = await two_sessions(store)
    await a.send("a1 STORE 3 +FLAGS.SILENT (\\Deleted)")
    await a.send("a2 EXPUNGE")
    got = await b.send("b1 COPY 1:3 Trash")
    assert got[-1] == "b1 NO [EXPUNGEISSUED] Some messages were expunged meanwhile"
    got = await b.send("b2 STATUS Trash (MESSAGES)")
    assert got[0] == '* STATUS "Trash" (MESSAGES 0)'


def test_expunged_cache_keeps_its_budget():
    from mailstack.imap.cache import ExpungedCache

    kept = ExpungedCache(10)
    kept.put((1, 1, 1), b"aaaa", None)
    kept.put((1, 1, 2), b"bbbb", None)
    kept.put((1, 1, 3), b"x" * 11, None)  # larger than the budget: never kept
    assert kept.get((1, 1, 3)) is None
    kept.put((1, 1, 4), b"cccc", None)  # the oldest goes
    assert kept.get((1, 1, 1)) is None
    assert kept.get((1, 1, 2)) == (b"bbbb", None) and kept.get((1, 1, 4)) == (b"cccc", None)


async def test_no_retention_when_it_is_off(store):
    from dataclasses import replace

    a, b, inbox = await two_sessions(store)
    config = replace(a.ctx.config, expunged_retention=0)
    ctx = replace(a.ctx, config=config)
    for c in (a, b):
        c.ctx = c.session.ctx = ctx
        await c.send("s2 SELECT INBOX")
    await a.send("a1 STORE 2 +FLAGS.SILENT (\\Deleted)")
    await a.send("a2 EXPUNGE")
    got = await b.send("b1 FETCH 2 BODY.PEEK[TEXT]")
    assert got == ["b1 NO [EXPUNGEISSUED] Some messages were expunged meanwhile"]
