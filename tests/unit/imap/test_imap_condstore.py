"""CONDSTORE and QRESYNC (RFC 7162): MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE, VANISHED."""

from transcript import Client, setup_account


async def selected(store, count=3):
    account, inbox = await setup_account(store, count)
    c = Client(store)
    await c.login()
    return c, account, inbox


async def test_condstore(store):
    c, account, inbox = await selected(store)
    got = await c.send("a1 SELECT INBOX (CONDSTORE)")
    highest = int(next(x for x in got if "HIGHESTMODSEQ" in x).split()[3].rstrip("]"))
    await c.transcript(
        f"""
        C: a2 FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})
        S: a2 OK FETCH completed
        C: a3 STORE 2 +FLAGS.SILENT (\\Seen)
        S: * 2 FETCH (MODSEQ ({highest + 1}))
        S: a3 OK STORE completed
        C: a4 FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})
        S: * 2 FETCH (FLAGS (\\Recent \\Seen) MODSEQ ({highest + 1}))
        S: a4 OK FETCH completed
        C: a5 STORE 1:2 (UNCHANGEDSINCE {highest}) +FLAGS (\\Flagged)
        S: * 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ({highest + 2}))
        S: a5 OK [MODIFIED 2] Some messages were modified
        C: a6 UID FETCH 1 MODSEQ
        S: * 1 FETCH (UID 1 MODSEQ ({highest + 2}))
        S: a6 OK FETCH completed
        C: a7 STATUS INBOX (HIGHESTMODSEQ)
        S: * STATUS "INBOX" (HIGHESTMODSEQ {highest + 2})
        S: a7 OK STATUS completed
        """
    )


async def test_qresync_select_and_vanished(store):
    c, account, inbox = await selected(store)
    await c.send("a0 ENABLE QRESYNC")
    got = await c.send("a1 SELECT INBOX")
    highest = int(next(x for x in got if "HIGHESTMODSEQ" in x).split()[3].rstrip("]"))
    await store.store_flags(inbox.id, [3], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    await store.store_flags(inbox.id, [2], ["\\Answered"], "add")
    await c.send("a2 UNSELECT")
    await c.transcript(
        f"""
        C: a3 SELECT INBOX (QRESYNC ({inbox.uidvalidity} {highest} 1:3))
        S: ~
        S: * OK [HIGHESTMODSEQ {highest + 3}] Highest
        S: * VANISHED (EARLIER) 3
        S: * 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ ({highest + 3}))
        S: a3 OK [READ-WRITE] SELECT completed
        C: a4 UID FETCH 1:* FLAGS (CHANGEDSINCE {highest} VANISHED)
        S: * VANISHED (EARLIER) 3
        S: * 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ ({highest + 3}))
        S: a4 OK FETCH completed
        C: a5 STORE 1 +FLAGS.SILENT (\\Deleted)
        S: * 1 FETCH (UID 1 MODSEQ ({highest + 4}))
        S: a5 OK STORE completed
        C: a6 EXPUNGE
        S: * VANISHED 1
        S: a6 OK EXPUNGE completed
        """
    )


async def test_qresync_needs_enable(store):
    c, account, inbox = await selected(store)
    await c.transcript(
        f"""
        C: a1 SELECT INBOX (QRESYNC ({inbox.uidvalidity} 1))
        S: a1 BAD Enable QRESYNC first
        """
    )
