"""IMAP4rev2 (RFC 9051) beside IMAP4rev1, SEARCHRES (RFC 5182) and
UTF8=ACCEPT (RFC 6855), as transcripts."""

from __future__ import annotations

import asyncio

from transcript import Client, logged_in, message, setup_account

from support import append


async def test_searchres_saves_and_dollar_names_it(store):
    c, _account, _inbox = await logged_in(store, 4)
    await c.send("s1 SELECT INBOX")
    await c.transcript(
        """
        C: a1 FETCH $ FLAGS
        S: a1 OK FETCH completed
        C: a2 SEARCH RETURN (SAVE) OR 2 4
        S: a2 OK SEARCH completed
        C: a3 FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: * 4 FETCH (UID 4)
        S: a3 OK FETCH completed
        C: a4 STORE $ +FLAGS.SILENT (\\Flagged)
        S: a4 OK STORE completed
        C: a5 SEARCH FLAGGED
        S: * SEARCH 2 4
        S: a5 OK SEARCH completed
        C: a6 UID SEARCH RETURN (SAVE MIN) FLAGGED
        S: * ESEARCH (TAG "a6") UID MIN 2
        S: a6 OK SEARCH completed
        C: a7 SEARCH $
        S: * SEARCH 2
        S: a7 OK SEARCH completed
        C: a8 SEARCH RETURN (SAVE COUNT) NOT $
        S: * ESEARCH (TAG "a8") COUNT 3
        S: a8 OK SEARCH completed
        C: a9 UID FETCH $ (FLAGS)
        S: * 1 FETCH (UID 1 FLAGS (\\Recent))
        S: * 3 FETCH (UID 3 FLAGS (\\Recent))
        S: * 4 FETCH (UID 4 FLAGS (\\Flagged \\Recent))
        S: a9 OK FETCH completed
        C: b1 STORE 3 +FLAGS (\\Deleted)
        S: * 3 FETCH (FLAGS (\\Deleted \\Recent))
        S: b1 OK STORE completed
        C: b2 EXPUNGE
        S: * 3 EXPUNGE
        S: b2 OK EXPUNGE completed
        C: b3 SEARCH $
        S: * SEARCH 1 3
        S: b3 OK SEARCH completed
        C: b4 SEARCH RETURN (SAVE) CHARSET KOI8-R ALL
        S: b4 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset
        C: b5 SEARCH $
        S: * SEARCH
        S: b5 OK SEARCH completed
        C: b6 SORT RETURN (SAVE) (DATE) UTF-8 ALL
        S: b6 BAD SAVE is for SEARCH
        C: b7 FETCH $,1 FLAGS
        S: b7 BAD Bad sequence set
        """
    )
    # A new selection starts with an empty "$".
    await c.send("b8 SEARCH RETURN (SAVE) ALL")
    await c.send("b9 SELECT INBOX")
    await c.transcript(
        """
        C: c1 SEARCH $
        S: * SEARCH
        S: c1 OK SEARCH completed
        """
    )


async def test_enable_imap4rev2(store):
    account, inbox = await setup_account(store, 3)
    await append(store, inbox.id, message(4), ["\\Seen"])
    await store.mailbox_create(account.id, "Réunion")
    c = Client(store)
    await c.login()
    await c.transcript(
        """
        C: a1 CAPABILITY
        S: * CAPABILITY IMAP4rev1 IMAP4rev2 ...
        S: a1 OK CAPABILITY completed
        C: a2 LIST "" R*
        S: * LIST (\\HasNoChildren) "/" "R&AOk-union"
        S: a2 OK LIST completed
        C: a3 ENABLE IMAP4rev2
        S: * ENABLED IMAP4rev2
        S: a3 OK ENABLE completed
        C: a4 SELECT INBOX
        S: * FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen)
        S: * 4 EXISTS
        S: * OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen \\*)] Flags permitted
        S: * OK [UIDVALIDITY ...
        S: * OK [UIDNEXT 5] Predicted next UID
        S: * OK [HIGHESTMODSEQ ...
        S: * OK [MAILBOXID (M...
        S: * OK [URLMECH INTERNAL] URLAUTH mechanisms
        S: * LIST () "/" "INBOX"
        S: a4 OK [READ-WRITE] SELECT completed
        C: a5 FETCH 1 FLAGS
        S: * 1 FETCH (FLAGS ())
        S: a5 OK FETCH completed
        C: a6 SEARCH UNSEEN
        S: * ESEARCH (TAG "a6") ALL 1:3
        S: a6 OK SEARCH completed
        C: a7 UID SEARCH SUBJECT nothing
        S: * ESEARCH (TAG "a7") UID
        S: a7 OK SEARCH completed
        C: a8 LIST "" R*
        S: * LIST (\\HasNoChildren) "/" "Réunion"
        S: a8 OK LIST completed
        C: a9 STATUS {8}\\r\\nRéunion (MESSAGES)
        S: * STATUS "Réunion" (MESSAGES 0)
        S: a9 OK STATUS completed
        C: b1 CREATE &AOk-t&AOk-
        S: b1 OK [MAILBOXID ...
        C: b2 LIST "" &*
        S: * LIST (\\HasNoChildren) "/" "&AOk-t&AOk-"
        S: b2 OK LIST completed
        """
    )
    await append(store, inbox.id, message(5))
    got = await c.send("b3 NOOP")
    assert got == ["* 5 EXISTS", "b3 OK NOOP completed"]


async def test_rev1_session_keeps_recent_and_unseen(store):
    c, _account, _inbox = await logged_in(store, 2)
    await c.transcript(
        """
        C: a1 SELECT INBOX
        S: * FLAGS ...
        S: * 2 EXISTS
        S: * 2 RECENT
        S: * OK [UNSEEN 1] First unseen message
        S: ~
        S: a1 OK [READ-WRITE] SELECT completed
        C: a2 SEARCH UNSEEN
        S: * SEARCH 1 2
        S: a2 OK SEARCH completed
        C: a3 ENABLE IMAP4rev2
        S: a3 BAD ENABLE not allowed now
        """
    )


async def test_utf8_accept(store):
    account, _inbox = await setup_account(store, 1)
    await store.mailbox_create(account.id, "Réunion")
    c = Client(store)
    await c.login()
    await c.transcript(
        """
        C: a1 ENABLE UTF8=ACCEPT
        S: * ENABLED UTF8=ACCEPT
        S: a1 OK ENABLE completed
        C: a2 LIST "" R*
        S: * LIST (\\HasNoChildren) "/" "Réunion"
        S: a2 OK LIST completed
        C: a3 SELECT "Réunion"
        S: ~
        S: * 0 RECENT
        S: ~
        S: a3 OK [READ-WRITE] SELECT completed
        C: a4 ENABLE UTF8=ACCEPT
        S: a4 BAD ENABLE not allowed now
        """
    )


async def test_utf8_names_are_checked_and_normalized(store):
    account, _inbox = await setup_account(store, 0)
    c = Client(store)
    await c.login()
    await c.send("a1 ENABLE UTF8=ACCEPT")
    # "é" sent decomposed (e + U+0301) names the NFC mailbox.
    await c.transcript(
        """
        C: a2 CREATE "Cafe\u0301"
        S: a2 OK [MAILBOXID ...
        C: a3 LIST "" Caf*
        S: * LIST (\\HasNoChildren) "/" "Café"
        S: a3 OK LIST completed
        """
    )
    got = await c.send(b'a4 CREATE "bad\xff"\r\n')
    assert got == ["a4 BAD Mailbox name is not UTF-8"]


async def test_eight_bit_strings_quoted_only_for_utf8_sessions(store):
    """RFC 6855 §3: UTF-8 in quoted strings only to a session that enabled
    it; the node's cache of ENVELOPE renderings keeps both forms apart."""
    account, inbox = await setup_account(store, 0)
    await append(store, inbox.id, "Subject: Grüße\r\n\r\nhallo\r\n".encode())
    plain = Client(store)
    utf8 = Client(store)
    utf8.ctx = plain.ctx
    utf8.session.ctx = plain.ctx
    await plain.login()
    await utf8.login()
    await utf8.send("e1 ENABLE UTF8=ACCEPT")
    for c in (plain, utf8, plain):
        await c.send("s1 SELECT INBOX")
        got = await c.send("f1 FETCH 1 (ENVELOPE)")
        if c is utf8:
            assert got[0] == '* 1 FETCH (ENVELOPE (NIL "Grüße" NIL NIL NIL NIL NIL NIL NIL NIL))'
        else:
            rest = "Grüße NIL NIL NIL NIL NIL NIL NIL NIL))"
            assert got[:2] == ["* 1 FETCH (ENVELOPE (NIL {7}", rest]


async def test_rename_sends_oldname_to_rev2_sessions_only(store):
    c, _account, _inbox = await logged_in(store, 0)
    await c.transcript(
        """
        C: a1 CREATE Old
        S: a1 OK ...
        C: a2 RENAME Old Older
        S: a2 OK RENAME completed
        C: a3 ENABLE IMAP4rev2
        S: * ENABLED IMAP4rev2
        S: a3 OK ENABLE completed
        C: a4 RENAME Older Été
        S: * LIST () "/" "Été" ("OLDNAME" ("Older"))
        S: a4 OK RENAME completed
        C: a5 RENAME Drafts Brouillons
        S: * LIST (\\Drafts) "/" "Brouillons" ("OLDNAME" ("Drafts"))
        S: a5 OK RENAME completed
        C: a6 NOTIFY SET (PERSONAL (MailboxName))
        S: a6 OK NOTIFY completed
        C: a7 RENAME Été Hiver
        S: * LIST () "/" "Hiver" ("OLDNAME" ("Été"))
        S: a7 OK RENAME completed
        """
    )
    # Told once: NOTIFY does not repeat what RENAME said.
    await asyncio.sleep(0.2)
    assert c.channel.take() == []
