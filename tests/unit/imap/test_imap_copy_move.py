"""COPY, MOVE, UID MOVE with COPYUID (RFC 4315, RFC 6851), CHECK, UNSELECT."""

from transcript import two_sessions


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
