"""The webmail's server routes with aiohttp's client: the app's headers
(strict CSP, no inline script), the message frame's document, signed links
to inline (cid:) images, bad input answered plainly."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest

from support import append

BOB, PASSWORD = "bob@example.org", "correct horse"
AUTH = {"Authorization": aiohttp.encode_basic_auth(BOB, PASSWORD)}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
async def node(node_factory: Any) -> Any:
    node = await node_factory(listen=("http",))
    node.bob = await node.add_user(BOB, PASSWORD)
    return node


def url(node: Any, path: str) -> str:
    return f"http://127.0.0.1:{node.port('http')}{path}"


async def test_the_app_is_served_under_a_strict_csp_with_no_inline_script(node: Any) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/mail/")) as r:
            assert r.status == 200
            page = await r.text()
            csp = r.headers["Content-Security-Policy"]
            assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        # No inline script or style, no handler attribute: every script is a file.
        assert not re.search(r"<script(?![^>]*\bsrc=)", page)
        assert not re.search(r"\son[a-z]+=|<style|\sstyle=", page)
        total = len(page)
        for name in re.findall(r'(?:src|href)="/mail/static/([^"]+)"', page):
            async with client.get(url(node, f"/mail/static/{name}")) as r:
                assert r.status == 200
                total += len(await r.read())
        # The modules app.js imports.
        for name in ("jmap.js", "search.js", "compose.js"):
            async with client.get(url(node, f"/mail/static/{name}")) as r:
                assert r.status == 200 and r.content_type == "text/javascript"
                total += len(await r.read())
        assert total < 300 * 1024  # the first-load budget, uncompressed even
        async with client.get(url(node, "/mail/static/..%2fweb.py")) as r:
            assert r.status == 404
        async with client.get(url(node, "/mail/static/nothing.js")) as r:
            assert r.status == 404


async def test_inline_images_by_signed_link_and_the_frame_document(node: Any) -> None:
    message = EmailMessage()
    message["From"] = "carol@crepes.test"
    message["To"] = BOB
    message["Subject"] = "Look"
    message.set_content("see the picture")
    message.add_alternative(
        '<p>Here:</p><img src="cid:dot@crepes" alt="dot"><img src="https://evil.test/t.gif">',
        subtype="html",
    )
    message.get_payload()[1].add_related(PNG, "image", "png", cid="<dot@crepes>")
    inbox = await node.store.mailbox_get(node.bob.id, "INBOX")
    number = await append(node.store, inbox.id, message.as_bytes())
    async with aiohttp.ClientSession() as client:
        async with client.post(
            url(node, "/jmap/api/"),
            headers=AUTH,
            json={
                "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                "methodCalls": [["Email/query", {"accountId": f"A{node.bob.id}"}, "q"]],
            },
        ) as r:
            [email_id] = (await r.json())["methodResponses"][0][1]["ids"]
        assert number
        async with client.get(url(node, f"/webmail/message/{email_id}"), headers=AUTH) as r:
            assert (await r.json()) == {"blockedImages": 1}
        async with client.get(url(node, f"/webmail/message/{email_id}/body"), headers=AUTH) as r:
            assert r.status == 200
            csp = r.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "img-src 'self'" in csp
            document = await r.text()
        assert "evil.test" not in document
        [link] = re.findall(r'<img src="([^"]+)" alt="dot"', document)
        link = link.replace("&amp;", "&")
        assert link.startswith("/webmail/part?")
        # The frame sends no cookie: the signed link is enough, and only it.
        async with client.get(url(node, link)) as r:
            assert r.status == 200 and r.content_type == "image/png"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert await r.read() == PNG
        async with client.get(url(node, link.replace("t=image%2Fpng", "t=text%2Fhtml"))) as r:
            assert r.status == 403
        async with client.get(url(node, link[:-4] + "0000")) as r:
            assert r.status == 403
        async with client.get(
            url(node, f"/webmail/message/{email_id}/body?images=1"), headers=AUTH
        ) as r:
            assert "/proxy/image?" in await r.text()
        for path in ("/webmail/message/E999999/body", "/webmail/message/nonsense/explain"):
            async with client.get(url(node, path), headers=AUTH) as r:
                assert r.status == 404
        # Without credentials, nothing.
        async with client.get(url(node, f"/webmail/message/{email_id}/body")) as r:
            assert r.status == 401


@pytest.mark.parametrize(
    "body, status",
    [(b"{", 400), (b'{"username": 1, "password": "x"}', 400), (b"[]", 400), (b"{}", 400)],
)
async def test_login_with_bad_input_is_a_plain_error(node: Any, body: bytes, status: int) -> None:
    async with aiohttp.ClientSession() as client:
        headers = {"Content-Type": "application/json"}
        async with client.post(url(node, "/webmail/login"), data=body, headers=headers) as r:
            assert r.status == status
            assert r.content_type == "application/problem+json"


async def _login(client: aiohttp.ClientSession, node: Any) -> tuple[dict[str, str], str]:
    async with client.post(
        url(node, "/webmail/login"), json={"username": BOB, "password": PASSWORD}
    ) as r:
        assert r.status == 200
        csrf = (await r.json())["csrf"]
        secret = r.cookies["mailstack_session"].value
    return {"Cookie": f"mailstack_session={secret}", "X-CSRF-Token": csrf}, secret


@pytest.mark.parametrize(
    ("table", "later"),
    [
        ({}, 8 * 3600 + 5),  # idle past the default session_idle
        ({"session_idle": 10**6, "session_lifetime": 300}, 301),  # busy, but too old
    ],
)
async def test_webmail_sessions_expire_and_their_token_is_removed(
    node_factory: Any, monkeypatch: pytest.MonkeyPatch, table: dict[str, Any], later: float
) -> None:
    import time

    from mailstack.webmail import session

    node = await node_factory(listen=("http",), webmail=table)
    bob = await node.add_user(BOB, PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client:
        jar, secret = await _login(client, node)
        started = time.time()
        monkeypatch.setattr(session, "now", lambda: started + later - 60)
        async with client.get(url(node, "/jmap/session"), headers=jar) as r:
            assert r.status == 200  # not over yet
        monkeypatch.setattr(session, "now", lambda: started + later)
        # Copied out of the cookie into an Authorization field: over just the same.
        bearer = {"Authorization": f"Bearer {secret}"}
        async with client.get(url(node, "/jmap/session"), headers=bearer) as r:
            assert r.status == 401
        async with client.get(url(node, "/jmap/session"), headers=jar) as r:
            assert r.status == 401
            assert "Basic" not in r.headers["WWW-Authenticate"]
        assert await node.store.token_list(bob.id) == []  # revoked, not just refused
        monkeypatch.setattr(session, "now", time.time)
        async with client.get(url(node, "/webmail/session"), headers=jar) as r:
            assert (await r.json())["username"] is None
        # A new login starts a new session.
        jar, _ = await _login(client, node)
        async with client.get(url(node, "/webmail/session"), headers=jar) as r:
            assert (await r.json())["username"] == BOB
        monkeypatch.setattr(session, "now", lambda: time.time() + later + 60)
        async with client.get(url(node, "/webmail/session"), headers=jar) as r:
            assert (await r.json())["username"] is None
        assert await node.store.token_list(bob.id) == []
        # A token made with `mailstack token create` is not a session: no expiry.
        from mailstack.common.auth import new_token, token_digest

        cli = new_token()
        await node.store.token_add(bob.id, "phone", token_digest(cli))
        bearer = {"Authorization": f"Bearer {cli}"}
        async with client.get(url(node, "/jmap/session"), headers=bearer) as r:
            assert r.status == 200


async def test_the_composer_sanitizer_reads_a_body_sent_in_pieces_and_refuses_bad_ones(
    node: Any,
) -> None:
    """A rich-text body that arrives in several pieces is read whole (a
    ``content.read(n)`` would take the first piece only); a body past
    ``[limits] http_body`` is 413, one that is not {"html": str} 400."""
    import asyncio
    import json

    html = "<p>" + "word " * 4000 + '<img src="https://tracker.example/x.png"></p>'
    document = json.dumps({"html": html}).encode()

    async def pieces() -> Any:
        for start in range(0, len(document), 1000):
            yield document[start : start + 1000]
            await asyncio.sleep(0.01)

    async with aiohttp.ClientSession() as client:
        headers, _secret = await _login(client, node)
        target = url(node, "/webmail/sanitize")
        async with client.post(target, data=pieces(), headers=headers) as r:
            assert r.status == 200
            cleaned = (await r.json())["html"]
        assert cleaned.count("word") == 4000 and "tracker.example" not in cleaned
        for bad in (b"[]", b'{"html": 1}', b"{"):
            async with client.post(target, data=bad, headers=headers) as r:
                assert r.status == 400, bad
        limit = node.config.limits.http_body
        huge = json.dumps({"html": "x" * limit}).encode()
        async with client.post(target, data=huge, headers=headers) as r:
            assert r.status == 413
