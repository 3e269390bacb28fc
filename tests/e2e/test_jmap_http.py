"""The HTTP service and JMAP core end to end, with aiohttp's client: the
session resource, the API endpoint's errors, authentication, limits, blobs,
the trace."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import logging
import ssl

import aiohttp
import pytest

USER = "bob@example.org"
PASSWORD = "hungry"
CORE = "urn:ietf:params:jmap:core"


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
async def node(node_factory):
    node = await node_factory(
        listen=("http", "https"),
        hostname="mx.test",
        limits={"login_failures": 2, "login_failure_delay": 0.05},
        jmap={
            "max_calls_in_request": 3,
            "max_size_request": 2000,
            "max_size_upload": 5000,
            "max_concurrent_requests": 2,
        },
    )
    await node.add_user(USER, PASSWORD)
    return node


def url(node, path: str, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{node.port(scheme)}{path}"


async def post_api(client, node, body, headers=None):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    async with client.post(
        url(node, "/jmap/api/"),
        data=data,
        headers={**basic(), "Content-Type": "application/json", **(headers or {})},
    ) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.json(
            content_type=None
        )


async def test_well_known_redirects_to_the_session_and_the_session_describes_the_server(node):
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/.well-known/jmap"), allow_redirects=False) as r:
            assert r.status in (301, 302, 307, 308)
            assert r.headers["Location"].endswith("/jmap/session")
        async with client.get(url(node, "/.well-known/jmap"), headers=basic()) as r:
            assert r.status == 200
            session = await r.json()
    base = f"http://127.0.0.1:{node.port('http')}"
    core = session["capabilities"][CORE]
    assert core["maxCallsInRequest"] == 3
    assert core["maxSizeRequest"] == 2000
    assert core["maxSizeUpload"] == 5000
    assert core["maxConcurrentRequests"] == 2
    assert {"maxConcurrentUpload", "maxObjectsInGet", "maxObjectsInSet"} <= set(core)
    assert "i;unicode-casemap" in core["collationAlgorithms"]
    assert session["apiUrl"] == f"{base}/jmap/api/"
    assert session["uploadUrl"] == f"{base}/jmap/upload/{{accountId}}/"
    assert session["downloadUrl"].startswith(f"{base}/jmap/download/{{accountId}}/{{blobId}}/")
    assert "{name}" in session["downloadUrl"] and "{type}" in session["downloadUrl"]
    for variable in ("{types}", "{closeafter}", "{ping}"):
        assert variable in session["eventSourceUrl"]
    assert session["username"] == USER
    (account_id, account), = session["accounts"].items()
    assert account["name"] == USER and account["isPersonal"] and not account["isReadOnly"]
    assert account["accountCapabilities"][CORE] == {}
    assert "urn:ietf:params:jmap:websocket" not in account["accountCapabilities"]
    assert all(value == account_id for value in session["primaryAccounts"].values())
    assert session["capabilities"]["urn:ietf:params:jmap:websocket"]["url"].startswith("ws://")
    assert isinstance(session["state"], str) and session["state"]


async def test_echo_and_the_session_state_in_the_response(node):
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/jmap/session"), headers=basic()) as r:
            state = (await r.json())["state"]
        status, content_type, body = await post_api(
            client, node, {"using": [CORE], "methodCalls": [["Core/echo", {"x": [1]}, "c1"]]}
        )
    assert status == 200 and content_type.startswith("application/json")
    assert body == {"methodResponses": [["Core/echo", {"x": [1]}, "c1"]], "sessionState": state}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{not json", "notJSON"),
        (b'{"using": [], "methodCalls": [], "using": []}', "notJSON"),
        (b'{"using": "x", "methodCalls": []}', "notRequest"),
        (b'{"using": ["urn:example:nope"], "methodCalls": []}', "unknownCapability"),
        (
            json.dumps(
                {"using": [CORE], "methodCalls": [["Core/echo", {}, str(n)] for n in range(4)]}
            ).encode(),
            "limit",
        ),
        (json.dumps({"using": [CORE], "x": "y" * 3000}).encode(), "limit"),
    ],
)
async def test_request_level_errors_are_problem_details(node, body, kind):
    async with aiohttp.ClientSession() as client:
        status, content_type, problem = await post_api(client, node, body)
    assert status == 400
    assert content_type == "application/problem+json"
    assert problem["type"] == f"urn:ietf:params:jmap:error:{kind}"
    assert problem["status"] == 400
    if kind == "limit":
        assert problem["limit"] in ("maxCallsInRequest", "maxSizeRequest")


async def test_a_chunked_body_over_the_limit_is_refused_without_length(node):
    async def chunks():
        for _ in range(10):
            yield b" " * 500

    async with aiohttp.ClientSession() as client:
        status, _, problem = await post_api(client, node, chunks())
    assert status == 400 and problem["limit"] == "maxSizeRequest"


async def test_without_credentials_401_with_both_challenges(node):
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/jmap/session")) as r:
            assert r.status == 401
            challenge = r.headers["WWW-Authenticate"]
            assert "Basic" in challenge and "Bearer" in challenge
            assert r.headers["Content-Type"] == "application/problem+json"


async def test_bad_credentials_are_throttled_and_logged(node, caplog):
    caplog.set_level(logging.INFO, logger="mailstack.auth")
    async with aiohttp.ClientSession() as client:
        for _ in range(2):
            async with client.get(url(node, "/jmap/session"), headers=basic(password="x")) as r:
                assert r.status == 401
        async with client.get(
            url(node, "/jmap/session"), headers={"Authorization": "Bearer nope"}
        ) as r:
            assert r.status == 401
            assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        async with client.get(
            url(node, "/jmap/session"), headers={"Authorization": "Bearer a b"}
        ) as r:
            assert r.status == 400
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        "login failed protocol=http user=bob@example.org client=127.0.0.1" in line
        for line in lines
    )
    assert any("login failed protocol=http user=(token)" in line for line in lines)
    assert node.authenticator.failures("127.0.0.1") >= 3


async def test_https_serves_the_same_with_the_node_certificate(node):
    context = ssl.create_default_context(cafile=str(node.config.cert_path))
    context.check_hostname = False
    async with aiohttp.ClientSession() as client:
        async with client.get(
            url(node, "/jmap/session", "https"), headers=basic(), ssl=context
        ) as r:
            assert r.status == 200
            session = await r.json()
    assert session["apiUrl"].startswith("https://")
    assert session["capabilities"]["urn:ietf:params:jmap:websocket"]["url"].startswith("wss://")


async def test_plain_http_from_elsewhere_than_loopback_takes_no_credentials(node_factory):
    node = await node_factory(listen=("http",), http={"allow_plaintext_on_loopback": False})
    await node.add_user(USER, PASSWORD)
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/jmap/session"), headers=basic()) as r:
            assert r.status == 403


async def test_method_errors_and_result_references_over_http(node):
    body = {
        "using": [CORE],
        "methodCalls": [
            ["Core/echo", {"list": [{"id": "a"}, {"id": "b"}]}, "0"],
            ["Core/echo", {"#ids": {"resultOf": "0", "name": "Core/echo", "path": "/list/*/id"}},
             "1"],
            ["Nope/nothing", {}, "2"],
        ],
    }
    async with aiohttp.ClientSession() as client:
        status, _, response = await post_api(client, node, body)
    assert status == 200
    assert response["methodResponses"][1] == ["Core/echo", {"ids": ["a", "b"]}, "1"]
    assert response["methodResponses"][2] == ["error", {"type": "unknownMethod"}, "2"]


async def test_upload_then_download_with_name_and_type(node):
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/jmap/session"), headers=basic()) as r:
            session = await r.json()
        account = next(iter(session["accounts"]))
        upload = session["uploadUrl"].replace("{accountId}", account)
        async with client.post(
            upload, data=b"hello \x00 world", headers={**basic(), "Content-Type": "text/html"}
        ) as r:
            assert r.status == 201
            made = await r.json()
        assert made["accountId"] == account and made["size"] == 13 and made["type"] == "text/html"
        download = (
            session["downloadUrl"]
            .replace("{accountId}", account)
            .replace("{blobId}", made["blobId"])
            .replace("{name}", "r%C3%A9sum%C3%A9.html")
            .replace("{type}", "text/html")
        )
        async with client.get(download, headers=basic()) as r:
            assert r.status == 200
            assert await r.read() == b"hello \x00 world"
            assert r.headers["Content-Type"] == "text/html"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            disposition = r.headers["Content-Disposition"]
            assert disposition.startswith("attachment")
            assert "r%C3%A9sum%C3%A9.html" in disposition
        missing = download.replace(made["blobId"], "U12345")
        async with client.get(missing, headers=basic()) as r:
            assert r.status == 404
        other = download.replace(f"/download/{account}/", "/download/A999/")
        async with client.get(other, headers=basic()) as r:
            assert r.status == 404


async def test_an_upload_over_the_limit_is_refused(node):
    async def chunks():
        for _ in range(6):
            yield b"x" * 1000

    async with aiohttp.ClientSession() as client:
        for data in (b"x" * 5001, chunks()):
            async with client.post(url(node, "/jmap/upload/A1/"), data=data, headers=basic()) as r:
                assert r.status == 413
                problem = await r.json(content_type=None)
                assert problem["limit"] == "maxSizeUpload"
    assert not [p for p in (node.config.data_dir / "uploads").rglob("*") if p.is_file()]


async def test_uploads_are_another_accounts_not_found(node):
    await node.add_user("eve@example.org", PASSWORD)
    async with aiohttp.ClientSession() as client:
        async with client.post(url(node, "/jmap/upload/A1/"), data=b"secret", headers=basic()) as r:
            blob_id = (await r.json())["blobId"]
        eve = basic("eve@example.org")
        async with client.get(url(node, f"/jmap/download/A1/{blob_id}/x"), headers=eve) as r:
            assert r.status == 404
        async with client.get(url(node, f"/jmap/download/A2/{blob_id}/x"), headers=eve) as r:
            assert r.status == 404


async def test_blob_copy_between_calls(node):
    async with aiohttp.ClientSession() as client:
        async with client.post(url(node, "/jmap/upload/A1/"), data=b"data", headers=basic()) as r:
            blob_id = (await r.json())["blobId"]
        status, _, response = await post_api(
            client,
            node,
            {
                "using": [CORE],
                "methodCalls": [
                    [
                        "Blob/copy",
                        {"fromAccountId": "A1", "accountId": "A1", "blobIds": [blob_id, "U1"]},
                        "0",
                    ],
                    ["Blob/copy", {"fromAccountId": "A9", "accountId": "A1", "blobIds": []}, "1"],
                ],
            },
        )
    name, result, _ = response["methodResponses"][0]
    assert name == "Blob/copy"
    assert set(result["copied"]) == {blob_id} and result["copied"][blob_id] != blob_id
    assert result["notCopied"] == {"U1": {"type": "notFound"}}
    assert response["methodResponses"][1][1] == {"type": "fromAccountNotFound"}


async def test_concurrent_requests_past_the_limit_are_refused(node):
    gate = asyncio.Event()

    async def slow_body():
        yield b'{"using": ["' + CORE.encode() + b'"], '
        await gate.wait()
        yield b'"methodCalls": []}'

    async with aiohttp.ClientSession() as client:
        first = asyncio.create_task(post_api(client, node, slow_body()))
        second = asyncio.create_task(post_api(client, node, slow_body()))
        await asyncio.sleep(0.3)
        status, _, problem = await post_api(
            client, node, {"using": [CORE], "methodCalls": []}
        )
        gate.set()
        assert (await first)[0] == 200 and (await second)[0] == 200
    assert status == 429 and problem["limit"] == "maxConcurrentRequests"


async def test_the_trace_shows_heads_without_credentials(node_factory, capsys):
    node = await node_factory(listen=("http",), trace=True)
    await node.add_user(USER, PASSWORD)
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/jmap/session"), headers=basic()) as r:
            assert r.status == 200
    out = capsys.readouterr().out
    assert "C: GET /jmap/session HTTP/1.1" in out
    assert "S: HTTP/1.1 200 OK" in out
    assert "Authorization: Basic [credentials elided]" in out
    assert base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() not in out


async def test_unknown_paths_and_methods_are_problem_details(node):
    async with aiohttp.ClientSession() as client:
        async with client.get(url(node, "/nothing"), headers=basic()) as r:
            assert r.status == 404
            assert r.headers["Content-Type"] == "application/problem+json"
        async with client.get(url(node, "/jmap/api/"), headers=basic()) as r:
            assert r.status == 405


async def test_an_email_blob_is_the_whole_message(node):
    from mailstack.store import DeliveryTarget

    from support import deliver

    raw = b"From: a@example.net\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
    account = (await node.store.account_get(USER)).id
    await deliver(node.store, raw, [DeliveryTarget(account)])
    [email] = await node.store.emails(account)
    blob_id = f"G{email.email_id}"
    async with aiohttp.ClientSession() as client:
        path = f"/jmap/download/A{account}/{blob_id}/message.eml?type=message/rfc822"
        async with client.get(url(node, path), headers=basic()) as r:
            assert r.status == 200
            assert (await r.read()).endswith(raw)
            assert r.headers["Content-Type"] == "message/rfc822"
        status, _, response = await post_api(
            client,
            node,
            {
                "using": [CORE],
                "methodCalls": [
                    [
                        "Blob/copy",
                        {"fromAccountId": f"A{account}", "accountId": f"A{account}",
                         "blobIds": [blob_id, f"G{email.email_id + 100}", "E1"]},
                        "0",
                    ]
                ],
            },
        )
        result = response["methodResponses"][0][1]
        copy = result["copied"][blob_id]
        assert set(result["notCopied"]) == {f"G{email.email_id + 100}", "E1"}
        copied = url(node, f"/jmap/download/A{account}/{copy}/m")
        async with client.get(copied, headers=basic()) as r:
            assert (await r.read()).endswith(raw)
            assert r.headers["Content-Type"] == "application/octet-stream"


async def test_a_slow_or_idle_connection_is_closed(node_factory):
    node = await node_factory(listen=("http",), limits={"http_idle_timeout": 0.5})
    for payload in (b"", b"GET /jmap/session HTTP/1.1\r\nHost: x\r\n"):
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port("http"))
        writer.write(payload)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_keep_alive_serves_several_requests_on_one_connection(node):
    def run() -> list[int]:
        connection = http.client.HTTPConnection("127.0.0.1", node.port("http"), timeout=10)
        sockets = []
        for _ in range(3):
            connection.request("GET", "/jmap/session", headers=basic())
            response = connection.getresponse()
            assert response.status == 200
            response.read()
            assert connection.sock is not None  # not closed after the response
            sockets.append(connection.sock.getsockname()[1])
        connection.close()
        return sockets

    assert len(set(await asyncio.to_thread(run))) == 1
