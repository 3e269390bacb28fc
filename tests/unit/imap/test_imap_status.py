"""STATUS (RFC 3501 §6.3.10, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE)."""

from transcript import logged_in


async def test_status(store):
    c, _account, inbox = await logged_in(store)
    await c.transcript(
        f"""
        C: a1 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)
        S: * STATUS "INBOX" (MESSAGES 3 RECENT 3 UIDNEXT 4 UIDVALIDITY {inbox.uidvalidity} ...
        S: a1 OK STATUS completed
        C: a2 STATUS Nope (MESSAGES)
        S: a2 NO [NONEXISTENT] No such mailbox
        C: a3 STATUS INBOX (FOO)
        S: a3 BAD Unknown status item
        """
    )
