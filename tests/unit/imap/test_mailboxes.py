"""SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, LIST, LSUB, STATUS, NAMESPACE."""

from transcript import Client, setup_account


async def logged_in(store, count=3):
    account, inbox = await setup_account(store, count)
    c = Client(store)
    await c.login()
    return c, account, inbox


async def test_select_and_examine(store):
    c, _account, inbox = await logged_in(store)
    await c.transcript(
        f"""
        C: a1 SELECT inbox
        S: * FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen)
        S: * 3 EXISTS
        S: * 3 RECENT
        S: * OK [UNSEEN 1] First unseen message
        S: * OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen \\*)] ...
        S: * OK [UIDVALIDITY {inbox.uidvalidity}] UIDs valid
        S: * OK [UIDNEXT 4] Predicted next UID
        S: * OK [HIGHESTMODSEQ ...
        S: a1 OK [READ-WRITE] SELECT completed
        C: a2 EXAMINE INBOX
        S: * OK [CLOSED] Previous mailbox closed
        S: * FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen)
        S: * 3 EXISTS
        S: * 0 RECENT
        S: ~
        S: * OK [PERMANENTFLAGS ()] Flags permitted
        S: ~
        S: a2 OK [READ-ONLY] EXAMINE completed
        C: a3 STORE 1 +FLAGS (\\Seen)
        S: a3 NO [READ-ONLY] Mailbox is read-only
        C: a4 SELECT Nope
        S: * OK [CLOSED] Previous mailbox closed
        S: a4 NO [NONEXISTENT] No such mailbox
        C: a5 FETCH 1 FLAGS
        S: a5 BAD FETCH not allowed now
        """
    )


async def test_recent_belongs_to_one_session(store):
    c, account, inbox = await logged_in(store)
    other = Client(store)
    await other.login()
    got = await other.send("b0 EXAMINE INBOX")
    assert "* 3 RECENT" in got  # seen, not claimed (RFC 3501 §6.3.2)
    got = await c.send("a1 SELECT INBOX")
    assert "* 3 RECENT" in got
    got = await other.send("b1 SELECT INBOX")
    assert "* 0 RECENT" in got
    got = await other.send("b2 STATUS INBOX (RECENT)")
    assert got[0] == '* STATUS "INBOX" (RECENT 0)'
    await store.append(inbox.id, b"Subject: new\r\n\r\nx\r\n")
    got = await c.send("a2 STATUS INBOX (RECENT)")
    assert got == [
        '* STATUS "INBOX" (RECENT 3)',
        "* 4 EXISTS",
        "* 4 RECENT",  # the new message is this session's: it saw it first
        "a2 OK STATUS completed",
    ]
    got = await other.send("b3 NOOP")
    assert got == ["* 4 EXISTS", "* 0 RECENT", "b3 OK NOOP completed"]


async def test_create_delete_rename(store):
    c, _account, _inbox = await logged_in(store)
    await c.transcript(
        """
        C: a1 CREATE Projects/2024/
        S: a1 OK CREATE completed
        C: a2 CREATE Projects
        S: a2 NO [ALREADYEXISTS] Mailbox already exists
        C: a3 CREATE inbox
        S: a3 NO [ALREADYEXISTS] INBOX always exists
        C: a4 LIST "" Projects*
        S: * LIST (\\HasChildren) "/" "Projects"
        S: * LIST (\\HasNoChildren) "/" "Projects/2024"
        S: a4 OK LIST completed
        C: a5 RENAME Projects Old
        S: a5 OK RENAME completed
        C: a6 LIST "" Old/%
        S: * LIST (\\HasNoChildren) "/" "Old/2024"
        S: a6 OK LIST completed
        C: a7 RENAME Nope X
        S: a7 NO [NONEXISTENT] No such mailbox
        C: a8 RENAME Old Sent
        S: a8 NO [ALREADYEXISTS] Target mailbox exists
        C: a9 DELETE Old
        S: a9 OK DELETE completed
        C: b1 LIST "" %
        S: * LIST (\\HasNoChildren) "/" "INBOX"
        S: * LIST (\\HasNoChildren \\Archive) "/" "Archive"
        S: * LIST (\\HasNoChildren \\Drafts) "/" "Drafts"
        S: * LIST (\\HasNoChildren \\Junk) "/" "Junk"
        S: * LIST (\\Noselect \\HasChildren) "/" "Old"
        S: * LIST (\\HasNoChildren \\Sent) "/" "Sent"
        S: * LIST (\\HasNoChildren \\Trash) "/" "Trash"
        S: b1 OK LIST completed
        C: b2 DELETE INBOX
        S: b2 NO [CANNOT] INBOX cannot be deleted
        C: b3 DELETE Nope
        S: b3 NO [NONEXISTENT] No such mailbox
        C: b4 CREATE a*b
        S: b4 NO [CANNOT] Bad mailbox name
        """
    )


async def test_rename_inbox_moves_messages(store):
    c, account, inbox = await logged_in(store)
    await c.transcript(
        """
        C: a1 RENAME INBOX Old-Inbox
        S: a1 OK RENAME completed
        C: a2 STATUS INBOX (MESSAGES)
        S: * STATUS "INBOX" (MESSAGES 0)
        S: a2 OK STATUS completed
        C: a3 STATUS Old-Inbox (MESSAGES UIDNEXT)
        S: * STATUS "Old-Inbox" (MESSAGES 3 UIDNEXT 4)
        S: a3 OK STATUS completed
        """
    )


async def test_list_special_cases_and_utf7(store):
    c, _account, _inbox = await logged_in(store)
    await c.transcript(
        """
        C: a1 LIST "" ""
        S: * LIST (\\Noselect) "/" ""
        S: a1 OK LIST completed
        C: a2 CREATE "&ZeVnLIqe-"
        S: a2 OK CREATE completed
        C: a3 LIST "" "&ZeVnLIqe-"
        S: * LIST (\\HasNoChildren) "/" "&ZeVnLIqe-"
        S: a3 OK LIST completed
        C: a4 LIST "" "inbox"
        S: * LIST (\\HasNoChildren) "/" "INBOX"
        S: a4 OK LIST completed
        C: a5 NAMESPACE
        S: * NAMESPACE (("" "/")) NIL NIL
        S: a5 OK NAMESPACE completed
        """
    )


async def test_subscribe_lsub_and_list_extended(store):
    c, _account, _inbox = await logged_in(store)
    await c.transcript(
        """
        C: a1 CREATE Lists/ietf
        S: a1 OK CREATE completed
        C: a2 SUBSCRIBE Lists/ietf
        S: a2 OK SUBSCRIBE completed
        C: a3 SUBSCRIBE Nope
        S: a3 NO [NONEXISTENT] No such mailbox
        C: a4 LSUB "" Lists*
        S: * LSUB () "/" "Lists/ietf"
        S: a4 OK LSUB completed
        C: a5 LSUB "" L%
        S: * LSUB (\\Noselect) "/" "Lists"
        S: a5 OK LSUB completed
        C: a6 LIST (SUBSCRIBED) "" L*
        S: * LIST (\\Subscribed \\HasNoChildren) "/" "Lists/ietf"
        S: a6 OK LIST completed
        C: a7 LIST (SUBSCRIBED RECURSIVEMATCH) "" L%
        S: * LIST (\\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))
        S: a7 OK LIST completed
        C: a8 LIST (SPECIAL-USE) "" *
        S: * LIST (\\HasNoChildren \\Archive) "/" "Archive"
        S: ~
        S: * LIST (\\HasNoChildren \\Trash) "/" "Trash"
        S: a8 OK LIST completed
        C: a9 LIST "" (INBOX Drafts) RETURN (SUBSCRIBED STATUS (MESSAGES UNSEEN SIZE))
        S: * LIST (\\Subscribed \\HasNoChildren) "/" "INBOX"
        S: * STATUS "INBOX" (MESSAGES 3 UNSEEN 3 SIZE ...
        S: * LIST (\\Subscribed \\HasNoChildren \\Drafts) "/" "Drafts"
        S: * STATUS "Drafts" (MESSAGES 0 UNSEEN 0 SIZE 0)
        S: a9 OK LIST completed
        C: b1 UNSUBSCRIBE Lists/ietf
        S: b1 OK UNSUBSCRIBE completed
        C: b2 LSUB "" Lists*
        S: b2 OK LSUB completed
        C: b3 CREATE MyJunk (USE (\\Junk))
        S: b3 OK CREATE completed
        C: b4 CREATE Bad (USE (\\Bogus))
        S: b4 NO [USEATTR] Unsupported special use
        C: b5 LIST "" MyJunk
        S: * LIST (\\HasNoChildren \\Junk) "/" "MyJunk"
        S: b5 OK LIST completed
        """
    )


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
