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
        S: * OK [MAILBOXID (M{inbox.id})] Ok
        S: * OK [URLMECH INTERNAL] URLAUTH mechanisms
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


async def test_fetch_modseq_enables_condstore_with_highestmodseq(store):
    # RFC 7162 §3.1: the first CONDSTORE-enabling command while a mailbox is
    # selected is answered with an untagged OK [HIGHESTMODSEQ]; only once.
    c, account, inbox = await selected(store)
    await c.send("a1 SELECT INBOX")
    highest = (await store.mailbox_status(inbox.id)).highest_modseq
    await c.transcript(
        f"""
        C: a2 FETCH 1 MODSEQ
        S: * OK [HIGHESTMODSEQ {highest}] Highest
        S: * 1 FETCH (MODSEQ (...
        S: a2 OK FETCH completed
        C: a3 FETCH 2 MODSEQ
        S: * 2 FETCH (MODSEQ (...
        S: a3 OK FETCH completed
        """
    )


async def test_esearch_min_max_modseq_of_returned_messages(store):
    # RFC 4731 §3.2: with MIN and/or MAX only, MODSEQ is that of the
    # messages returned, not the highest of every match.
    c, account, inbox = await selected(store)
    await c.send("a1 SELECT INBOX (CONDSTORE)")
    await c.send("a2 STORE 2 +FLAGS.SILENT (\\Flagged)")
    await c.send("a3 STORE 3 +FLAGS.SILENT (\\Flagged)")
    await c.send("a4 STORE 1 +FLAGS.SILENT (\\Seen)")
    got = await c.send("a5 FETCH 1:3 MODSEQ")
    modseq = {int(x.split()[1]): int(x.split("(")[2].rstrip(")")) for x in got if "FETCH (" in x}
    assert modseq[1] > modseq[3] > modseq[2]
    await c.transcript(
        f"""
        C: a6 SEARCH RETURN (MIN) MODSEQ 1
        S: * ESEARCH (TAG "a6") MIN 1 MODSEQ {modseq[1]}
        S: a6 OK SEARCH completed
        C: a7 SEARCH RETURN (MIN) FLAGGED MODSEQ 1
        S: * ESEARCH (TAG "a7") MIN 2 MODSEQ {modseq[2]}
        S: a7 OK SEARCH completed
        C: a8 SEARCH RETURN (MAX) FLAGGED MODSEQ 1
        S: * ESEARCH (TAG "a8") MAX 3 MODSEQ {modseq[3]}
        S: a8 OK SEARCH completed
        C: a9 SEARCH RETURN (MIN COUNT) FLAGGED MODSEQ 1
        S: * ESEARCH (TAG "a9") MIN 2 COUNT 2 MODSEQ {modseq[3]}
        S: a9 OK SEARCH completed
        """
    )
