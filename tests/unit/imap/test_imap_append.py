"""APPEND with flags and date, MULTIAPPEND, APPENDUID, TRYCREATE; EXISTS to other sessions."""

from transcript import two_sessions


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


async def test_multiappend_of_bare_literals(store):
    # RFC 3502: "APPEND box {n+}<msg1> {n+}<msg2>", no flags or dates.
    a, b, inbox = await two_sessions(store, 0)
    await a.transcript(
        f"""
        C: a1 APPEND INBOX {{3+}}\\r\\none {{3+}}\\r\\ntwo {{5+}}\\r\\nthree
        S: * 3 EXISTS
        S: * 3 RECENT
        S: a1 OK [APPENDUID {inbox.uidvalidity} 1:3] APPEND completed
        C: a2 FETCH 1:3 RFC822.SIZE
        S: * 1 FETCH (RFC822.SIZE 3)
        S: * 2 FETCH (RFC822.SIZE 3)
        S: * 3 FETCH (RFC822.SIZE 5)
        S: a2 OK FETCH completed
        """
    )
