"""STORE: +FLAGS, -FLAGS, FLAGS, .SILENT, keywords, UID STORE; updates to other sessions."""

from transcript import two_sessions


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
