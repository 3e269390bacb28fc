"""The webmail's image proxy (webmail/imageproxy.py) against a real image
server on 127.0.0.7: signed links only, images only, bounded, no cookies or
referrers, no private addresses unless allowed, redirects checked hop by hop."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mailstack.webmail.imageproxy import ImageProxy, load_key, routes

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
ORIGIN = "127.0.0.7"


@pytest.fixture
async def images() -> Any:
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.headers))
        name = request.match_info["name"]
        if name == "logo.png":
            return web.Response(body=PNG, content_type="image/png", headers={"Set-Cookie": "t=1"})
        if name == "big.png":
            return web.Response(body=PNG * 2000, content_type="image/png")
        if name == "evil.svg":
            return web.Response(text="<svg onload=alert(1)/>", content_type="image/svg+xml")
        if name == "page.html":
            return web.Response(text="<html>", content_type="text/html")
        if name == "slow.png":
            await asyncio.sleep(1.5)
            return web.Response(body=PNG, content_type="image/png")
        if name == "to-logo":
            raise web.HTTPFound("/img/logo.png")
        if name == "to-private":
            raise web.HTTPFound("http://10.1.2.3/img/logo.png")
        if name.startswith("loop"):
            raise web.HTTPFound(f"/img/loop{len(name)}")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/img/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, ORIGIN, 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://{ORIGIN}:{port}/img", seen
    await runner.cleanup()


def make_proxy(tmp_path: Path, allow: bool = True, **kw: Any) -> ImageProxy:
    async def resolve(host: str) -> list[str]:
        return {"images.example": [ORIGIN]}.get(host, [])

    networks = [ipaddress.ip_network("127.0.0.0/8")] if allow else []
    return ImageProxy(load_key(tmp_path / "proxy.key"), resolve, networks, timeout=1.0, **kw)


async def test_a_signed_link_fetches_the_image_and_nothing_else_passes(
    tmp_path: Path, images: Any
) -> None:
    base, seen = images
    proxy = make_proxy(tmp_path, max_size=50_000)
    app = web.Application()
    app.add_routes(routes(proxy))
    async with TestClient(TestServer(app)) as client:

        async def get(link: str, **headers: str) -> Any:
            return await client.get(link, headers=headers)

        ok = await get(
            proxy.link(f"{base}/logo.png"), Cookie="session=secret", Referer="https://webmail/"
        )
        assert ok.status == 200 and await ok.read() == PNG
        assert ok.content_type == "image/png" and "Set-Cookie" not in ok.headers
        assert ok.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in ok.headers["Content-Security-Policy"]
        # The image's server learnt nothing about the reader.
        sent = seen[-1]
        assert "Cookie" not in sent and "Referer" not in sent
        assert sent["User-Agent"] == "mailstack-image-proxy"
        # Redirects are followed, each hop checked.
        assert (await get(proxy.link(f"{base}/to-logo"))).status == 200
        assert (await get(proxy.link(f"{base}/to-private"))).status == 403
        assert (await get(proxy.link(f"{base}/loop"))).status == 508
        # Only images, not SVG, not too large, not too slow.
        assert (await get(proxy.link(f"{base}/evil.svg"))).status == 415
        assert (await get(proxy.link(f"{base}/page.html"))).status == 415
        assert (await get(proxy.link(f"{base}/big.png"))).status == 413
        assert (await get(proxy.link(f"{base}/slow.png"))).status == 504
        assert (await get(proxy.link("ftp://images.example/x.png"))).status == 400
        # A link the node did not make, or that has expired, fetches nothing.
        fetched = len(seen)
        forged = proxy.link(f"{base}/logo.png").replace("s=", "s=x")
        assert (await get(forged)).status == 403
        other = make_proxy(tmp_path / "other")
        assert (await get(other.link(f"{base}/logo.png"))).status == 403
        assert (await get("/proxy/image?u=nope")).status == 400
        old = make_proxy(tmp_path, lifetime=60, clock=lambda: 0.0)
        assert (await get(old.link(f"{base}/logo.png"))).status == 410
        assert len(seen) == fetched


async def test_private_addresses_are_refused_unless_allowed(tmp_path: Path, images: Any) -> None:
    base, seen = images
    strict = make_proxy(tmp_path, allow=False)
    app = web.Application()
    app.add_routes(routes(strict))
    async with TestClient(TestServer(app)) as client:
        for url in (f"{base}/logo.png", f"http://images.example:{base.split(':')[2]}"):
            reply = await client.get(strict.link(url))
            assert reply.status == 403
            assert "may not fetch" in await reply.text()
    assert seen == []
    assert oct((tmp_path / "proxy.key").stat().st_mode & 0o777) == "0o600"
