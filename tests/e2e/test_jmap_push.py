"""JMAP push end to end: EventSource (RFC 8620 §7.3), WebSocket with
requests and push (RFC 8887), PushSubscription (§7.2) to a local https
receiver with RFC 8291 encryption checked by http_ece (a library we did not
write), bearer tokens made by the command line."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
import subprocess
import sys

import aiohttp
import http_ece
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailstack.common.tls import make_self_signed

USER = "bob@example.org"
PASSWORD = "hungry-hippo"
CORE = "urn:ietf:params:jmap:core"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


@pytest.fixture
async def node(node_factory):
    node = await node_factory(
        listen=("http",),
        jmap={"push_allow": ["127.0.0.0/8"], "event_source_ping_min": 1},
    )
    node.account = await node.add_user(USER, PASSWORD)
    return node


def url(node, path: str) -> str:
    return f"http://127.0.0.1:{node.port('http')}{path}"


async def change(node, name: str = "Projects") -> None:
    await node.store.mailbox_create(node.account.id, name)


async def read_event(response) -> tuple[str, dict]:
    """The next server-sent event: its name and JSON data."""
    name, data = "", ""
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
        elif line == "" and name:
            return name, json.loads(data)


async def test_event_source_sends_state_changes_and_closes_after_state(node):
    async with aiohttp.ClientSession() as client:
        async with client.get(
            url(node, "/jmap/eventsource/?types=*&closeafter=state&ping=0"), headers=AUTH
        ) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/event-stream")
            await asyncio.sleep(0.2)
            await change(node)
            name, data = await read_event(r)
            assert name == "state"
            assert data["@type"] == "StateChange"
            account = f"A{node.account.id}"
            assert set(data["changed"][account]) >= {"Mailbox", "Email", "Thread"}
            assert await asyncio.wait_for(r.content.read(), 10) == b""


async def test_event_source_types_filter_and_ping(node):
    async with aiohttp.ClientSession() as client:
        async with client.get(
            url(node, "/jmap/eventsource/?types=Mailbox&closeafter=no&ping=1"), headers=AUTH
        ) as r:
            name, data = await read_event(r)
            assert (name, data) == ("ping", {"interval": 1})
            await change(node)
            name, data = await read_event(r)
            while name == "ping":
                name, data = await read_event(r)
            assert list(data["changed"][f"A{node.account.id}"]) == ["Mailbox"]


@pytest.mark.parametrize("query", ["closeafter=maybe", "ping=-1", "ping=abc"])
async def test_event_source_bad_parameters_are_400(node, query):
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, f"/jmap/eventsource/?{query}"), headers=AUTH) as r:
            assert r.status == 400
            assert r.headers["Content-Type"] == "application/problem+json"


async def test_websocket_requests_errors_and_push(node):
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(
            url(node, "/jmap/ws/"), headers=AUTH, protocols=("jmap",)
        ) as ws:
            assert ws.protocol == "jmap"
            await ws.send_json(
                {
                    "@type": "Request",
                    "id": "r1",
                    "using": [CORE],
                    "methodCalls": [["Core/echo", {"hi": 1}, "c"]],
                }
            )
            response = await ws.receive_json(timeout=10)
            assert response["@type"] == "Response" and response["requestId"] == "r1"
            assert response["methodResponses"] == [["Core/echo", {"hi": 1}, "c"]]
            assert response["sessionState"]
            await ws.send_str("{nope")
            error = await ws.receive_json(timeout=10)
            assert error["@type"] == "RequestError"
            assert error["type"] == "urn:ietf:params:jmap:error:notJSON"
            await ws.send_json(
                {"@type": "Request", "id": "r2", "using": ["urn:x"], "methodCalls": []}
            )
            error = await ws.receive_json(timeout=10)
            assert error["type"].endswith("unknownCapability") and error["requestId"] == "r2"
            await ws.send_json({"@type": "WebSocketPushEnable", "dataTypes": ["Mailbox"]})
            await asyncio.sleep(0.2)
            await change(node)
            push = await ws.receive_json(timeout=10)
            assert push["@type"] == "StateChange"
            assert list(push["changed"][f"A{node.account.id}"]) == ["Mailbox"]
            await ws.send_json({"@type": "WebSocketPushDisable"})
            await asyncio.sleep(0.2)
            await change(node, "Other")
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive_json(timeout=0.5)


async def test_websocket_needs_the_jmap_subprotocol_and_credentials(node):
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect(url(node, "/jmap/ws/"), headers=AUTH)
        assert info.value.status == 400
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect(url(node, "/jmap/ws/"), protocols=("jmap",))
        assert info.value.status == 401


# --- PushSubscription ---------------------------------------------------


@pytest.fixture
async def receiver(tmp_path, monkeypatch):
    """An https server on 127.0.0.1 whose certificate the node trusts through
    SSL_CERT_FILE; what it is sent lands in a queue."""
    cert, key = tmp_path / "recv-cert.pem", tmp_path / "recv-key.pem"
    make_self_signed(cert, key, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    got: asyncio.Queue = asyncio.Queue()

    async def handle(request: web.Request) -> web.Response:
        got.put_nowait((dict(request.headers), await request.read()))
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/push", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    yield f"https://127.0.0.1:{port}/push", got
    await runner.cleanup()


async def api(client, node, *calls):
    async with client.post(
        url(node, "/jmap/api/"),
        json={"using": [CORE], "methodCalls": list(calls)},
        headers=AUTH,
    ) as r:
        assert r.status == 200
        return (await r.json())["methodResponses"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def test_push_subscription_verified_then_encrypted_state_changes(node, receiver):
    push_url, got = receiver
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth_secret = os.urandom(16)
    keys = {"p256dh": b64(public), "auth": b64(auth_secret)}

    def decrypt(headers, body) -> dict:
        assert headers["Content-Encoding"] == "aes128gcm"
        assert "TTL" in headers
        plain = http_ece.decrypt(
            body, private_key=private, auth_secret=auth_secret, version="aes128gcm"
        )
        return json.loads(plain)

    async with aiohttp.ClientSession() as client:
        [[name, result, _]] = await api(
            client,
            node,
            ["PushSubscription/set", {"create": {"p": {
                "deviceClientId": "phone", "url": push_url, "keys": keys, "types": ["Mailbox"],
            }}}, "0"],
        )
        assert name == "PushSubscription/set", result
        made = result["created"]["p"]
        assert made["id"] and made["expires"].endswith("Z")
        verification = decrypt(*await asyncio.wait_for(got.get(), 10))
        assert verification["@type"] == "PushVerification"
        assert verification["pushSubscriptionId"] == made["id"]

        # Not verified: a change sends nothing.
        await change(node, "Before")
        await asyncio.sleep(0.5)
        assert got.empty()

        [[_, wrong, _]] = await api(
            client, node,
            ["PushSubscription/set", {"update": {made["id"]: {"verificationCode": "x"}}}, "1"],
        )
        assert wrong["notUpdated"][made["id"]]["type"] == "invalidProperties"
        code = verification["verificationCode"]
        [[_, right, _]] = await api(
            client, node,
            ["PushSubscription/set", {"update": {made["id"]: {"verificationCode": code}}}, "2"],
        )
        assert made["id"] in right["updated"]

        [[_, listed, _]] = await api(client, node, ["PushSubscription/get", {}, "3"])
        assert listed["list"][0]["verificationCode"] == code
        assert "url" not in listed["list"][0] and "keys" not in listed["list"][0]
        [[kind, forbidden, _]] = await api(
            client, node, ["PushSubscription/get", {"properties": ["url"]}, "4"]
        )
        assert (kind, forbidden["type"]) == ("error", "forbidden")

        while not got.empty():
            got.get_nowait()
        await change(node, "After")
        state = decrypt(*await asyncio.wait_for(got.get(), 10))
        assert state["@type"] == "StateChange"
        assert list(state["changed"][f"A{node.account.id}"]) == ["Mailbox"]

        [[_, gone, _]] = await api(
            client, node, ["PushSubscription/set", {"destroy": [made["id"]]}, "5"]
        )
        assert gone["destroyed"] == [made["id"]]


async def test_push_url_checks(node_factory, receiver):
    push_url, got = receiver
    node = await node_factory(listen=("http",))  # push_allow left empty
    await node.add_user(USER, PASSWORD)
    create = {"deviceClientId": "d", "url": push_url}
    async with aiohttp.ClientSession() as client:
        for bad in (
            {"url": push_url},  # loopback: refused by default
            {"url": push_url.replace("https:", "http:")},
            {"url": "https://10.1.2.3/push"},
            {"url": "https://169.254.169.254/latest"},
            {"url": "not a url"},
            {"keys": {"p256dh": "AAAA", "auth": "AAAA"}},
            {"expires": "2001-01-01T00:00:00Z"},
            {"verificationCode": "mine"},
            {"id": "R1"},
        ):
            [[_, result, _]] = await api(
                client, node, ["PushSubscription/set", {"create": {"c": create | bad}}, "0"]
            )
            error = result["notCreated"]["c"]
            assert error["type"] == "invalidProperties", bad
            assert error["properties"], bad
        [[kind, result, _]] = await api(
            client, node, ["PushSubscription/set", {"accountId": "A1"}, "0"]
        )
        assert (kind, result["type"]) == ("error", "invalidArguments")
    await asyncio.sleep(0.2)
    assert got.empty()


# --- bearer tokens ------------------------------------------------------


def cli(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_tokens_made_listed_and_revoked_on_the_command_line(tmp_path):
    from support import start_serve

    data = str(tmp_path / "d")
    await asyncio.to_thread(cli, "init", "--data-dir", data, "--hostname", "mx.test")
    toml = tmp_path / "d" / "mailstack.toml"
    text = toml.read_text()
    # Every listener on a port of the OS's choosing.
    toml.write_text(re.sub(r'(= "127\.0\.0\.1:)[0-9]+"', r'\g<1>0"', text))
    await asyncio.to_thread(cli, "domain", "add", "example.org", "--data-dir", data)
    await asyncio.to_thread(
        cli, "user", "add", USER, "--password-stdin", "--data-dir", data, stdin=PASSWORD + "\n"
    )
    out = await asyncio.to_thread(
        cli, "token", "create", USER, "--name", "laptop", "--data-dir", data
    )
    secret = out.strip().rsplit(" ", 1)[1]
    token_id = out.split()[1]
    listed = await asyncio.to_thread(cli, "token", "list", "--data-dir", data)
    assert f"{token_id} {USER} name='laptop'" in listed and secret not in listed

    proc, ports = await asyncio.to_thread(start_serve, tmp_path / "d")
    try:
        session_url = f"http://127.0.0.1:{ports['http']}/jmap/session"
        bearer = {"Authorization": f"Bearer {secret}"}
        async with aiohttp.ClientSession() as client:
            async with client.get(session_url, headers=bearer) as r:
                assert r.status == 200
                assert (await r.json())["username"] == USER
            await asyncio.to_thread(cli, "token", "revoke", token_id, "--data-dir", data)
            async with client.get(session_url, headers=bearer) as r:
                assert r.status == 401
                assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
