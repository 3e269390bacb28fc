"""CATENATE (RFC 4469) and APPEND's UTF8 data item (RFC 6855 §4)."""

from __future__ import annotations

from transcript import USER, logged_in

from support import append

FORWARDED = (
    b"From: Zoe <zoe@z.example>\r\nSubject: lunch\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\npizza\r\n"
    b"--b\r\nContent-Type: application/pdf\r\n\r\nPDF\r\n--b--\r\n"
)


async def test_catenate_joins_text_and_urls(store):
    c, account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, FORWARDED)
    v = inbox.uidvalidity
    head = "Subject: fwd\r\n\r\n"
    wire = head.replace("\r\n", "\\r\\n")
    parts = [
        f"TEXT {{{len(head)}}}\\r\\n{wire}",
        f'URL "/INBOX;UIDVALIDITY={v}/;UID={uid}/;SECTION=1"',
        f'URL "imap://mx.test/INBOX/;UID={uid}/;SECTION=HEADER.FIELDS%20(SUBJECT)"',
        f'URL "/INBOX/;UID={uid}/;PARTIAL=0.4"',
    ]
    await c.transcript(
        f"""
        C: a1 APPEND Drafts CATENATE ({" ".join(parts)})
        S: a1 OK [APPENDUID ...
        C: a2 SELECT Drafts
        S: ~
        S: a2 OK [READ-WRITE] SELECT completed
        C: a3 FETCH 1 BODY.PEEK[]
        S: * 1 FETCH (BODY[] {{{len(head) + 5 + 18 + 4}}}
        S: Subject: fwd
        S:
        S: pizzaSubject: lunch
        S:
        S: From)
        S: a3 OK FETCH completed
        C: a4 APPEND Drafts CATENATE (URL ";UID=1/;SECTION=HEADER" TEXT {{2}}\\r\\n!!)
        S: ~
        S: a4 OK [APPENDUID ...
        C: a5 FETCH 2 BODY.PEEK[]
        S: * 2 FETCH (BODY[] {{{len(head) + 2}}}
        S: Subject: fwd
        S:
        S: !!)
        S: a5 OK FETCH completed
        """
    )


async def test_catenate_refusals(store):
    c, account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, FORWARDED)
    v = inbox.uidvalidity
    await c.transcript(
        f"""
        C: b1 APPEND Drafts CATENATE (URL "/INBOX;UIDVALIDITY={v + 1}/;UID={uid}")
        S: b1 NO [BADURL /INBOX;UIDVALIDITY={v + 1}/;UID={uid}] Bad URL
        C: b2 APPEND Drafts CATENATE (URL "imap://elsewhere.example/INBOX/;UID={uid}")
        S: b2 NO [BADURL imap://elsewhere.example/INBOX/;UID={uid}] Bad URL
        C: b3 APPEND Drafts CATENATE (URL "imap://{USER}@mx.test/INBOX/;UID={uid};URLAUTH=x")
        S: b3 NO [BADURL ...
        C: b4 APPEND Drafts CATENATE (URL "/INBOX/;UID=99")
        S: b4 NO [BADURL /INBOX/;UID=99] Bad URL
        C: b5 APPEND Drafts CATENATE (URL "/Nowhere/;UID=1")
        S: b5 NO [BADURL /Nowhere/;UID=1] Bad URL
        C: b6 APPEND Drafts CATENATE (URL "/INBOX/;UID={uid}/;SECTION=7")
        S: b6 NO [BADURL ...
        C: b7 APPEND Drafts CATENATE (URL ";UID={uid}")
        S: b7 NO [BADURL ;UID={uid}] Bad URL
        C: b8 APPEND Drafts CATENATE (URL "imap://other@mx.test/INBOX/;UID={uid}")
        S: b8 NO [BADURL ...
        C: b9 APPEND Drafts CATENATE ()
        S: b9 BAD Bad CATENATE part list
        C: c1 APPEND Drafts CATENATE (TEXT "quoted")
        S: c1 BAD Bad CATENATE part
        C: c2 APPEND Drafts CATENATE (FILE "x")
        S: c2 BAD Bad CATENATE part
        C: c3 STATUS Drafts (MESSAGES)
        S: * STATUS "Drafts" (MESSAGES 0)
        S: c3 OK STATUS completed
        """
    )


async def test_catenate_over_the_limit_is_toobig(store):
    from dataclasses import replace

    from mailstack.limits import Limits

    c, account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, FORWARDED)
    c.session.limits = replace(Limits(), message_size=len(FORWARDED) + 10)
    await c.transcript(
        f"""
        C: a1 APPEND Drafts CATENATE (URL "/INBOX/;UID={uid}" TEXT {{11}}\\r\\n12345678901)
        S: a1 NO [TOOBIG] Message too large
        C: a2 APPEND Drafts CATENATE (URL "/INBOX/;UID={uid}" TEXT {{10}}\\r\\n1234567890)
        S: a2 OK [APPENDUID ...
        """
    )


async def test_append_utf8_literal(store):
    c, account, inbox = await logged_in(store, 0)
    msg = "Subject: Grüße\r\n\r\nhallo\r\n".encode()
    wire = msg.decode().replace("\r\n", "\\r\\n")
    await c.send(b"a0 ENABLE UTF8=ACCEPT")
    await c.transcript(
        f"""
        C: a1 APPEND INBOX UTF8 (~{{{len(msg)}}}\\r\\n{wire})
        S: a1 OK [APPENDUID ...
        C: a2 APPEND INBOX UTF8 ({{1}}\\r\\nx)
        S: a2 OK [APPENDUID ...
        C: a3 APPEND INBOX UTF8 ("x")
        S: a3 BAD UTF8 takes one literal
        C: a4 SELECT INBOX
        S: ~
        S: a4 OK [READ-WRITE] SELECT completed
        C: a5 SEARCH SUBJECT "Grüße"
        S: * SEARCH 1
        S: a5 OK SEARCH completed
        """
    )


async def test_utf8_data_item_needs_utf8_accept(store):
    c, account, inbox = await logged_in(store, 0)
    await c.transcript(
        """
        C: a1 APPEND INBOX UTF8 (~{1}\\r\\nx)
        S: a1 BAD UTF8 needs ENABLE UTF8=ACCEPT
        C: a2 APPEND INBOX CATENATE (UTF8 (~{1}\\r\\nx))
        S: a2 BAD Bad CATENATE part
        """
    )
