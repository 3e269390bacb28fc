"""FETCH: every data item, sections of nested messages, partials, \\Seen, UID FETCH."""

from transcript import USER, Client, message, setup_account

from support import append

MULTIPART = (
    b"From: Alice <alice@crepes.fr>\r\n"
    b"To: Undisclosed: ;\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    b"Date: Tue, 8 Feb 1994 10:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"first part\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"Content-Disposition: attachment; filename=fwd.eml\r\n"
    b"\r\n"
    b"From: Carol <carol@poly.edu>\r\n"
    b"Subject: inner\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--outer--\r\n"
)


async def selected(store, count=3):
    account, inbox = await setup_account(store, count)
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    return c, inbox


async def test_simple_items(store):
    c, inbox = await selected(store)
    got = await c.send("a1 FETCH 1 (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
    line = got[0]
    assert line.startswith("* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE ")
    assert 'INTERNALDATE "' in line
    assert (
        'ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "message 1" '
        '(("Alice" NIL "alice" "crepes.fr")) (("Alice" NIL "alice" "crepes.fr")) '
        '(("Alice" NIL "alice" "crepes.fr")) ((NIL NIL "bob" "hamburger.edu")) '
        'NIL NIL NIL "<1@crepes.fr>"))'
    ) in line
    assert got[-1] == "a1 OK FETCH completed"


async def test_macros_and_bad_sets(store):
    c, inbox = await selected(store)
    await c.transcript(
        """
        C: a1 FETCH 2:3 FAST
        S: * 2 FETCH (FLAGS (\\Recent) INTERNALDATE ...
        S: * 3 FETCH (FLAGS (\\Recent) INTERNALDATE ...
        S: a1 OK FETCH completed
        C: a2 FETCH 4 FLAGS
        S: a2 BAD Invalid message sequence number
        C: a3 UID FETCH 4:9 FLAGS
        S: a3 OK FETCH completed
        C: a4 UID FETCH 3:* FLAGS
        S: * 3 FETCH (UID 3 FLAGS (\\Recent))
        S: a4 OK FETCH completed
        C: a5 UID FETCH 9:* FLAGS
        S: * 3 FETCH (UID 3 FLAGS (\\Recent))
        S: a5 OK FETCH completed
        """
    )


async def test_body_sections_and_seen(store):
    c, inbox = await selected(store)
    await c.transcript(
        """
        C: a1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])
        S: * 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {22}
        S: Subject: message 1
        S:
        S: )
        S: a1 OK FETCH completed
        C: a2 FETCH 1 FLAGS
        S: * 1 FETCH (FLAGS (\\Recent))
        S: a2 OK FETCH completed
        C: a3 FETCH 1 BODY[TEXT]<0.5>
        S: * 1 FETCH (BODY[TEXT]<0> {5}
        S: Hello FLAGS (\\Recent \\Seen))
        S: a3 OK FETCH completed
        C: a4 FETCH 1 BODY[1]
        S: * 1 FETCH (BODY[1] {17}
        S: Hello number 1.
        S: )
        S: a4 OK FETCH completed
        C: a5 FETCH 1 (BODY[HEADER.FIELDS.NOT (From To Date Message-ID)])
        S: * 1 FETCH (BODY[HEADER.FIELDS.NOT (From To Date Message-ID)] {22}
        S: Subject: message 1
        S:
        S: )
        S: a5 OK FETCH completed
        C: a6 FETCH 2 RFC822.HEADER
        S: * 2 FETCH (RFC822.HEADER {...
        S: ~
        S: a6 OK FETCH completed
        C: a7 FETCH 2 FLAGS
        S: * 2 FETCH (FLAGS (\\Recent))
        S: a7 OK FETCH completed
        """
    )


async def test_bodystructure_nested(store):
    account, inbox = await setup_account(store, 0)
    await append(store, inbox.id, MULTIPART)
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    got = await c.send("a1 FETCH 1 (BODYSTRUCTURE)")
    assert got[0].startswith(
        '* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 10 1'
        ' NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7BIT" '
    )
    assert (
        ' (("Carol" NIL "carol" "poly.edu")) (("Carol" NIL "carol" "poly.edu"))'
        ' (("Carol" NIL "carol" "poly.edu")) NIL NIL NIL NIL NIL)'
        ' ("text" "plain" NIL NIL NIL "7BIT" 10 1 NIL NIL NIL NIL) 5 NIL'
    ) in got[0]
    assert '"mixed" ("boundary" "outer") NIL NIL NIL))' in got[0]
    assert '("attachment" ("filename" "fwd.eml"))' in got[0]
    got = await c.send("a2 FETCH 1 (BODY)")
    assert got[0].startswith(
        '* 1 FETCH (BODY (("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 10 1)'
    )
    assert got[0].endswith(' "mixed"))')
    await c.transcript(
        """
        C: a3 FETCH 1 BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]
        S: * 1 FETCH (BODY[2.HEADER.FIELDS (SUBJECT)] {18}
        S: Subject: inner
        S:
        S: )
        S: a3 OK FETCH completed
        C: a4 FETCH 1 BODY.PEEK[2.TEXT]
        S: * 1 FETCH (BODY[2.TEXT] {10}
        S: inner body)
        S: a4 OK FETCH completed
        C: a5 FETCH 1 BODY.PEEK[2.1]
        S: * 1 FETCH (BODY[2.1] {10}
        S: inner body)
        S: a5 OK FETCH completed
        C: a6 FETCH 1 BODY.PEEK[1.MIME]
        S: * 1 FETCH (BODY[1.MIME] {43}
        S: Content-Type: text/plain; charset=utf-8
        S:
        S: )
        S: a6 OK FETCH completed
        C: a7 FETCH 1 BODY.PEEK[9]
        S: * 1 FETCH (BODY[9] NIL)
        S: a7 OK FETCH completed
        C: a8 FETCH 1 (ENVELOPE)
        S: * 1 FETCH (ENVELOPE (...
        S: a8 OK FETCH completed
        """
    )
    got = await c.send("a9 FETCH 1 ENVELOPE")
    assert '"=?utf-8?q?caf=C3=A9?="' in got[0]
    assert '(("Undisclosed" NIL NIL NIL)' not in got[0]
    assert '((NIL NIL "Undisclosed" NIL)(NIL NIL NIL NIL))' in got[0]


async def test_uid_fetch_always_has_uid_and_rfc822_sets_seen(store):
    c, inbox = await selected(store)
    got = await c.send("a1 UID FETCH 2 RFC822")
    assert got[0].startswith("* 2 FETCH (UID 2 RFC822 {")
    assert got[-2] == " FLAGS (\\Recent \\Seen))"
    got = await c.send("a2 FETCH 2 BINARY.PEEK[1]")
    assert got[0] == "* 2 FETCH (BINARY[1] {17}"
    got = await c.send("a3 FETCH 2 BINARY.SIZE[1]")
    assert got[0] == "* 2 FETCH (BINARY.SIZE[1] 17)"


async def test_fetch_examine_does_not_set_seen(store):
    account, inbox = await setup_account(store, 1)
    c = Client(store)
    await c.login()
    await c.send("s1 EXAMINE INBOX")
    await c.transcript(
        f"""
        C: a1 FETCH 1 BODY[HEADER.FIELDS (TO)]
        S: * 1 FETCH (BODY[HEADER.FIELDS (TO)] {{25}}
        S: To: {USER}
        S:
        S: )
        S: a1 OK FETCH completed
        C: a2 FETCH 1 FLAGS
        S: * 1 FETCH (FLAGS (\\Recent))
        S: a2 OK FETCH completed
        """
    )


async def test_envelope_display_name_from_comment(store):
    # Without a phrase, the comment is the display name (as Dovecot gives it).
    account, inbox = await setup_account(store, 0)
    await append(
        store, inbox.id, b"From: user@domain.org (Real Name)\r\nSubject: s\r\n\r\nbody\r\n"
    )
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    name = '(("Real Name" NIL "user" "domain.org"))'
    await c.transcript(
        f"""
        C: a1 FETCH 1 ENVELOPE
        S: * 1 FETCH (ENVELOPE (NIL "s" {name} {name} {name} NIL NIL NIL NIL NIL))
        S: a1 OK FETCH completed
        """
    )


BINARY_MESSAGE = (
    b"Subject: binary\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    b"begin 644 x\r\n`\r\nend\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9\r\n--b--\r\n"
)


async def test_binary_fetch_and_append_literal8(store):
    # RFC 3516: advertised; a part's content decoded, NULs in a literal8
    # (§4.3), an encoding the server cannot undo is NO [UNKNOWN-CTE] (§4.1),
    # and APPEND takes a literal8 (§4.4).
    account, inbox = await setup_account(store, 0)
    await append(store, inbox.id, BINARY_MESSAGE)
    c = Client(store)
    await c.login()
    got = await c.send("a0 CAPABILITY")
    assert " BINARY " in got[0]
    await c.send("s1 SELECT INBOX")
    got = await c.send("a1 FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.SIZE[3])")
    assert got[0] == "* 1 FETCH (BINARY[1] ~{4}"
    assert got[1] == "\x00\x01\x02\udcff BINARY.SIZE[1] 4 BINARY.SIZE[3] 5)"
    await c.transcript(
        """
        C: a2 FETCH 1 BINARY.PEEK[3]
        S: * 1 FETCH (BINARY[3] {5}
        S: café)
        S: a2 OK FETCH completed
        C: a3 FETCH 1 BINARY.PEEK[2]
        S: a3 NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding
        C: a4 APPEND INBOX ~{10+}\\r\\nA: b\\r\\n\\r\\n\x00\x01
        S: * 2 EXISTS
        S: ~
        S: a4 OK [APPENDUID ...
        C: a5 FETCH 2 BINARY.PEEK[]
        S: * 2 FETCH (BINARY[] ~{10}
        S: A: b
        S:
        S: \x00\x01)
        S: a5 OK FETCH completed
        """
    )


async def test_binary_section_texts_and_missing_parts(store):
    # BINARY[TEXT], BINARY[1.MIME] and BINARY[HEADER]: octets with no
    # transfer encoding of their own, sent as BODY[...] sends them (Dovecot
    # takes them; imaptest's fetch-binary-mime asks for them); a part the
    # message lacks is empty, size 0, not a failed FETCH.
    account, inbox = await setup_account(store, 0)
    await append(store, inbox.id, BINARY_MESSAGE)
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    body = BINARY_MESSAGE.split(b"\r\n\r\n", 1)[1]
    got = await c.send("a1 FETCH 1 (BINARY.SIZE[TEXT] BINARY.SIZE[9] BINARY.SIZE[1.MIME])")
    mime = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    assert got[0] == (
        f"* 1 FETCH (BINARY.SIZE[TEXT] {len(body)} BINARY.SIZE[9] 0"
        f" BINARY.SIZE[1.MIME] {len(mime)})"
    )
    await c.transcript(
        """
        C: a2 FETCH 1 (BINARY.PEEK[1.MIME])
        S: * 1 FETCH (BINARY[1.MIME] {77}
        S: Content-Type: application/octet-stream
        S: Content-Transfer-Encoding: base64
        S:
        S: )
        S: a2 OK FETCH completed
        C: a3 FETCH 1 (BINARY.PEEK[HEADER.FIELDS (SUBJECT)])
        S: * 1 FETCH (BINARY[HEADER.FIELDS (SUBJECT)] {19}
        S: Subject: binary
        S:
        S: )
        S: a3 OK FETCH completed
        C: a4 FETCH 1 (BINARY.PEEK[9])
        S: * 1 FETCH (BINARY[9] {0}
        S: )
        S: a4 OK FETCH completed
        """
    )
    got = await c.send("a5 FETCH 1 (BINARY.PEEK[TEXT]<0.3>)")
    assert got[0] == "* 1 FETCH (BINARY[TEXT]<0> {3}"
    # Header fields' size, and a section text of a part the message lacks.
    got = await c.send("a8 FETCH 1 (BINARY.SIZE[HEADER.FIELDS (SUBJECT)] BINARY.SIZE[9.MIME])")
    assert got[0] == "* 1 FETCH (BINARY.SIZE[HEADER.FIELDS (SUBJECT)] 19 BINARY.SIZE[9.MIME] 0)"
    got = await c.send("a9 FETCH 1 (BINARY.PEEK[9.TEXT])")
    assert got[:2] == ["* 1 FETCH (BINARY[9.TEXT] {0}", ")"]
    # A message/rfc822 part has no transfer encoding of its own: as it is.
    inner = b"Subject: inner\r\n\r\nhello\r\n"
    await append(store, inbox.id, (
        b'Subject: outer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="o"\r\n'
        b"\r\n--o\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
        b"--o\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"--o--\r\n"
    ))
    await c.send("a6 NOOP")
    got = await c.send("a7 FETCH 2 (BINARY.SIZE[2] BINARY.PEEK[2])")
    assert got[0] == f"* 2 FETCH (BINARY.SIZE[2] {len(inner) - 2} BINARY[2] {{{len(inner) - 2}}}"
    assert got[1] == "Subject: inner"


async def test_preview(store):
    # RFC 8970: PREVIEW from the stored text, whitespace collapsed, at most
    # 256 characters; (LAZY) accepted; an unknown modifier is BAD.
    account, inbox = await setup_account(store, 0)
    html = (
        b"Subject: p\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>Caf\xc3\xa9   au\r\n lait</p><script>x()</script></body></html>\r\n"
    )
    await append(store, inbox.id, html)
    await append(store, inbox.id, message(2, body="word " * 100))
    c = Client(store)
    await c.login()
    got = await c.send("a0 CAPABILITY")
    assert " PREVIEW" in got[0]
    # UTF-8 in a quoted string needs UTF8=ACCEPT (RFC 6855 §3); see below.
    await c.send("a0 ENABLE UTF8=ACCEPT")
    await c.send("s1 SELECT INBOX")
    await c.transcript(
        """
        C: a1 FETCH 1 (PREVIEW)
        S: * 1 FETCH (PREVIEW "Café au lait")
        S: a1 OK FETCH completed
        C: a2 FETCH 1 PREVIEW (LAZY)
        S: * 1 FETCH (PREVIEW "Café au lait")
        S: a2 OK FETCH completed
        C: a3 FETCH 1 (UID PREVIEW (LAZY))
        S: * 1 FETCH (UID 1 PREVIEW "Café au lait")
        S: a3 OK FETCH completed
        C: a4 FETCH 1 (PREVIEW (FUZZY))
        S: a4 BAD Unknown PREVIEW modifier
        """
    )
    got = await c.send("a5 FETCH 2 PREVIEW")
    text = got[0].split('"')[1]
    assert text.startswith("Hello number 2. word word") and len(text) == 256
    assert got[1] == "a5 OK FETCH completed"
    # A session that did not enable it gets the 8-bit text as a literal
    # (RFC 3501 §9: a quoted string is 7-bit).
    rev1 = Client(store)
    await rev1.login()
    await rev1.send("s1 SELECT INBOX")
    await rev1.transcript(
        """
        C: b1 FETCH 1 (PREVIEW ENVELOPE)
        S: * 1 FETCH (PREVIEW {13}
        S: Café au lait ENVELOPE (NIL "p" NIL NIL NIL NIL NIL NIL NIL NIL))
        S: b1 OK FETCH completed
        """
    )


async def test_view_only_items_over_overlapping_sets(store):
    """FETCH of UID/FLAGS/RFC822.SIZE/MODSEQ only is answered from the
    session's view: overlapping and unordered ranges name each message
    once, in order; holes left by EXPUNGE are skipped in UID sets."""
    c, inbox = await selected(store, count=8)
    await store.store_flags(inbox.id, [2, 5], ["\\Seen", "$Work"], "add")
    await store.store_flags(inbox.id, [4], ["\\Deleted"], "add")
    await c.send("x1 EXPUNGE")
    sizes = {m.uid: m.size for m in await store.messages(inbox.id)}
    modseqs = {m.uid: m.modseq for m in await store.messages(inbox.id)}
    got = await c.send("a1 FETCH 6:*,1:2,2:3,5 (FLAGS)")
    assert got == [
        "* 1 FETCH (FLAGS (\\Recent))",
        "* 2 FETCH (FLAGS ($Work \\Recent \\Seen))",
        "* 3 FETCH (FLAGS (\\Recent))",
        "* 5 FETCH (FLAGS (\\Recent))",
        "* 6 FETCH (FLAGS (\\Recent))",
        "* 7 FETCH (FLAGS (\\Recent))",
        "a1 OK FETCH completed",
    ]
    got = await c.send("a2 UID FETCH 3:5,1,5:6 (FLAGS RFC822.SIZE MODSEQ)")
    assert got[0].startswith("* OK [HIGHESTMODSEQ ")  # RFC 7162 §3.1: MODSEQ enables it
    assert got[1:-1] == [
        f"* {n} FETCH (UID {u} FLAGS ({flags}) RFC822.SIZE {sizes[u]} MODSEQ ({modseqs[u]}))"
        for n, u, flags in [
            (1, 1, "\\Recent"),
            (3, 3, "\\Recent"),
            (4, 5, "$Work \\Recent \\Seen"),
            (5, 6, "\\Recent"),
        ]
    ]
    assert got[-1].startswith("a2 OK")
