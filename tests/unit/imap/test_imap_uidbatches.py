"""UIDBATCHES (RFC 10022) as transcripts over a real store: the batches
newest first, each written highest UID first, the batch range, the minimum
batch size (NO [TOOFEW]) and the syntax errors (BAD)."""

from __future__ import annotations

from transcript import Client, logged_in, message

from mailstack.imap.proto.commands import UidBatches

from support import append


def test_batches_are_cut_newest_first() -> None:
    uids = [1, 2, 3, 5, 8, 13, 21]
    assert UidBatches(3).ranges(uids) == [(21, 8), (5, 2), (1, 1)]
    assert UidBatches(3, 2, 2).ranges(uids) == [(5, 2)]
    assert UidBatches(3, 2, 9).ranges(uids) == [(5, 2), (1, 1)]
    assert UidBatches(3, 4, 9).ranges(uids) == []
    assert UidBatches(7).ranges(uids) == [(21, 1)]
    assert UidBatches(500).ranges([]) == []


async def selected(store, count: int) -> Client:
    c, _account, _inbox = await logged_in(store, count)
    await c.send("s1 SELECT INBOX")
    return c


async def test_capability_and_whole_mailbox(store) -> None:
    c = await selected(store, 6)
    await c.transcript(
        """
        C: a1 CAPABILITY
        S: * CAPABILITY ...
        S: a1 OK CAPABILITY completed
        C: a2 UIDBATCHES 1000
        S: * UIDBATCHES (TAG "a2") 6:1
        S: a2 OK UIDBATCHES completed
        C: a3 uidbatches 500 1:2
        S: * UIDBATCHES (TAG "a3") 6:1
        S: a3 OK UIDBATCHES completed
        C: a4 UIDBATCHES 1000 2:2
        S: * UIDBATCHES (TAG "a4")
        S: a4 OK UIDBATCHES completed
        C: a5 UIDBATCHES 1000 100:100
        S: * UIDBATCHES (TAG "a5")
        S: a5 OK UIDBATCHES completed
        """
    )
    assert "UIDBATCHES" in c.session.capabilities()


async def test_expunged_messages_leave_the_batches(store) -> None:
    c = await selected(store, 3)
    await c.transcript(
        """
        C: a1 UID STORE 1,3 +FLAGS.SILENT (\\Deleted)
        S: a1 OK STORE completed
        C: a2 EXPUNGE
        S: * 3 EXPUNGE
        S: * 1 EXPUNGE
        S: a2 OK EXPUNGE completed
        C: a3 UIDBATCHES 500
        S: * UIDBATCHES (TAG "a3") 2
        S: a3 OK UIDBATCHES completed
        """
    )


async def test_empty_mailbox_has_no_batches(store) -> None:
    c = await selected(store, 0)
    await c.transcript(
        """
        C: a1 UIDBATCHES 1000
        S: * UIDBATCHES (TAG "a1")
        S: a1 OK UIDBATCHES completed
        C: a2 UIDBATCHES 1000 1:1
        S: * UIDBATCHES (TAG "a2")
        S: a2 OK UIDBATCHES completed
        """
    )


async def test_many_batches_and_a_batch_range(store) -> None:
    c = await selected(store, 0)
    inbox = await store.mailbox_get(c.session.account.id, "INBOX")
    for n in range(1, 1202):
        await append(store, inbox.id, message(n))
    await c.send("n1 NOOP")
    await c.transcript(
        """
        C: a1 UIDBATCHES 500
        S: * UIDBATCHES (TAG "a1") 1201:702,701:202,201:1
        S: a1 OK UIDBATCHES completed
        C: a2 UIDBATCHES 500 2:3
        S: * UIDBATCHES (TAG "a2") 701:202,201:1
        S: a2 OK UIDBATCHES completed
        C: a3 UIDBATCHES 500 3:9
        S: * UIDBATCHES (TAG "a3") 201:1
        S: a3 OK UIDBATCHES completed
        C: a4 UIDBATCHES 600 1:1
        S: * UIDBATCHES (TAG "a4") 1201:602
        S: a4 OK UIDBATCHES completed
        C: a5 UIDBATCHES 1200
        S: * UIDBATCHES (TAG "a5") 1201:2,1
        S: a5 OK UIDBATCHES completed
        """
    )


async def test_errors(store) -> None:
    c, _account, _inbox = await logged_in(store, 6)
    await c.transcript(
        """
        C: a1 UIDBATCHES 1000
        S: a1 BAD UIDBATCHES not allowed now
        C: s1 SELECT INBOX
        S: ~
        S: s1 OK [READ-WRITE] ...
        C: a2 UIDBATCHES 100
        S: a2 NO [TOOFEW] Batches must hold at least 500 messages
        C: a3 UIDBATCHES 499 1:1
        S: a3 NO [TOOFEW] Batches must hold at least 500 messages
        C: a4 UIDBATCHES 1000 4:1
        S: a4 BAD The batch range must not be reversed
        C: a5 UIDBATCHES 0
        S: a5 BAD The batch size is a non-zero number
        C: a6 UIDBATCHES
        S: a6 BAD Missing batch size
        C: a7 UIDBATCHES 1000 0:2
        S: a7 BAD Bad batch range
        C: a8 UIDBATCHES 1000 1:*
        S: a8 BAD Bad batch range
        C: a9 UIDBATCHES 1000 2
        S: a9 BAD Bad batch range
        C: b1 UIDBATCHES 1000 1:2 3:4
        S: b1 BAD Unexpected extra arguments
        C: b2 UID UIDBATCHES 1000
        S: b2 BAD Bad UID command
        C: b3 UIDBATCHES 4294967296
        S: b3 BAD Number too large for batch size
        C: b4 UIDBATCHES abc
        S: b4 BAD Expected number for batch size
        """
    )
