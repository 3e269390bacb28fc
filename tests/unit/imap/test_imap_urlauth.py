"""URLAUTH (RFC 4467): GENURLAUTH, RESETKEY, URLFETCH, and CATENATE with
URLAUTH URLs (RFC 4469 §5)."""

from __future__ import annotations

import re

from transcript import PASSWORD, USER, Client, check, logged_in

from mailstack.imap import urls

from support import append

MESSAGE = (
    b"From: Zoe <zoe@z.example>\r\nSubject: lunch\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\npizza\r\n"
    b"--b\r\nContent-Type: application/pdf\r\n\r\nPDF\r\n--b--\r\n"
)
ENC_USER = USER.replace("@", "%40")
OTHER = "carol@hamburger.edu"


async def _generate(c: Client, rump: str) -> str:
    got = await c.send(f'g1 GENURLAUTH "{rump}" INTERNAL')
    assert got[-1] == "g1 OK GENURLAUTH completed", got
    m = re.fullmatch(r'\* GENURLAUTH "([^"]+)"', got[0])
    assert m is not None, got
    return m.group(1)


async def _fetch(c: Client, url: str) -> list[str]:
    got = await c.send(f'f1 URLFETCH "{url}"')
    assert got[-1] == "f1 OK URLFETCH completed", got
    return got[:-1]


async def test_capability_and_urlmech(store):
    c, _account, _inbox = await logged_in(store, 1)
    caps = await c.send("a1 CAPABILITY")
    assert "URLAUTH" in caps[0].split()
    got = await c.send("a2 EXAMINE INBOX")
    assert "* OK [URLMECH INTERNAL] URLAUTH mechanisms" in got


async def test_generate_and_fetch_a_part(store):
    c, account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, MESSAGE)
    rump = f"imap://{ENC_USER}@mx.test/INBOX/;uid={uid}/;section=1;urlauth=anonymous"
    url = await _generate(c, rump)
    assert url.startswith(rump + ":internal:")
    assert re.fullmatch(r"[0-9a-f]{64}", url.rsplit(":", 1)[1])
    # The same rump gets the same URL (one key per mailbox until RESETKEY).
    assert await _generate(c, rump) == url
    check("URLFETCH", [f'* URLFETCH "{url}" {{5}}', "pizza"], await _fetch(c, url))
    # A whole message, with UIDVALIDITY and a partial range.
    rump = (
        f"imap://{ENC_USER}@mx.test/INBOX;UIDVALIDITY={inbox.uidvalidity}/;UID={uid}"
        f"/;PARTIAL=0.4;URLAUTH=authuser"
    )
    url = await _generate(c, rump)
    check("URLFETCH", [f'* URLFETCH "{url}" {{4}}', "From"], await _fetch(c, url))


async def test_tampered_urls_get_nil(store):
    c, account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, MESSAGE)
    rump = f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid};URLAUTH=anonymous"
    url = await _generate(c, rump)
    token = url.rsplit(":", 1)[1]
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    tampered = [
        url[: -len(token)] + flipped,  # another verifier
        url.replace(f";UID={uid};", f";UID={uid}/;SECTION=1;"),  # another part
        url.replace("anonymous", "authuser"),  # another access
        url.replace(":internal:", ":other:"),  # another mechanism
        rump,  # no verifier at all
        url.replace("mx.test", "elsewhere.example"),  # another server
        f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid + 5};URLAUTH=anonymous:internal:{token}",
        "imap://mx.test/INBOX/;UID=1",
        "not a URL",
    ]
    for bad in tampered:
        assert await _fetch(c, bad) == [f'* URLFETCH "{bad}" NIL'], bad


async def test_access_identifiers(store):
    c, account, inbox = await logged_in(store, 0)
    await store.account_add(OTHER, PASSWORD)
    uid = await append(store, inbox.id, MESSAGE)
    base = f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid}/;SECTION=1;URLAUTH="
    made = {
        access: await _generate(c, base + access)
        for access in (
            "anonymous",
            "authuser",
            "user+carol%40hamburger.edu",
            f"user+{ENC_USER}",
            "submit+carol%40hamburger.edu",
        )
    }
    carol = Client(store)
    carol.ctx = c.ctx
    carol.session.ctx = c.ctx
    got = await carol.send(f"l1 LOGIN {OTHER} {PASSWORD}")
    assert got[-1].startswith("l1 OK")
    fetched = {
        access: (await _fetch(carol, url))[0].endswith("{5}") for access, url in made.items()
    }
    # RFC 4467 §3: user+NAME is NAME's only; submit+NAME only the submission
    # server's acting for NAME, never an IMAP user's.
    assert fetched == {
        "anonymous": True,
        "authuser": True,
        "user+carol%40hamburger.edu": True,
        f"user+{ENC_USER}": False,
        "submit+carol%40hamburger.edu": False,
    }
    submit = urls.Requester(OTHER, submit=True)
    found = await urls.resolve(
        store, c.ctx.parsed, "mx.test", made["submit+carol%40hamburger.edu"], submit
    )
    assert found == b"pizza"
    found = await urls.resolve(
        store,
        c.ctx.parsed,
        "mx.test",
        made["submit+carol%40hamburger.edu"],
        urls.Requester(USER, True),
    )
    assert found is urls.Refusal.UNAUTHORIZED


async def test_expire(store):
    c, account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, MESSAGE)
    past = await _generate(
        c,
        f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid};EXPIRE=2001-01-01T00:00:00Z;URLAUTH=anonymous",
    )
    future = await _generate(
        c,
        f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid};EXPIRE=2999-01-01T00:00:00+01:00"
        ";URLAUTH=anonymous",
    )
    assert await _fetch(c, past) == [f'* URLFETCH "{past}" NIL']
    assert (await _fetch(c, future))[0].endswith(f"{{{len(MESSAGE)}}}")


async def test_genurlauth_refusals(store):
    c, account, inbox = await logged_in(store, 0)
    await store.account_add(OTHER, PASSWORD)
    uid = await append(store, inbox.id, MESSAGE)
    good = f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid};URLAUTH=anonymous"
    refused = [
        f"imap://carol%40hamburger.edu@mx.test/INBOX/;UID={uid};URLAUTH=anonymous",
        f"imap://mx.test/INBOX/;UID={uid};URLAUTH=anonymous",
        f"imap://{ENC_USER}@elsewhere.example/INBOX/;UID={uid};URLAUTH=anonymous",
        f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid}",
        f"imap://{ENC_USER}@mx.test/Nowhere/;UID={uid};URLAUTH=anonymous",
        f"imap://{ENC_USER}@mx.test/INBOX;UIDVALIDITY=1/;UID={uid};URLAUTH=anonymous",
        f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid};URLAUTH=nobody",
        good + ":internal:" + "0" * 64,
    ]
    for n, rump in enumerate(refused):
        got = await c.send(f'r{n} GENURLAUTH "{rump}" INTERNAL')
        assert got == [f"r{n} NO [BADURL {rump}] Not a URL rump of this user on this server"] or (
            got == [f"r{n} NO [BADURL {rump}] No such mailbox"]
        ), (rump, got)
    await c.transcript(
        f"""
        C: m1 GENURLAUTH "{good}" SHA1
        S: m1 NO [BADURL {good}] Unknown URLAUTH mechanism
        C: m2 GENURLAUTH
        S: m2 BAD GENURLAUTH needs 1 to 100 URLs
        C: m3 GENURLAUTH "{good}"
        S: m3 BAD Missing URLAUTH mechanism
        C: m4 URLFETCH
        S: m4 BAD URLFETCH needs 1 to 100 URLs
        """
    )
    fresh = Client(store)
    assert (await fresh.send(f'n1 URLFETCH "{good}"'))[-1].startswith("n1 BAD")


async def test_resetkey_invalidates(store):
    c, account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, MESSAGE)
    drafts = await store.mailbox_get(account.id, "Drafts")
    other_uid = await append(store, drafts.id, MESSAGE)
    in_inbox = await _generate(c, f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid};URLAUTH=anonymous")
    in_drafts = await _generate(
        c, f"imap://{ENC_USER}@mx.test/Drafts/;UID={other_uid};URLAUTH=anonymous"
    )
    await c.transcript(
        """
        C: k1 RESETKEY INBOX INTERNAL
        S: k1 OK [URLMECH INTERNAL] Keys reset
        C: k2 RESETKEY Nowhere
        S: k2 NO [NONEXISTENT] No such mailbox
        C: k3 RESETKEY INBOX SHA1
        S: k3 NO Unknown URLAUTH mechanism
        """
    )
    assert await _fetch(c, in_inbox) == [f'* URLFETCH "{in_inbox}" NIL']
    assert (await _fetch(c, in_drafts))[0].endswith(f"{{{len(MESSAGE)}}}")
    # A new key: the same rump now gets another URL, which works.
    again = await _generate(c, in_inbox.rsplit(":", 2)[0])
    assert again != in_inbox
    assert (await _fetch(c, again))[0].endswith(f"{{{len(MESSAGE)}}}")
    got = await c.send("k4 RESETKEY")
    assert got == ["k4 OK All keys reset"]
    for url in (again, in_drafts):
        assert await _fetch(c, url) == [f'* URLFETCH "{url}" NIL']


async def test_keys_are_kept_in_the_store_not_shown(store):
    c, account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, MESSAGE)
    url = await _generate(c, f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid};URLAUTH=anonymous")
    records = await store.records(account.id, urls.KEY_KIND)
    assert len(records) == 1
    key = bytes.fromhex(__import__("json").loads(records[0].data)["key"])
    assert len(key) >= 16  # RFC 4467 §7: at least 128 bits
    assert key.hex() not in url
    # A new session (another listener, after a restart) verifies it the same.
    later = Client(store)
    await later.login()
    assert (await _fetch(later, url))[0].endswith(f"{{{len(MESSAGE)}}}")


async def test_catenate_with_urlauth(store):
    c, account, inbox = await logged_in(store, 0)
    await store.account_add(OTHER, PASSWORD)
    uid = await append(store, inbox.id, MESSAGE)
    url = await _generate(
        c,
        f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid}/;SECTION=1;URLAUTH=user+carol%40hamburger.edu",
    )
    carol = Client(store)
    got = await carol.send(f"l1 LOGIN {OTHER} {PASSWORD}")
    assert got[-1].startswith("l1 OK")
    await carol.transcript(
        f"""
        C: a1 APPEND INBOX CATENATE (TEXT {{16}}\\r\\nSubject: fwd\\r\\n\\r\\n URL "{url}")
        S: a1 OK [APPENDUID ...
        C: a2 SELECT INBOX
        S: ~
        S: a2 OK [READ-WRITE] SELECT completed
        C: a3 FETCH 1 BODY.PEEK[TEXT]
        S: * 1 FETCH (BODY[TEXT] {{5}}
        S: pizza)
        S: a3 OK FETCH completed
        """
    )
    bad = url[:-1] + ("0" if url[-1] != "0" else "1")
    got = await carol.send(f'a4 APPEND INBOX CATENATE (URL "{bad}")')
    assert got == [f"a4 NO [BADURL {bad}] Bad URL"]


async def test_a_mailbox_made_again_does_not_take_the_old_key(store):
    c, account, inbox = await logged_in(store, 0)
    box = await store.mailbox_create(account.id, "Box")
    uid = await append(store, box.id, MESSAGE)
    url = await _generate(c, f"imap://{ENC_USER}@mx.test/Box/;UID={uid};URLAUTH=anonymous")
    assert (await c.send("d1 DELETE Box"))[-1] == "d1 OK DELETE completed"
    again = await store.mailbox_create(account.id, "Box")
    assert await append(store, again.id, MESSAGE) == uid
    assert await _fetch(c, url) == [f'* URLFETCH "{url}" NIL']
    records = await store.records(account.id, urls.KEY_KIND)
    assert len(records) == 1  # the deleted mailbox's, until RESETKEY
    await c.send("d2 RESETKEY")
    assert await store.records(account.id, urls.KEY_KIND) == []


async def test_url_of_the_login_split_at_its_at_sign(store):
    # imap://bob@hamburger.edu/...: the login's local part as the user and
    # its domain, one this server keeps mail for, as the host (how
    # imaptest's urlauth script and Dovecot's users spell it); another
    # user's or another domain's URL is still refused.
    c, account, inbox = await logged_in(store, 0)
    await store.account_add(OTHER, PASSWORD)
    uid = await append(store, inbox.id, MESSAGE)
    rump = f"imap://bob@hamburger.edu/INBOX/;UID={uid}/;SECTION=1;URLAUTH=user+{USER}"
    url = await _generate(c, rump)
    check("URLFETCH", [f'* URLFETCH "{url}" {{5}}', "pizza"], await _fetch(c, url))
    for n, refused in enumerate([
        f"imap://carol@hamburger.edu/INBOX/;UID={uid};URLAUTH=anonymous",
        f"imap://bob@elsewhere.example/INBOX/;UID={uid};URLAUTH=anonymous",
    ]):
        got = await c.send(f'r{n} GENURLAUTH "{refused}" INTERNAL')
        assert got == [f"r{n} NO [BADURL {refused}] Not a URL rump of this user on this server"]
    # Fetched by another user, a URL for bob only gives nothing.
    other = Client(store)
    got = await other.send(f"l1 LOGIN {OTHER} {PASSWORD}")
    assert got[-1].startswith("l1 OK"), got
    check("URLFETCH", [f'* URLFETCH "{url}" NIL'], await _fetch(other, url))


# -- RFC 5524: URLFETCH with BODYPARTSTRUCTURE, BINARY and BODY -----------------

PARTS = (
    b"From: Zoe <zoe@z.example>\r\nSubject: parts\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n"
    b"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: x-unprintable\r\n\r\nsecret\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nsoup\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\nplain\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
    b"--b--\r\n"
)
# Part 1 as stored, and as BINARY gives it ("hello world", decoded).
BASE64_PART = '("text" "plain" ("charset" "us-ascii") NIL NIL "base64" 16 1 NIL NIL NIL NIL)'
DECODED_PART = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 0 NIL NIL NIL NIL)'
UNPRINTABLE_PART = (
    '("text" "plain" ("charset" "us-ascii") NIL NIL "x-unprintable" 6 1 NIL NIL NIL NIL)'
)
HEADER_PART = '("text" "rfc822-headers" NIL NIL NIL "7bit" 109 5 NIL NIL NIL NIL)'
NUL_PART = '("application" "octet-stream" NIL NIL NIL "binary" 3 NIL NIL NIL NIL)'
UTF8_PART = '("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 10 0 NIL NIL NIL NIL)'


async def _part_urls(c: Client, uid: int) -> dict[str, str]:
    """URLs of PARTS's message, its parts 1-6, header and text, for bob."""
    base = f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid}"
    sections = {"": "", "1": "/;SECTION=1", "2": "/;SECTION=2", "3": "/;SECTION=3"}
    sections |= {"4": "/;SECTION=4", "HEADER": "/;SECTION=HEADER", "TEXT": "/;SECTION=TEXT"}
    sections |= {"5": "/;SECTION=5", "6": "/;SECTION=6"}
    return {
        name: await _generate(c, f"{base}{section};URLAUTH=user+{ENC_USER}")
        for name, section in sections.items()
    }


async def test_urlauth_binary_is_advertised(store):
    c, _account, _inbox = await logged_in(store, 0)
    caps = (await c.send("a1 CAPABILITY"))[0].split()
    assert "URLAUTH" in caps and "URLAUTH=BINARY" in caps


async def test_urlfetch_binary(store):
    c, _account, inbox = await logged_in(store, 0)
    url = await _part_urls(c, await append(store, inbox.id, PARTS))
    # RFC 5524 §3.1 BINARY: the content with its transfer encoding undone;
    # NUL octets go in literal8 (§5); an encoding this server cannot undo
    # gives NIL (§5 "On decoding error, NIL should be used").
    await c.transcript(
        f"""
        C: b1 URLFETCH ("{url["1"]}" BINARY)
        S: * URLFETCH "{url["1"]}" (BINARY {{11}}
        S: hello world)
        S: b1 OK URLFETCH completed
        C: b2 URLFETCH ("{url["3"]}" binary)
        S: * URLFETCH "{url["3"]}" (BINARY ~{{3}}
        S: \x00\x01\x02)
        S: b2 OK URLFETCH completed
        C: b3 URLFETCH ("{url["2"]}" BINARY)
        S: * URLFETCH "{url["2"]}" (BINARY NIL)
        S: b3 OK URLFETCH completed
        C: b4 URLFETCH ("{url["4"]}" BINARY)
        S: * URLFETCH "{url["4"]}" (BINARY {{10}}
        S: café soup)
        S: b4 OK URLFETCH completed
        """
    )
    # A whole message, or its header, has no transfer encoding: as it is.
    got = await c.send(f'b5 URLFETCH ("{url[""]}" BINARY)')
    assert got[0] == f'* URLFETCH "{url[""]}" (BINARY {{{len(PARTS)}}}', got
    got = await c.send(f'b6 URLFETCH ("{url["HEADER"]}" BINARY)')
    header = PARTS[: PARTS.index(b"\r\n\r\n") + 4]
    assert got[0] == f'* URLFETCH "{url["HEADER"]}" (BINARY {{{len(header)}}}', got


async def test_urlfetch_bodypartstructure(store):
    c, _account, inbox = await logged_in(store, 0)
    url = await _part_urls(c, await append(store, inbox.id, PARTS))
    # RFC 5524 §3.1 BODYPARTSTRUCTURE alone: the part's BODYSTRUCTURE, and
    # no data.
    await c.transcript(
        f"""
        C: s1 URLFETCH ("{url["1"]}" BODYPARTSTRUCTURE)
        S: * URLFETCH "{url["1"]}" (BODYPARTSTRUCTURE {BASE64_PART})
        S: s1 OK URLFETCH completed
        C: s2 URLFETCH ("{url["2"]}" BODYPARTSTRUCTURE)
        S: * URLFETCH "{url["2"]}" (BODYPARTSTRUCTURE {UNPRINTABLE_PART})
        S: s2 OK URLFETCH completed
        C: s3 URLFETCH ("{url["HEADER"]}" BODYPARTSTRUCTURE)
        S: * URLFETCH "{url["HEADER"]}" (BODYPARTSTRUCTURE {HEADER_PART})
        S: s3 OK URLFETCH completed
        """
    )
    # The whole message's, and its TEXT's: the message's BODYSTRUCTURE.
    await c.send("s4 SELECT INBOX")
    fetched = await c.send("s5 FETCH 1 BODYSTRUCTURE")
    structure = fetched[0].removeprefix("* 1 FETCH (BODYSTRUCTURE ").removesuffix(")")
    for name in ("", "TEXT"):
        got = await c.send(f's6 URLFETCH ("{url[name]}" BODYPARTSTRUCTURE)')
        assert got == [
            f'* URLFETCH "{url[name]}" (BODYPARTSTRUCTURE {structure})',
            "s6 OK URLFETCH completed",
        ], (name, got)


async def test_urlfetch_combinations(store):
    c, _account, inbox = await logged_in(store, 0)
    url = await _part_urls(c, await append(store, inbox.id, PARTS))
    await c.transcript(
        f"""
        C: c1 URLFETCH ("{url["1"]}" BINARY BODYPARTSTRUCTURE)
        S: * URLFETCH "{url["1"]}" (BODYPARTSTRUCTURE {DECODED_PART}) (BINARY {{11}}
        S: hello world)
        S: c1 OK URLFETCH completed
        C: c2 URLFETCH ("{url["1"]}" BODYPARTSTRUCTURE BODY)
        S: * URLFETCH "{url["1"]}" (BODYPARTSTRUCTURE {BASE64_PART}) (BODY {{16}}
        S: aGVsbG8gd29ybGQ=)
        S: c2 OK URLFETCH completed
        C: c3 URLFETCH ("{url["1"]}" BODY)
        S: * URLFETCH "{url["1"]}" (BODY {{16}}
        S: aGVsbG8gd29ybGQ=)
        S: c3 OK URLFETCH completed
        C: c4 URLFETCH ("{url["2"]}" bodypartstructure binary)
        S: * URLFETCH "{url["2"]}" (BODYPARTSTRUCTURE {UNPRINTABLE_PART}) (BINARY NIL)
        S: c4 OK URLFETCH completed
        C: c5 URLFETCH ("{url["3"]}" BODYPARTSTRUCTURE BINARY)
        S: * URLFETCH "{url["3"]}" (BODYPARTSTRUCTURE {NUL_PART}) (BINARY ~{{3}}
        S: \x00\x01\x02)
        S: c5 OK URLFETCH completed
        C: c6 URLFETCH ("{url["4"]}" BODYPARTSTRUCTURE BINARY)
        S: * URLFETCH "{url["4"]}" (BODYPARTSTRUCTURE {UTF8_PART}) (BINARY {{10}}
        S: café soup)
        S: c6 OK URLFETCH completed
        """
    )
    # RFC 5524 §3: a URL in parentheses without parameters, or alone, is
    # RFC 4467's URLFETCH; both forms mix in one command.
    await c.transcript(
        f"""
        C: c7 URLFETCH ("{url["1"]}") "{url["1"]}" ("{url["3"]}" BINARY)
        S: * URLFETCH "{url["1"]}" {{16}}
        S: aGVsbG8gd29ybGQ=
        S: * URLFETCH "{url["1"]}" {{16}}
        S: aGVsbG8gd29ybGQ=
        S: * URLFETCH "{url["3"]}" (BINARY ~{{3}}
        S: \x00\x01\x02)
        S: c7 OK URLFETCH completed
        """
    )


async def test_urlfetch_binary_with_a_partial_range(store):
    c, _account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, PARTS)
    url = await _generate(
        c, f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid}/;SECTION=1/;PARTIAL=6.5;URLAUTH=anonymous"
    )
    # The range is of the decoded octets, as FETCH BINARY[1]<6.5> takes it;
    # BODYPARTSTRUCTURE describes the whole part.
    await c.transcript(
        f"""
        C: p1 URLFETCH ("{url}" BINARY BODYPARTSTRUCTURE)
        S: * URLFETCH "{url}" (BODYPARTSTRUCTURE {DECODED_PART}) (BINARY {{5}}
        S: world)
        S: p1 OK URLFETCH completed
        C: p2 URLFETCH ("{url}" BODY)
        S: * URLFETCH "{url}" (BODY {{5}}
        S: 8gd29)
        S: p2 OK URLFETCH completed
        """
    )


async def test_extended_urlfetch_of_a_url_that_does_not_verify(store):
    c, _account, inbox = await logged_in(store, 0)
    url = await _part_urls(c, await append(store, inbox.id, PARTS))
    token = url["1"].rsplit(":", 1)[1]
    bad = url["1"][: -len(token)] + ("0" if token[0] != "0" else "1") + token[1:]
    missing = url["1"].replace("SECTION=1", "SECTION=9")
    # RFC 5524 §5 urldata-error: the URL and NIL, whatever was asked; the
    # other URLs of the command are answered as usual.
    await c.transcript(
        f"""
        C: n1 URLFETCH ("{bad}" BINARY BODYPARTSTRUCTURE) ("{url["1"]}" BINARY)
        S: * URLFETCH "{bad}" NIL
        S: * URLFETCH "{url["1"]}" (BINARY {{11}}
        S: hello world)
        S: n1 OK URLFETCH completed
        C: n2 URLFETCH ("{missing}" BODYPARTSTRUCTURE)
        S: * URLFETCH "{missing}" NIL
        S: n2 OK URLFETCH completed
        C: n3 URLFETCH ("not a URL" BODY)
        S: * URLFETCH "not a URL" NIL
        S: n3 OK URLFETCH completed
        """
    )
    # Another user, for whom the URL is not, gets NIL too.
    await store.account_add(OTHER, PASSWORD)
    carol = Client(store)
    assert (await carol.send(f"l1 LOGIN {OTHER} {PASSWORD}"))[-1].startswith("l1 OK")
    got = await carol.send(f'n4 URLFETCH ("{url["1"]}" BINARY)')
    assert got == [f'* URLFETCH "{url["1"]}" NIL', "n4 OK URLFETCH completed"]


async def test_extended_urlfetch_of_what_is_not_there(store):
    # A URL that verifies but names a part the message lacks, or a message
    # since expunged: NIL (RFC 5524 §5 urldata-error), as RFC 4467's form.
    c, _account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, PARTS)
    base = f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid}"
    absent = await _generate(c, f"{base}/;SECTION=7;URLAUTH=user+{ENC_USER}")
    whole = await _generate(c, f"{base};URLAUTH=user+{ENC_USER}")
    got = await c.send(f'm1 URLFETCH ("{absent}" BINARY BODYPARTSTRUCTURE) "{absent}"')
    assert got == [f'* URLFETCH "{absent}" NIL'] * 2 + ["m1 OK URLFETCH completed"]
    await store.expunge(inbox.id, [uid], require_deleted=False)
    got = await c.send(f'm2 URLFETCH ("{whole}" BODY)')
    assert got == [f'* URLFETCH "{whole}" NIL', "m2 OK URLFETCH completed"]


async def test_extended_urlfetch_syntax_errors(store):
    c, _account, inbox = await logged_in(store, 0)
    url = await _part_urls(c, await append(store, inbox.id, PARTS))
    one = url["1"]
    # RFC 5524 §3.1: "Metadata items MUST NOT appear more than once per URL
    # requested, and clients MUST NOT request both BINARY and BODY."
    await c.transcript(
        f"""
        C: e1 URLFETCH ("{one}" BINARY BODY)
        S: e1 BAD URLFETCH takes BINARY or BODY, not both
        C: e2 URLFETCH ("{one}" BINARY binary)
        S: e2 BAD URLFETCH parameter given twice
        C: e3 URLFETCH ("{one}" PARTIAL)
        S: e3 BAD Unknown URLFETCH parameter
        C: e4 URLFETCH ("{one}" "BINARY")
        S: e4 BAD Unknown URLFETCH parameter
        C: e5 URLFETCH ("{one}" (BINARY))
        S: e5 BAD Unknown URLFETCH parameter
        C: e6 URLFETCH ()
        S: e6 BAD Missing URL
        C: e7 URLFETCH (("{one}") BINARY)
        S: e7 BAD Expected URL
        C: e8 URLFETCH "{one}" ("{one}" BODY BINARY)
        S: e8 BAD URLFETCH takes BINARY or BODY, not both
        C: e9 URLFETCH ("{one}" BINARY
        S: e9 BAD ...
        """
    )


async def test_urlfetch_binary_of_a_part_sent_as_it_is(store):
    """BINARY of a 7bit part, or of a message/rfc822 part (no encoding of
    its own), is its octets as they are, and BODYPARTSTRUCTURE with BINARY
    describes it as FETCH BODYSTRUCTURE does."""
    c, _account, inbox = await logged_in(store, 0)
    url = await _part_urls(c, await append(store, inbox.id, PARTS))
    await c.send("s1 SELECT INBOX")
    for name in ("5", "6"):
        body = await c.send(f"s2 FETCH 1 BODY.PEEK[{name}]")
        octets = body[0].removeprefix(f"* 1 FETCH (BODY[{name}] ")
        got = await c.send(f'b1 URLFETCH ("{url[name]}" BINARY)')
        assert got[0] == f'* URLFETCH "{url[name]}" (BINARY {octets}', (name, got)
        assert got[1:] == body[1:-1] + ["b1 OK URLFETCH completed"], (name, got)
    fetched = await c.send("s3 FETCH 1 BODYSTRUCTURE")
    structure = fetched[0].removeprefix("* 1 FETCH (BODYSTRUCTURE ")
    part5 = '("text" "plain" NIL NIL NIL "7bit" 5 1 NIL NIL NIL NIL)'
    assert part5 in structure
    got = await c.send(f'b2 URLFETCH ("{url["5"]}" BODYPARTSTRUCTURE BINARY)')
    assert got[0] == f'* URLFETCH "{url["5"]}" (BODYPARTSTRUCTURE {part5}) (BINARY {{5}}', got


async def test_urlfetch_of_a_section_that_is_no_section_is_nil(store):
    c, _account, inbox = await logged_in(store, 0)
    uid = await append(store, inbox.id, PARTS)
    base = f"imap://{ENC_USER}@mx.test/INBOX/;UID={uid}"
    url = await _generate(c, f"{base}/;SECTION=NOT.A.SECTION;URLAUTH=user+{ENC_USER}")
    assert await _fetch(c, url) == [f'* URLFETCH "{url}" NIL']
    got = await c.send(f'b1 URLFETCH ("{url}" BODY)')
    assert got == [f'* URLFETCH "{url}" NIL', "b1 OK URLFETCH completed"]
