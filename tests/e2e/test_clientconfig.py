"""Mail clients set themselves up: fetch Thunderbird's autoconfig, the
Autodiscover answer and the Apple profile, parse each, and connect to what
each names with clients we did not write (imaplib, poplib, smtplib)."""

from __future__ import annotations

import asyncio
import imaplib
import plistlib
import poplib
import smtplib
import ssl
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mailstack.clientconfig.documents import AUTODISCOVER_RESPONSE, OUTLOOK_RESPONSE
from mailstack.clientconfig.web import routes
from mailstack.common.webkeys import ACCOUNT

LISTEN = ("imap", "imaps", "pop3", "pop3s", "submission", "submissions")
PASSWORD = "hungry-alice"


def _context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def login(protocol: str, port: int, tls: str) -> None:
    """Log in as the document says (host name checked separately: the test
    node's name does not resolve, so 127.0.0.1 stands for it)."""
    user = "alice@crepes.fr"
    if protocol == "imap":
        imap = (
            imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=_context(), timeout=10)
            if tls == "SSL"
            else imaplib.IMAP4("127.0.0.1", port, timeout=10)
        )
        if tls == "STARTTLS":
            imap.starttls(_context())
        assert imap.login(user, PASSWORD)[0] == "OK"
        imap.logout()
    elif protocol == "pop3":
        pop = (
            poplib.POP3_SSL("127.0.0.1", port, context=_context(), timeout=10)
            if tls == "SSL"
            else poplib.POP3("127.0.0.1", port, timeout=10)
        )
        if tls == "STARTTLS":
            pop.stls(_context())
        pop.user(user)
        assert pop.pass_(PASSWORD).startswith(b"+OK")
        pop.quit()
    else:
        smtp = (
            smtplib.SMTP_SSL("127.0.0.1", port, context=_context(), timeout=10)
            if tls == "SSL"
            else smtplib.SMTP("127.0.0.1", port, timeout=10)
        )
        if tls == "STARTTLS":
            smtp.starttls(context=_context())
        assert smtp.login(user, PASSWORD)[0] == 235
        smtp.quit()


@pytest.fixture
async def client(node_factory: Any) -> Any:
    node = await node_factory(listen=LISTEN, hostname="mail.crepes.fr")
    await node.add_user("alice@crepes.fr", PASSWORD)

    @web.middleware
    async def as_alice(request: web.Request, handler: Any) -> web.StreamResponse:
        # The HTTP service's login, stood in for: the routes read ACCOUNT.
        if not (request.match_info.route.name or "").startswith("public."):
            request[ACCOUNT] = await node.store.account_get("alice@crepes.fr")
        return await handler(request)

    app = web.Application(middlewares=[as_alice])
    app.add_routes(routes(node))
    async with TestClient(TestServer(app)) as http:
        yield node, http


async def test_thunderbird_autoconfig_names_servers_that_work(client: Any) -> None:
    node, http = client
    for path, headers in (
        ("/mail/config-v1.1.xml?emailaddress=alice%40crepes.fr", {}),
        ("/mail/config-v1.1.xml", {"Host": "autoconfig.crepes.fr"}),
        ("/.well-known/autoconfig/mail/config-v1.1.xml", {"Host": "crepes.fr"}),
    ):
        reply = await http.get(path, headers=headers)
        assert reply.status == 200, path
        root = ET.fromstring(await reply.read())
        provider = root.find("emailProvider")
        assert provider is not None and provider.findtext("domain") == "crepes.fr"
    found = []
    for server in provider.iter():
        if server.tag in ("incomingServer", "outgoingServer"):
            found.append(
                (server.get("type"), server.findtext("hostname"), int(server.findtext("port")),
                 server.findtext("socketType"))
            )  # fmt: skip
    assert {(t, s) for t, _h, _p, s in found} == {
        ("imap", "SSL"), ("imap", "STARTTLS"), ("pop3", "SSL"), ("pop3", "STARTTLS"),
        ("smtp", "SSL"), ("smtp", "STARTTLS"),
    }  # fmt: skip
    assert found[0][:2] == ("imap", "mail.crepes.fr") and found[0][3] == "SSL"  # RFC 8314
    for protocol, host, port, tls in found:
        assert host == "mail.crepes.fr" and port == node.port(
            {("imap", "SSL"): "imaps", ("imap", "STARTTLS"): "imap",
             ("pop3", "SSL"): "pop3s", ("pop3", "STARTTLS"): "pop3",
             ("smtp", "SSL"): "submissions", ("smtp", "STARTTLS"): "submission"}[(protocol, tls)]
        )  # fmt: skip
        await asyncio.to_thread(login, protocol, port, tls)
    unknown = await http.get("/mail/config-v1.1.xml?emailaddress=x%40elsewhere.example")
    assert unknown.status == 404


async def test_autodiscover_answers_outlook_for_any_address_of_the_domain(client: Any) -> None:
    node, http = client
    request = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
        'requestschema/2006"><Request><EMailAddress>alice@crepes.fr</EMailAddress>'
        "<AcceptableResponseSchema>"
        "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
        "</AcceptableResponseSchema></Request></Autodiscover>"
    )
    for path in ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"):
        reply = await http.post(path, data=request, headers={"Content-Type": "text/xml"})
        assert reply.status == 200
    root = ET.fromstring(await reply.read())
    ns = {"a": AUTODISCOVER_RESPONSE, "o": OUTLOOK_RESPONSE}
    protocols = root.findall("o:Response/o:Account/o:Protocol", ns)
    kinds = [p.findtext("o:Type", namespaces=ns) for p in protocols]
    assert kinds == ["IMAP", "SMTP"]
    for protocol in protocols:
        assert protocol.findtext("o:Server", namespaces=ns) == "mail.crepes.fr"
        assert protocol.findtext("o:LoginName", namespaces=ns) == "alice@crepes.fr"
        assert protocol.findtext("o:SSL", namespaces=ns) == "on"  # implicit TLS preferred
        port = int(protocol.findtext("o:Port", namespaces=ns) or 0)
        kind = protocol.findtext("o:Type", namespaces=ns).lower()
        await asyncio.to_thread(login, kind, port, "SSL")
    # The same answer for an address nobody has (no account enumeration), none elsewhere.
    other = await http.post(
        "/autodiscover/autodiscover.xml", data=request.replace("alice@", "nobody@")
    )
    assert other.status == 200
    elsewhere = await http.post(
        "/autodiscover/autodiscover.xml", data=request.replace("crepes.fr", "elsewhere.example")
    )
    assert elsewhere.status == 404
    assert (await http.post("/autodiscover/autodiscover.xml", data="<oops")).status == 400
    big = "<a>" + "x" * 20000 + "</a>"
    assert (await http.post("/autodiscover/autodiscover.xml", data=big)).status == 413


async def test_the_apple_profile_is_an_attachment_naming_working_servers(client: Any) -> None:
    node, http = client
    reply = await http.get("/mail.mobileconfig")
    assert reply.status == 200
    assert reply.content_type == "application/x-apple-aspen-config"
    assert reply.headers["Content-Disposition"].startswith("attachment")
    profile = plistlib.loads(await reply.read())
    assert profile["PayloadType"] == "Configuration"
    [account] = profile["PayloadContent"]
    assert account["PayloadType"] == "com.apple.mail.managed"
    assert account["EmailAddress"] == "alice@crepes.fr"
    assert account["EmailAccountType"] == "EmailTypeIMAP"
    assert account["IncomingMailServerHostName"] == "mail.crepes.fr"
    assert account["IncomingMailServerUseSSL"] and account["OutgoingMailServerUseSSL"]
    # No password in the profile: the device asks for it.
    assert PASSWORD not in str(profile)
    assert "IncomingPassword" not in account and "OutgoingPassword" not in account
    await asyncio.to_thread(login, "imap", account["IncomingMailServerPortNumber"], "SSL")
    await asyncio.to_thread(login, "smtp", account["OutgoingMailServerPortNumber"], "SSL")
