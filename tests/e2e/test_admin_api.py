"""The admin JSON API (/admin/api, docs/admin.md) over real HTTP with
aiohttp's client: every endpoint for an admin; 401 without a login, 403 for
a normal user and for a removed role; the webmail cookie session with its
CSRF token, and bearer tokens for scripts; every action logged with its
actor, never a password."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import time
from typing import Any

import aiohttp
import pytest

from mailstack.common.auth import new_token, token_digest
from mailstack.logs import TEXT_FORMAT
from mailstack.store import NewEntry, NewRecipient

from support import wait_served

ADMIN, ADMIN_PASSWORD = "root@example.org", "admin password"
BOB, BOB_PASSWORD = "bob@example.org", "bob password"
NEW_PASSWORD = "a brand new secret"


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def submission_login(node: Any, user: str, password: str) -> None:
    with smtplib.SMTP("127.0.0.1", node.port("submission"), timeout=10) as smtp:
        smtp.starttls(context=tls_context())
        smtp.login(user, password)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


@pytest.fixture
async def node(node_factory: Any, tmp_path: Any) -> Any:
    log_file = tmp_path / "node.log"
    node = await node_factory(
        listen=("http", "dns", "submission"), log={"file": str(log_file)}
    )
    # The node's log file, as `mailstack serve` would write it.
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    node.admin = await node.add_user(ADMIN, ADMIN_PASSWORD)
    await node.store.account_set(ADMIN, admin=True)
    node.bob = await node.add_user(BOB, BOB_PASSWORD)
    node.log_file = log_file
    yield node
    root.removeHandler(handler)
    root.setLevel(previous)
    handler.close()


def url(node: Any, path: str) -> str:
    return f"http://127.0.0.1:{node.port('http')}{path}"


async def call(
    client: aiohttp.ClientSession,
    node: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    auth: dict[str, str] | None = None,
    status: int = 200,
) -> Any:
    headers = basic(ADMIN, ADMIN_PASSWORD) if auth is None else auth
    async with client.request(method, url(node, path), json=body, headers=headers) as r:
        answer = await r.json(content_type=None)
        assert r.status == status, answer
        return answer


ENDPOINTS = [
    ("GET", "/admin/api/me"),
    ("GET", "/admin/api/domains"),
    ("POST", "/admin/api/domains"),
    ("GET", "/admin/api/domains/example.org/records"),
    ("GET", "/admin/api/domains/example.org/check"),
    ("DELETE", "/admin/api/domains/example.org"),
    ("GET", "/admin/api/accounts"),
    ("POST", "/admin/api/accounts"),
    ("GET", f"/admin/api/accounts/{BOB}"),
    ("PATCH", f"/admin/api/accounts/{BOB}"),
    ("DELETE", f"/admin/api/accounts/{BOB}"),
    ("GET", "/admin/api/aliases"),
    ("POST", "/admin/api/aliases"),
    ("DELETE", "/admin/api/aliases?source=x@example.org"),
    ("GET", "/admin/api/dkim"),
    ("POST", "/admin/api/dkim/example.org/rotate"),
    ("GET", "/admin/api/queue"),
    ("POST", "/admin/api/queue/retry"),
    ("GET", "/admin/api/queue/1"),
    ("POST", "/admin/api/queue/1/retry"),
    ("POST", "/admin/api/queue/1/bounce"),
    ("POST", "/admin/api/queue/1/hold"),
    ("POST", "/admin/api/queue/1/release"),
    ("DELETE", "/admin/api/queue/1"),
    ("GET", "/admin/api/logs"),
    ("GET", "/admin/api/logins/failed"),
    ("GET", "/admin/api/certificates"),
]


async def test_no_login_is_401_and_a_normal_user_403_everywhere(node: Any) -> None:
    async with aiohttp.ClientSession() as client:
        for method, path in ENDPOINTS:
            async with client.request(method, url(node, path), json={}) as r:
                assert r.status == 401, (method, path)
                assert "WWW-Authenticate" in r.headers
            headers = basic(BOB, BOB_PASSWORD)
            async with client.request(method, url(node, path), json={}, headers=headers) as r:
                assert r.status == 403, (method, path)
    # Nothing was changed by those attempts.
    assert await node.store.account_get(BOB) is not None
    assert await node.store.is_local_domain("example.org")


async def test_a_role_taken_away_or_a_disabled_admin_is_refused_at_once(node: Any) -> None:
    async with aiohttp.ClientSession() as client:
        assert (await call(client, node, "GET", "/admin/api/me"))["address"] == ADMIN
        await node.store.account_set(ADMIN, admin=False)
        await call(client, node, "GET", "/admin/api/me", status=403)
        await node.store.account_set(ADMIN, admin=True, disabled=True)
        await call(client, node, "GET", "/admin/api/me", status=401)


async def test_accounts_aliases_passwords_quota_disable_and_admin(node: Any) -> None:
    async with aiohttp.ClientSession() as client:
        carol = "carol@example.org"
        added = await call(
            client, node, "POST", "/admin/api/accounts",
            {"address": carol, "password": "carol's secret", "quota": 10_000}, status=201,
        )
        assert added["address"] == carol and added["quota"] == 10_000 and not added["admin"]
        await call(
            client, node, "POST", "/admin/api/accounts",
            {"address": carol, "password": "carol's secret"}, status=409,
        )
        await call(
            client, node, "POST", "/admin/api/accounts",
            {"address": "dan@nowhere.test", "password": "dan's secret"}, status=404,
        )
        await call(
            client, node, "POST", "/admin/api/accounts",
            {"address": "not an address", "password": "x"}, status=400,
        )
        listed = await call(client, node, "GET", "/admin/api/accounts?domain=example.org")
        assert [a["address"] for a in listed] == [BOB, carol, ADMIN]
        assert (await call(client, node, "GET", f"/admin/api/accounts/{carol}"))["quota"] == 10_000
        await call(client, node, "GET", "/admin/api/accounts/nobody@example.org", status=404)

        # Password reset: the new one logs in, the old one no longer does.
        await call(client, node, "PATCH", f"/admin/api/accounts/{BOB}", {"password": NEW_PASSWORD})
        assert (await node.authenticator.login("imap", BOB, NEW_PASSWORD, "127.0.0.9")).account
        assert not (await node.authenticator.login("imap", BOB, BOB_PASSWORD, "127.0.0.9")).account

        changed = await call(
            client, node, "PATCH", f"/admin/api/accounts/{BOB}",
            {"quota": 5000, "disabled": True},
        )
        assert changed["quota"] == 5000 and changed["disabled"]
        # Disabled: no submission login, with the right password.
        with pytest.raises(smtplib.SMTPAuthenticationError):
            await asyncio.to_thread(submission_login, node, BOB, NEW_PASSWORD)
        await call(client, node, "PATCH", f"/admin/api/accounts/{BOB}", {"disabled": False})
        assert (await node.authenticator.login("imap", BOB, NEW_PASSWORD, "127.0.0.9")).account

        made = await call(client, node, "PATCH", f"/admin/api/accounts/{carol}", {"admin": True})
        assert made["admin"]
        await call(client, node, "GET", "/admin/api/me", auth=basic(carol, "carol's secret"))
        await call(
            client, node, "PATCH", f"/admin/api/accounts/{BOB}", {"quota": -1}, status=400
        )
        await call(
            client, node, "PATCH", f"/admin/api/accounts/{ADMIN}", {"admin": False}, status=400
        )
        await call(client, node, "DELETE", f"/admin/api/accounts/{ADMIN}", status=400)

        alias = await call(
            client, node, "POST", "/admin/api/aliases",
            {"source": "sales@example.org", "target": carol}, status=201,
        )
        assert alias == {"source": "sales@example.org", "target": carol}
        aliases = await call(client, node, "GET", "/admin/api/aliases")
        assert alias in aliases
        await call(
            client, node, "DELETE", f"/admin/api/aliases?source=sales@example.org&target={carol}"
        )
        assert alias not in await call(client, node, "GET", "/admin/api/aliases")
        await call(client, node, "DELETE", "/admin/api/aliases", status=400)

        await call(client, node, "DELETE", f"/admin/api/accounts/{carol}")
        assert await node.store.account_get(carol) is None
        await call(client, node, "DELETE", f"/admin/api/accounts/{carol}", status=404)


async def test_domains_records_live_check_dkim_rotation_and_removal(node: Any) -> None:
    async with aiohttp.ClientSession() as client:
        added = await call(
            client, node, "POST", "/admin/api/domains", {"domain": "crepes.test"}, status=201
        )
        assert added["domain"] == "crepes.test"
        assert any(" MX " in r for r in added["records"])
        assert any("_domainkey" in r for r in added["records"])
        await call(client, node, "POST", "/admin/api/domains", {"domain": "crepes.test"},
                   status=400)
        await call(client, node, "POST", "/admin/api/domains", {"domain": "no good!"},
                   status=400)
        assert "crepes.test" in await call(client, node, "GET", "/admin/api/domains")
        records = await call(client, node, "GET", "/admin/api/domains/crepes.test/records")
        assert records == added["records"]

        # The live check asks the node's own DNS listener, on loopback
        # (which takes managed zones up at its next poll).
        await wait_served(node.port("dns"), "_dmarc.crepes.test")
        findings = await call(client, node, "GET", "/admin/api/domains/crepes.test/check")
        by_type = {(f["name"], f["type"]): f["status"] for f in findings}
        assert by_type[("_dmarc.crepes.test.", "TXT")] == "ok", findings
        assert all(s == "ok" for (_, t), s in by_type.items() if t == "TXT"), findings
        # The MX is published, but its host (the node's name, mx.test) is in
        # no zone that anyone serves here: the check says so.
        (mx,) = [f for f in findings if f["type"] == "MX"]
        assert mx["status"] != "ok" and "mx.test/A" in " ".join(mx["found"])

        keys = await call(client, node, "GET", "/admin/api/dkim?domain=crepes.test")
        old = {k["selector"] for k in keys if k["active"]}
        rotated = await call(
            client, node, "POST", "/admin/api/dkim/crepes.test/rotate", {"selector": "next"}
        )
        fresh = {k["selector"] for k in rotated["keys"]}
        assert fresh == {"next-rsa", "next-ed25519"}
        assert rotated["serial"] is not None
        keys = await call(client, node, "GET", "/admin/api/dkim?domain=crepes.test")
        assert {k["selector"] for k in keys if k["active"]} == fresh
        assert old <= {k["selector"] for k in keys if not k["active"]}
        # The new selector is published: the node's DNS answers it.
        await wait_served(node.port("dns"), "next-rsa._domainkey.crepes.test")
        findings = await call(client, node, "GET", "/admin/api/domains/crepes.test/check")
        assert {f["name"] for f in findings if f["status"] == "ok"} >= {
            f"{selector}._domainkey.crepes.test." for selector in fresh
        }

        await call(client, node, "POST", "/admin/api/dkim/nowhere.test/rotate", status=404)
        await call(client, node, "GET", "/admin/api/domains/nowhere.test/check", status=404)
        await call(client, node, "DELETE", "/admin/api/domains/crepes.test")
        assert not await node.store.is_local_domain("crepes.test")
        # A domain with accounts is not removed.
        await call(client, node, "DELETE", "/admin/api/domains/example.org", status=400)


async def queue_one(node: Any) -> int:
    raw = b"From: bob@example.org\r\nTo: x@far.test\r\nSubject: stuck\r\n\r\nhello\r\n"
    now = time.time()
    return int(
        await node.store.queue_add(
            NewEntry(
                mail_from=BOB,
                recipients=(NewRecipient("x@far.test"), NewRecipient("y@far.test")),
                data=raw, now=now, expires=now + 86400,
            )
        )
    )


async def test_the_queue_list_show_hold_release_retry_bounce_delete(node: Any) -> None:
    first = await queue_one(node)
    second = await queue_one(node)
    async with aiohttp.ClientSession() as client:
        listed = await call(client, node, "GET", "/admin/api/queue")
        assert [e["id"] for e in listed] == [first, second]
        assert [r["address"] for r in listed[0]["recipients"]] == ["x@far.test", "y@far.test"]
        shown = await call(client, node, "GET", f"/admin/api/queue/{first}")
        assert "Subject: stuck" in shown["header"] and shown["mailFrom"] == BOB
        assert (await call(client, node, "POST", f"/admin/api/queue/{first}/hold"))["held"] == 2
        shown = await call(client, node, "GET", f"/admin/api/queue/{first}")
        assert {r["state"] for r in shown["recipients"]} == {"held"}
        assert [e.id for e in await node.store.queue_due(time.time() + 7200)] == [second]
        released = await call(client, node, "POST", f"/admin/api/queue/{first}/release")
        assert released == {"released": 2}
        await call(client, node, "POST", "/admin/api/queue/999999/hold", status=404)
        assert (await call(client, node, "POST", f"/admin/api/queue/{first}/retry"))["due"] == 2
        assert (await call(client, node, "POST", "/admin/api/queue/retry"))["due"] >= 2
        bounced = await call(client, node, "POST", f"/admin/api/queue/{second}/bounce")
        assert bounced["bounced"] == 2 and len(bounced["dsn"]) == 1
        dsn = await call(client, node, "GET", f"/admin/api/queue/{bounced['dsn'][0]}")
        assert [r["address"] for r in dsn["recipients"]] == [BOB]
        await call(client, node, "DELETE", f"/admin/api/queue/{first}")
        await call(client, node, "GET", f"/admin/api/queue/{first}", status=404)
        await call(client, node, "GET", "/admin/api/queue/abc", status=400)


async def test_logs_failed_logins_certificates_and_the_actor_in_the_log(node: Any) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/jmap/session"), headers=basic(BOB, "wrong!")) as r:
            assert r.status == 401
        await call(client, node, "PATCH", f"/admin/api/accounts/{BOB}", {"password": NEW_PASSWORD})
        failed = await call(client, node, "GET", "/admin/api/logins/failed?count=10")
        assert failed["file"] == str(node.log_file)
        assert any(f"user={BOB}" in line and "reason=credentials" in line
                   for line in failed["lines"])
        assert all("login failed" in line for line in failed["lines"])
        recent = await call(client, node, "GET", "/admin/api/logs?count=500")
        actions = [line for line in recent["lines"] if "admin action" in line]
        assert any(f"actor={ADMIN}" in line and "action=account-password" in line
                   and f"target={BOB}" in line for line in actions)
        assert len((await call(client, node, "GET", "/admin/api/logs?count=1"))["lines"]) == 1
        await call(client, node, "GET", "/admin/api/logs?count=x", status=400)
        certificates = await call(client, node, "GET", "/admin/api/certificates")
        (default,) = [c for c in certificates if c["name"] == "default"]
        assert "mx.test" in default["names"] and default["selfSigned"]
        assert 0 < default["daysLeft"] <= 3660
    text = node.log_file.read_text()
    assert NEW_PASSWORD not in text and "wrong!" not in text


async def test_the_cookie_session_needs_its_csrf_token_and_a_bearer_token_works(
    node: Any,
) -> None:
    # unsafe: keep cookies of an IP address (the node is at 127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(
            url(node, "/webmail/login"), json={"username": ADMIN, "password": ADMIN_PASSWORD}
        ) as r:
            assert r.status == 200
            csrf = (await r.json())["csrf"]
        # The cookie logs in: a GET needs no CSRF token.
        assert (await call(client, node, "GET", "/admin/api/me", auth={}))["address"] == ADMIN
        body = {"address": "eve@example.org", "password": "eve's secret"}
        await call(client, node, "POST", "/admin/api/accounts", body, auth={}, status=403)
        assert await node.store.account_get("eve@example.org") is None
        await call(
            client, node, "POST", "/admin/api/accounts", body,
            auth={"X-CSRF-Token": "forged"}, status=403,
        )
        await call(
            client, node, "POST", "/admin/api/accounts", body,
            auth={"X-CSRF-Token": csrf, "Origin": "http://evil.test"}, status=403,
        )
        await call(
            client, node, "POST", "/admin/api/accounts", body,
            auth={"X-CSRF-Token": csrf}, status=201,
        )
    secret = new_token()
    await node.store.token_add(node.admin.id, "script", token_digest(secret))
    bob_secret = new_token()
    await node.store.token_add(node.bob.id, "script", token_digest(bob_secret))
    async with aiohttp.ClientSession() as client:
        bearer = {"Authorization": f"Bearer {secret}"}
        listed = await call(client, node, "GET", "/admin/api/accounts", auth=bearer)
        assert "eve@example.org" in [a["address"] for a in listed]
        await call(client, node, "DELETE", "/admin/api/accounts/eve@example.org", auth=bearer)
        await call(client, node, "GET", "/admin/api/accounts",
                   auth={"Authorization": f"Bearer {bob_secret}"}, status=403)
        await call(client, node, "POST", "/admin/api/accounts", "not an object", status=400)
        async with client.post(
            url(node, "/admin/api/accounts"), data=b"{", headers=basic(ADMIN, ADMIN_PASSWORD)
        ) as r:
            assert r.status == 400


async def test_the_admin_page_is_served_under_a_strict_csp(node: Any) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/admin/")) as r:
            assert r.status == 200
            page = await r.text()
            csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "<script" in page and "<script>" not in page and " style=" not in page
        for name in ("admin.js", "admin.css", "link.js"):
            async with client.get(url(node, f"/admin/static/{name}")) as r:
                assert r.status == 200 and r.headers["X-Content-Type-Options"] == "nosniff"
        async with client.get(url(node, "/admin/static/..%2fops.py")) as r:
            assert r.status == 404
