"""CREATE, DELETE, RENAME (incl. INBOX), hierarchy and names."""

from transcript import logged_in


async def test_create_delete_rename(store):
    c, _account, _inbox = await logged_in(store)
    await c.transcript(
        """
        C: a1 CREATE Projects/2024/
        S: a1 OK [MAILBOXID ...
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
        C: b5 DELETE Old
        S: b5 NO [HASCHILDREN] The name has inferior names
        C: b6 DELETE Old/2024
        S: b6 OK DELETE completed
        C: b7 DELETE Old
        S: b7 NO [NONEXISTENT] No such mailbox
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


async def test_mailbox_name_with_open_bracket(store):
    # RFC 3501 §9: "foo[bar" is an atom, so a missing mailbox is NO, not BAD.
    c, account, inbox = await logged_in(store, 0)
    await c.transcript(
        """
        C: a1 SELECT foo[bar
        S: a1 NO ...
        C: a2 CREATE foo[bar
        S: a2 OK ...
        C: a3 SELECT foo[bar
        S: ~
        S: a3 OK [READ-WRITE] SELECT completed
        """
    )
