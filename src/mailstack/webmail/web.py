"""The webmail's routes on the node's HTTP service (so far: the image proxy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from mailstack.common.fetch import networks
from mailstack.webmail.imageproxy import ImageProxy, load_key
from mailstack.webmail.imageproxy import routes as proxy_routes

if TYPE_CHECKING:
    from mailstack.app import Node


def image_proxy(node: Node) -> ImageProxy:
    config = node.config.webmail
    return ImageProxy(
        load_key(node.config.data_dir / "webmail" / "proxy.key"),
        node.resolver.addresses,
        networks(config.proxy_allow),
        max_size=config.proxy_max_size,
        timeout=config.proxy_timeout,
        lifetime=config.proxy_link_lifetime,
    )


def routes(node: Node) -> list[web.AbstractRouteDef]:
    return proxy_routes(image_proxy(node))
