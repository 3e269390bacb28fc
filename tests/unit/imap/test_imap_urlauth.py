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
