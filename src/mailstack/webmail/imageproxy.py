"""Remote images, only with consent and only through the node.

The sanitiser (``sanitize``) rewrites a remote image's URL to the proxy's
only when the user allowed remote images for that message or sender. The
proxy's link is signed (HMAC-SHA256 with a key kept in the data directory,
0600) over the URL and an expiry, so the proxy fetches nothing but what the
node itself linked, and the link works from the message's sandboxed frame,
which sends no cookies.

What the proxy does for a link:

* http and https only; the host's addresses from the node's resolver, public
  ones only (or ``[webmail] proxy_allow``), connected to as checked, TLS
  verified (``common/fetch.py``);
* up to three redirects, each hop checked the same way;
* no cookie, no ``Referer``, a fixed ``User-Agent``: the sender learns
  nothing about the reader but that the image was fetched from the node;
* an image type only (SVG refused: it can hold script), at most
  ``proxy_max_size`` octets, within ``proxy_timeout`` seconds;
* the answer served with ``X-Content-Type-Options: nosniff`` and a CSP that
  lets nothing run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp
from aiohttp import web

from mailstack.common import fetch
from mailstack.common.fetch import Network, Refused, usable_addresses
from mailstack.store.private import create_private, private_dir

PATH = "/proxy/image"
MAX_REDIRECTS = 3
USER_AGENT = "mailstack-image-proxy"
IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
     "image/x-icon", "image/vnd.microsoft.icon"}
)  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(path: Path) -> bytes:
    """The signing key, made (32 random octets, 0600) the first time."""
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    key = secrets.token_bytes(32)
    fd = create_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    return key


class ProxyError(Exception):
    """Why an image was not fetched (status, text safe to show)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


@dataclass
class ImageProxy:
    key: bytes
    resolve: Callable[[str], Awaitable[list[str]]]
    allow: Sequence[Network] = ()
    max_size: int = 5 * 1024 * 1024
    timeout: float = 10.0
    lifetime: float = 86400.0
    clock: Callable[[], float] = time.time

    def _signature(self, url: str, expires: int) -> str:
        mac = hmac.new(self.key, f"{expires}\n{url}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def link(self, url: str) -> str:
        """The proxy's URL for a remote image (what ``sanitize`` puts in src)."""
        expires = int(self.clock() + self.lifetime)
        query = {"u": _b64(url.encode()), "e": str(expires), "s": self._signature(url, expires)}
        return f"{PATH}?{urlencode(query)}"

    def check(self, query: dict[str, str]) -> str:
        """The URL a link names, when its signature holds and it has not expired."""
        try:
            url = _unb64(query["u"]).decode()
            expires = int(query["e"])
            given = query["s"]
        except (KeyError, ValueError, UnicodeDecodeError):
            raise ProxyError(400, "not a proxy link") from None
        if not hmac.compare_digest(given, self._signature(url, expires)):
            raise ProxyError(403, "this link was not made here")
        if expires < self.clock():
            raise ProxyError(410, "this link has expired")
        return url

    async def get(self, url: str) -> tuple[str, bytes]:
        """(content type, bytes) of a remote image, under every rule above."""
        try:
            return await asyncio.wait_for(self._get(url), self.timeout)
        except TimeoutError:
            raise ProxyError(504, "the image's server did not answer in time") from None

    async def _get(self, url: str) -> tuple[str, bytes]:
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ProxyError(400, "only http and https images are fetched")
            if parts.username is not None or parts.password is not None:
                raise ProxyError(400, "no credentials in image URLs")
            try:
                addresses = await usable_addresses(parts.hostname, self.resolve, self.allow)
            except Refused as exc:
                raise ProxyError(403, str(exc)) from None
            headers = {"User-Agent": USER_AGENT, "Accept": "image/*"}
            try:
                async with fetch.session(addresses, timeout=self.timeout) as client:
                    async with client.get(url, headers=headers, allow_redirects=False) as reply:
                        if reply.status in (301, 302, 303, 307, 308):
                            location = reply.headers.get("Location")
                            if not location:
                                raise ProxyError(502, "a redirect without a Location")
                            url = urljoin(url, location)
                            continue
                        if reply.status != 200:
                            raise ProxyError(502, f"the image's server answered {reply.status}")
                        kind = reply.content_type.lower()
                        if kind not in IMAGE_TYPES:
                            raise ProxyError(415, f"not an image we show ({kind})")
                        if (reply.content_length or 0) > self.max_size:
                            raise ProxyError(413, "the image is too large")
                        body = await reply.content.read(self.max_size + 1)
                        if len(body) > self.max_size:
                            raise ProxyError(413, "the image is too large")
                        return kind, body
            except (aiohttp.ClientError, OSError) as exc:
                raise ProxyError(502, f"cannot fetch the image ({type(exc).__name__})") from None
        raise ProxyError(508, "too many redirects")


def routes(proxy: ImageProxy) -> list[web.AbstractRouteDef]:
    """The proxy's route: public, because its links are signed (the frame
    that shows a message sends no cookie)."""

    async def image(request: web.Request) -> web.Response:
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Referrer-Policy": "no-referrer",
        }
        try:
            url = proxy.check(dict(request.query))
            kind, body = await proxy.get(url)
        except ProxyError as exc:
            return web.Response(status=exc.status, text=f"{exc}\n", headers=headers)
        headers["Cache-Control"] = "private, max-age=3600"
        return web.Response(body=body, content_type=kind, headers=headers)

    return [web.get(PATH, image, name="public.image-proxy")]
