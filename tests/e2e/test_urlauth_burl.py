"""URLAUTH (RFC 4467) over imaplib and BURL (RFC 4468) over smtplib on one
node: a draft saved over IMAP is authorized with GENURLAUTH, submitted with
BURL, and received; tampered and reset URLs are refused."""

from __future__ import annotations

import asyncio
import imaplib
import re
import smtplib
from typing import Any

import pytest

from support import submission_client

ALICE = "alice@crepes.fr"
BOB = "bob@crepes.fr"
PASSWORD = "hungry"
DRAFT = (
    b"From: alice@crepes.fr\r\nTo: bob@crepes.fr\r\nSubject: ketchup\r\n\r\n"
    b"Do you like ketchup?\r\n"
)


@pytest.fixture
async def node(node_factory: Any) -> Any:
    node = await node_factory(listen=("imap", "submission"), hostname="crepes.fr")
    await node.add_user(ALICE, PASSWORD)
    await node.add_user(BOB, PASSWORD)
    return node


def imap(node: Any, user: str = ALICE) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
    client.login(user, PASSWORD)
    return client


def genurlauth(client: imaplib.IMAP4, rump: str) -> str:
    typ, data = client.xatom("GENURLAUTH", f'"{rump}"', "INTERNAL")
    assert typ == "OK", data
    _typ, made = client._untagged_response(typ, data, "GENURLAUTH")
    return made[0].decode().strip('"')


def urlfetch(client: imaplib.IMAP4, url: str) -> Any:
    typ, data = client.xatom("URLFETCH", f'"{url}"')
    assert typ == "OK", data
    _typ, got = client._untagged_response(typ, data, "URLFETCH")
    return got[0]


def draft_rump(client: imaplib.IMAP4, access: str) -> str:
    typ, data = client.append("Drafts", "(\\Draft)", None, DRAFT)
    assert typ == "OK", data
    m = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    assert m is not None, data
    validity, uid = m.groups()
    return (
        f"imap://alice%40crepes.fr@crepes.fr/Drafts;UIDVALIDITY={validity.decode()}"
        f"/;UID={uid.decode()};URLAUTH={access}"
    )


def submission(node: Any, user: str = ALICE) -> smtplib.SMTP:
    smtp = submission_client(node.port("submission"), user, PASSWORD)
    smtp.ehlo()
    return smtp


def burl_send(smtp: smtplib.SMTP, url: str, sender: str = ALICE) -> tuple[int, bytes]:
    assert smtp.mail(sender)[0] == 250
    assert smtp.rcpt(BOB)[0] == 250
    return smtp.docmd("BURL", f"{url} LAST")


async def inbox(node: Any, address: str) -> list[bytes]:
    account = await node.store.account_get(address)
    box = await node.store.mailbox_get(account.id, "INBOX")
    return [
        await node.store.message_bytes(box.id, m.uid) for m in await node.store.messages(box.id)
    ]


async def test_genurlauth_then_burl_delivers(node: Any) -> None:
    def scenario() -> tuple[Any, ...]:
        client = imap(node)
        caps = client.capabilities
        url = genurlauth(client, draft_rump(client, "submit+alice%40crepes.fr"))
        # URLFETCH by the user: submit+ is the submission server's only.
        fetched_by_user = urlfetch(client, url)
        with submission(node) as smtp:
            burl = smtp.esmtp_features.get("burl")
            sent = burl_send(smtp, url)
        client.logout()
        return caps, url, fetched_by_user, burl, sent

    caps, url, fetched_by_user, burl, sent = await asyncio.to_thread(scenario)
    assert "URLAUTH" in caps
    assert re.search(r";URLAUTH=submit\+alice%40crepes\.fr:internal:[0-9a-f]{64}\Z", url)
    assert fetched_by_user.endswith(b" NIL")
    assert burl == "imap"
    assert sent[0] == 250, sent
    [received] = await inbox(node, BOB)
    assert received.endswith(DRAFT)
    assert b"with ESMTPSA" in received


async def test_urlfetch_anonymous_url_by_another_user(node: Any) -> None:
    def scenario() -> Any:
        alice = imap(node)
        url = genurlauth(alice, draft_rump(alice, "anonymous"))
        bob = imap(node, BOB)
        got = urlfetch(bob, url)
        bad = urlfetch(bob, url[:-4] + "0000" if not url.endswith("0000") else url[:-4] + "1111")
        return got, bad

    got, bad = await asyncio.to_thread(scenario)
    assert got[1] == DRAFT
    assert bad.endswith(b" NIL")


async def test_tampered_foreign_and_reset_urls_are_refused(node: Any) -> None:
    def scenario() -> dict[str, tuple[int, bytes]]:
        client = imap(node)
        url = genurlauth(client, draft_rump(client, "submit+alice%40crepes.fr"))
        token = url.rsplit(":", 1)[1]
        tampered = url[: -len(token)] + ("f" if token[0] != "f" else "e") + token[1:]
        results = {}
        with submission(node) as smtp:
            results["tampered"] = burl_send(smtp, tampered)
            results["foreign"] = burl_send(smtp, url.replace("@crepes.fr/", "@elsewhere.example/"))
            results["malformed"] = burl_send(smtp, "http://crepes.fr/x")
        with submission(node, BOB) as smtp:
            # Another user's submission session may not use alice's submit+ URL.
            results["bob"] = burl_send(smtp, url, sender=BOB)
        typ, data = client.xatom("RESETKEY")
        assert typ == "OK", data
        with submission(node) as smtp:
            results["reset"] = burl_send(smtp, url)
        client.logout()
        return results

    results = await asyncio.to_thread(scenario)
    assert results["tampered"][0] == 554 and results["tampered"][1].startswith(b"5.7.0")
    assert results["foreign"][0] == 554 and results["foreign"][1].startswith(b"5.7.14")
    assert results["malformed"][0] == 554 and results["malformed"][1].startswith(b"5.5.4")
    assert results["bob"][0] == 554 and results["bob"][1].startswith(b"5.7.0")
    assert results["reset"][0] == 554 and results["reset"][1].startswith(b"5.7.0")
    assert await inbox(node, BOB) == []


async def test_burl_mixed_with_bdat(node: Any) -> None:
    header = b"From: alice@crepes.fr\r\nTo: bob@crepes.fr\r\nSubject: two parts\r\n\r\n"

    def scenario() -> tuple[tuple[int, bytes], ...]:
        client = imap(node)
        rump = draft_rump(client, "submit+alice%40crepes.fr")
        # The draft's body only (RFC 5092 ;SECTION=TEXT) after a BDAT header.
        url = genurlauth(client, rump.replace(";URLAUTH=", "/;SECTION=TEXT;URLAUTH="))
        with submission(node) as smtp:
            assert smtp.mail(ALICE)[0] == 250
            assert smtp.rcpt(BOB)[0] == 250
            smtp.send(b"BDAT %d\r\n" % len(header) + header)
            chunk = smtp.getreply()
            last = smtp.docmd("BURL", f"{url} LAST")
        return chunk, last

    chunk, last = await asyncio.to_thread(scenario)
    assert chunk[0] == 250 and last[0] == 250, (chunk, last)
    [received] = await inbox(node, BOB)
    assert received.endswith(b"Subject: two parts\r\n\r\nDo you like ketchup?\r\n")


async def test_the_trace_never_shows_a_verifier(node_factory: Any, capsys: Any) -> None:
    node = await node_factory(listen=("imap", "submission"), hostname="crepes.fr", trace=True)
    await node.add_user(ALICE, PASSWORD)
    await node.add_user(BOB, PASSWORD)

    def scenario() -> tuple[str, tuple[int, bytes]]:
        client = imap(node)
        url = genurlauth(client, draft_rump(client, "submit+alice%40crepes.fr"))
        urlfetch(client, url)
        with submission(node) as smtp:
            sent = burl_send(smtp, url)
        client.logout()
        return url, sent

    url, sent = await asyncio.to_thread(scenario)
    assert sent[0] == 250
    out = capsys.readouterr().out
    token = url.rsplit(":", 1)[1]
    assert "GENURLAUTH" in out and "BURL" in out
    assert token not in out
    assert out.count(";URLAUTH=submit+alice%40crepes.fr:internal:[verifier elided]") >= 3


async def test_burl_of_a_message_gone_since_the_url_was_made(node: Any) -> None:
    """A URL that verifies but names a message expunged since, or a part the
    message does not have: 554 5.6.6 (RFC 4468 §6), nothing delivered."""

    def scenario() -> dict[str, tuple[int, bytes]]:
        client = imap(node)
        rump = draft_rump(client, "submit+alice%40crepes.fr")
        no_part = genurlauth(client, rump.replace(";URLAUTH=", "/;SECTION=9.9;URLAUTH="))
        url = genurlauth(client, rump)
        results = {}
        with submission(node) as smtp:
            results["no part"] = burl_send(smtp, no_part)
        client.select("Drafts")
        uid = rump.split(";UID=")[1].split(";")[0]
        assert client.uid("STORE", uid, "+FLAGS", "(\\Deleted)")[0] == "OK"
        assert client.expunge()[0] == "OK"
        with submission(node) as smtp:
            results["gone"] = burl_send(smtp, url)
        client.logout()
        return results

    results = await asyncio.to_thread(scenario)
    for name, (code, text) in results.items():
        assert code == 554 and text.startswith(b"5.6.6"), (name, code, text)
    assert await inbox(node, BOB) == []


async def test_burl_while_the_store_is_away_is_451_4_4_1(node: Any, monkeypatch: Any) -> None:
    """RFC 4468 §6: the IMAP server (here, the store behind it) cannot be
    reached now: 451 4.4.1, nothing delivered, and the same transaction
    goes through once it is back."""
    from mailstack.errors import StoreUnavailable

    real = node.burl_octets

    async def away(url: str, user: str) -> Any:
        raise StoreUnavailable("the PostgreSQL store is unavailable")

    def scenario() -> tuple[tuple[int, bytes], tuple[int, bytes]]:
        client = imap(node)
        url = genurlauth(client, draft_rump(client, "submit+alice%40crepes.fr"))
        client.logout()
        with submission(node) as smtp:
            monkeypatch.setattr(node, "burl_octets", away)
            refused = burl_send(smtp, url)
            smtp.rset()
            monkeypatch.setattr(node, "burl_octets", real)
            sent = burl_send(smtp, url)
        return refused, sent

    refused, sent = await asyncio.to_thread(scenario)
    assert refused[0] == 451 and refused[1].startswith(b"4.4.1"), refused
    assert sent[0] == 250, sent
    assert len(await inbox(node, BOB)) == 1


ATTACHED = (
    b"From: alice@crepes.fr\r\nTo: bob@crepes.fr\r\nSubject: photo\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n'
    b"--x\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
    b"--x\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"iVBORw0KGgoAAAAN\r\n--x--\r\n"
)


async def test_urlfetch_binary_over_imaplib(node: Any) -> None:
    # RFC 5524: a third party fetches an attachment decoded, with its
    # BODYPARTSTRUCTURE, by a URL another user authorized for it.
    def scenario() -> tuple[list[bytes], Any, Any]:
        alice = imap(node)
        typ, data = alice.append("INBOX", None, None, ATTACHED)
        assert typ == "OK", data
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()  # type: ignore[union-attr]
        url = genurlauth(
            alice,
            f"imap://alice%40crepes.fr@crepes.fr/INBOX/;UID={uid}/;SECTION=2"
            ";URLAUTH=user+bob%40crepes.fr",
        )
        bob = imap(node, BOB)
        caps = bob.capabilities
        typ, data = bob.xatom("URLFETCH", f'("{url}" BODYPARTSTRUCTURE BINARY)')
        assert typ == "OK", data
        _typ, got = bob._untagged_response(typ, data, "URLFETCH")
        typ, data = alice.xatom("URLFETCH", f'("{url}" BINARY)')
        _typ, refused = alice._untagged_response(typ, data, "URLFETCH")
        return list(caps), got, refused

    caps, got, refused = await asyncio.to_thread(scenario)
    assert "URLAUTH=BINARY" in caps
    # imaplib hands a response with a literal as (text before, literal).
    head, data = got[0]
    assert head.endswith(
        b' (BODYPARTSTRUCTURE ("image" "png" NIL NIL NIL "binary" 12 NIL NIL NIL NIL))'
        b" (BINARY ~{12}"
    ), head
    assert data == b"\x89PNG\r\n\x1a\n\x00\x00\x00\r"
    # The URL is bob's: alice, its owner, gets NIL.
    assert refused[0].endswith(b" NIL"), refused
