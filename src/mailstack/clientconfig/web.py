"""The HTTP routes mail clients ask when they set themselves up.

| route | who asks | login |
| --- | --- | --- |
| ``GET /mail/config-v1.1.xml`` on ``autoconfig.DOMAIN`` | Thunderbird | no |
| ``GET /.well-known/autoconfig/mail/config-v1.1.xml`` on ``DOMAIN`` | Thunderbird | no |
| ``POST /autodiscover/autodiscover.xml`` (any case) | Outlook, mobile clients | no |
| ``GET /mail.mobileconfig`` | iOS, macOS (from the webmail's settings) | yes |

The public ones answer only for the node's own domains, and the same for
every address of a domain (so they tell nobody which accounts exist).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from aiohttp import web

from mailstack.clientconfig.documents import (
    autodiscover,
    mobileconfig,
    servers,
    thunderbird,
)
from mailstack.common.webkeys import ACCOUNT

if TYPE_CHECKING:
    from mailstack.app import Node

# An Autodiscover request is a few hundred octets.
AUTODISCOVER_MAX = 16384


def node_servers(node: Node) -> list:  # type: ignore[type-arg]
    """The node's mail servers as they listen now."""
    host = (node.config.smtp.hostname or node.hostname).rstrip(".")
    ports = {}
    for name, service in node.services.items():
        bound = getattr(service, "bound", None)
        if bound:
            ports[name] = int(bound[0][1])
    return servers(host, ports)


def _domain_of(text: str | None) -> str:
    if not text or "@" not in text:
        return ""
    return text.rpartition("@")[2].strip().lower().rstrip(".")


def routes(node: Node) -> list[web.AbstractRouteDef]:
    async def local(domain: str) -> bool:
        return bool(domain) and await node.store.is_local_domain(domain)  # type: ignore[union-attr]

    async def config_v11(request: web.Request) -> web.Response:
        # The address, else the host asked (autoconfig.DOMAIN or DOMAIN).
        domain = _domain_of(request.query.get("emailaddress"))
        if not domain:
            host = request.host.split(":", 1)[0].lower().rstrip(".")
            domain = host.removeprefix("autoconfig.")
        if not await local(domain):
            raise web.HTTPNotFound(text="no mail here for that domain\n")
        body = thunderbird(domain, node_servers(node))
        return web.Response(body=body, content_type="text/xml", charset="utf-8")

    async def outlook(request: web.Request) -> web.Response:
        if (request.content_length or 0) > AUTODISCOVER_MAX:
            raise web.HTTPRequestEntityTooLarge(
                max_size=AUTODISCOVER_MAX, actual_size=request.content_length or 0
            )
        data = await request.content.read(AUTODISCOVER_MAX + 1)
        if len(data) > AUTODISCOVER_MAX:
            raise web.HTTPRequestEntityTooLarge(max_size=AUTODISCOVER_MAX, actual_size=len(data))
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            raise web.HTTPBadRequest(text="the request is not XML\n") from None
        address = next(
            (e.text.strip() for e in root.iter() if e.tag.endswith("EMailAddress") and e.text),
            "",
        )
        if not await local(_domain_of(address)):
            raise web.HTTPNotFound(text="no mail here for that address\n")
        body = autodiscover(address, node_servers(node))
        return web.Response(body=body, content_type="text/xml", charset="utf-8")

    async def apple(request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        host = (node.config.smtp.hostname or node.hostname).rstrip(".")
        try:
            body = mobileconfig(account.address, account.address, host, node_servers(node))
        except ValueError:
            raise web.HTTPNotFound(text="this node serves no mail clients\n") from None
        return web.Response(
            body=body,
            content_type="application/x-apple-aspen-config",
            headers={
                "Content-Disposition": 'attachment; filename="mail.mobileconfig"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    return [
        web.get("/mail/config-v1.1.xml", config_v11, name="public.autoconfig"),
        web.get(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            config_v11,
            name="public.autoconfig-well-known",
        ),
        web.post("/autodiscover/autodiscover.xml", outlook, name="public.autodiscover"),
        web.post("/Autodiscover/Autodiscover.xml", outlook, name="public.autodiscover-caps"),
        web.get("/mail.mobileconfig", apple, name="mobileconfig"),
    ]
