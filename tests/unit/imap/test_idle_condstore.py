"""IDLE wake-ups, CONDSTORE (MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE) and QRESYNC."""

import asyncio

from transcript import Client, message, setup_account


async def selected(store, count=3):
    account, inbox = await setup_account(store, count)
    c = Client(store)
    await c.login()
    return c, account, inbox


async def test_idle_reports_delivery_and_done(store):
    c, account, inbox = await selected(store, 1)
    await c.send("s1 SELECT INBOX")
    task = asyncio.create_task(c.send("a1 IDLE"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert c.channel.out == b"+ idling\r\n"
    c.channel.out.clear()
    await store.append(inbox.id, message(2))
    for _ in range(50):
        await asyncio.sleep(0.01)
        if c.channel.out:
            break
    assert bytes(c.channel.out) == b"* 2 EXISTS\r\n* 2 RECENT\r\n"
    c.channel.out.clear()
    await store.store_flags(inbox.id, [1], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    for _ in range(50):
        await asyncio.sleep(0.01)
        if b"EXPUNGE" in c.channel.out:
            break
    assert b"* 1 EXPUNGE\r\n" in c.channel.out
    c.channel.lines.put_nowait(b"DONE\r\n")
    got = await task
    assert got[-1] == "a1 OK IDLE terminated"


async def test_idle_bad_continuation_and_eof(store):
    c, account, inbox = await selected(store, 0)
    c.channel.lines.put_nowait(b"NOPE\r\n")
    got = await c.send("a1 IDLE")
    assert got == ["+ idling", "a1 BAD Expected DONE"]
    c.channel.lines.put_nowait(None)
    got = await c.send("a2 IDLE")
    assert got == ["+ idling"] and c.session.closing


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
