"""STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT, CHECK; updates to other sessions."""

from transcript import Client, setup_account


async def two_sessions(store, count=3):
    account, inbox = await setup_account(store, count)
    a = Client(store)
    b = Client(store)
    b.ctx = a.ctx
    b.session.ctx = a.ctx
    for c in (a, b):
        await c.login()
        await c.send("s1 SELECT INBOX")
    return a, b, inbox


async def test_store_forms(store):
    a, b, inbox = await two_sessions(store)
    await a.transcript(
        """
        C: a1 STORE 1 +FLAGS (\\Seen $Label)
        S: * FLAGS ($Label \\Answered \\Deleted \\Draft \\Flagged \\Seen)
        S: * OK [PERMANENTFLAGS ($Label \\Answered \\Deleted \\Draft \\Flagged \\Seen \\*)] ...
        S: * 1 FETCH (FLAGS ($Label \\Recent \\Seen))
        S: a1 OK STORE completed
        C: a2 STORE 1 -FLAGS.SILENT ($label)
        S: a2 OK STORE completed
        C: a3 STORE 1:2 FLAGS (\\Answered \\Recent)
        S: * 1 FETCH (FLAGS (\\Answered \\Recent))
        S: * 2 FETCH (FLAGS (\\Answered \\Recent))
        S: a3 OK STORE completed
        C: a4 UID STORE 3 +FLAGS.SILENT \\Draft
        S: a4 OK STORE completed
        C: a5 STORE 1 +FLAGS (\\Bogus)
        S: a5 BAD Unknown system flag
        C: a6 STORE 9 +FLAGS (\\Seen)
        S: a6 BAD Invalid message sequence number
        """
    )
    # The other session learns about every change at its next command.
    got = await b.send("b1 NOOP")
    assert "* 1 FETCH (FLAGS (\\Answered))" in got
    assert "* 2 FETCH (FLAGS (\\Answered))" in got
    assert "* 3 FETCH (FLAGS (\\Draft))" in got
    assert got[-1] == "b1 OK NOOP completed"


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


async def test_copy_move_uidplus(store):
    a, b, inbox = await two_sessions(store)
    trash = await store.mailbox_get(inbox.account_id, "Trash")
    await a.transcript(
        f"""
        C: a1 COPY 1:2 Trash
        S: a1 OK [COPYUID {trash.uidvalidity} 1:2 1:2] COPY completed
        C: a2 UID MOVE 3 Trash
        S: * OK [COPYUID {trash.uidvalidity} 3 3] Moved
        S: * 3 EXPUNGE
        S: a2 OK MOVE completed
        C: a3 MOVE 1 Nowhere
        S: a3 NO [TRYCREATE] No such mailbox
        C: a4 CHECK
        S: a4 OK CHECK completed
        C: a5 UNSELECT
        S: a5 OK UNSELECT completed
        C: a6 STATUS Trash (MESSAGES)
        S: * STATUS "Trash" (MESSAGES 3)
        S: a6 OK STATUS completed
        """
    )
    got = await b.send("b1 NOOP")
    assert got == ["* 3 EXPUNGE", "b1 OK NOOP completed"]


async def test_append_and_multiappend(store):
    a, b, inbox = await two_sessions(store, 0)
    await a.transcript(
        f"""
        C: a1 APPEND INBOX (\\Seen) "07-Feb-1994 21:52:25 -0800" {{5}}\\r\\nHello
        S: * 1 EXISTS
        S: * 1 RECENT
        S: a1 OK [APPENDUID {inbox.uidvalidity} 1] APPEND completed
        C: a2 APPEND INBOX {{3+}}\\r\\none (\\Flagged) {{3+}}\\r\\ntwo
        S: * 3 EXISTS
        S: * 3 RECENT
        S: a2 OK [APPENDUID {inbox.uidvalidity} 2:3] APPEND completed
        C: a3 APPEND Nowhere {{1+}}\\r\\nx
        S: a3 NO [TRYCREATE] No such mailbox
        C: a4 FETCH 1 (INTERNALDATE FLAGS)
        S: * 1 FETCH (INTERNALDATE " 7-Feb-1994 21:52:25 -0800" FLAGS (\\Recent \\Seen))
        S: a4 OK FETCH completed
        C: a5 APPEND INBOX {{0+}}\\r\\n\\r\\n
        S: a5 NO [CANNOT] Empty message
        """
    )
    got = await b.send("b1 NOOP")
    assert got == ["* 3 EXISTS", "* 0 RECENT", "b1 OK NOOP completed"]
