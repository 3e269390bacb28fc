"""Our hostile-HTML corpus (tests/hostile.py) in a real browser: Debian's
Chromium, driven by Playwright, opens every message as the sanitiser leaves
it, once bare (the sanitiser alone must hold) and once as the webmail shows
mail (a sandboxed frame under a strict CSP). Nothing may run (no dialog, no
global set) and nothing may be fetched from any host but the node's."""

from __future__ import annotations

import asyncio
import email
import threading
from email import policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from hostile import corpus
from mailstack.webmail.sanitize import sanitize

CHROMIUM = Path("/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")

CONTROLS = ("script-tag", "remote-image", "img-onerror")
FRAME_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
PAGE_CSP = "default-src 'self'; script-src 'none'; style-src 'self'; frame-src 'self'"


def _html(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=policy.default)
    parts = []
    for part in message.walk():
        if part.get_content_type() == "text/html":
            try:
                parts.append(part.get_content())
            except (LookupError, ValueError):
                parts.append(part.get_payload(decode=True).decode("latin-1"))
    return "".join(parts)


class Site:
    """The sanitised corpus served on 127.0.0.1, in a thread of its own."""

    def __init__(self) -> None:
        self.pages = {
            name: sanitize(_html(raw), cid_url=lambda cid: f"/part/{cid}").html
            for name, raw in corpus()
        }
        # Unsanitised, for the control test: the detectors must see these.
        for name, raw in corpus():
            if name in CONTROLS:
                self.pages[f"raw-{name}"] = _html(raw)
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def bare(self, request: web.Request) -> web.Response:
        body = f"<!doctype html><meta charset=utf-8><body>{self.pages[request.match_info['name']]}"
        return web.Response(text=body, content_type="text/html")

    async def framed(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = (
            "<!doctype html><meta charset=utf-8><title>message</title>"
            f'<iframe sandbox="" src="/frame/{name}" title="message body"></iframe>'
        )
        return web.Response(
            text=body, content_type="text/html", headers={"Content-Security-Policy": PAGE_CSP}
        )

    async def frame(self, request: web.Request) -> web.Response:
        body = f"<!doctype html><meta charset=utf-8><body>{self.pages[request.match_info['name']]}"
        return web.Response(
            text=body, content_type="text/html", headers={"Content-Security-Policy": FRAME_CSP}
        )

    async def part(self, request: web.Request) -> web.Response:
        return web.Response(status=404)

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_get("/bare/{name}", self.bare)
        app.router.add_get("/framed/{name}", self.framed)
        app.router.add_get("/frame/{name}", self.frame)
        app.router.add_get("/part/{cid}", self.part)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    def stop(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture(scope="module")
def site() -> Any:
    served = Site()
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    served._ready.wait(10)
    yield served
    served.stop()
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Any:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


NAMES = [name for name, _ in corpus()]


def visit(browser: Any, port: int, how: str, names: list[str]) -> tuple[list[str], ...]:
    """Open each page; what ran (dialogs, PWNED set) and what was asked of other hosts."""
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    elsewhere: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    def request(req: Any) -> None:
        if (
            not req.url.startswith(("about:", "data:"))
            and urlsplit(req.url).hostname != "127.0.0.1"
        ):
            elsewhere.append(req.url)

    def local_only(route: Any) -> None:
        # Nothing leaves this machine, even what slipped through.
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    page.on("request", request)
    page.route("**/*", local_only)
    ran = []
    for name in names:
        page.goto(f"http://127.0.0.1:{port}/{how}/{name}", wait_until="load")
        page.wait_for_timeout(50)
        for frame in page.frames:
            try:
                if frame.evaluate("() => window.PWNED || (window.parent && window.parent.PWNED)"):
                    ran.append(name)
            except playwright_api.Error:
                pass  # a sandboxed frame runs no script, not even ours
    context.close()
    return dialogs, ran, elsewhere


def test_the_detectors_see_hostile_mail_left_unsanitised(site: Site, browser: Any) -> None:
    dialogs, ran, elsewhere = visit(browser, site.port, "bare", [f"raw-{n}" for n in CONTROLS])
    assert dialogs and "raw-script-tag" in ran and "raw-img-onerror" in ran
    assert any("evil.test" in url for url in elsewhere)


@pytest.mark.parametrize("how", ["bare", "framed"])
def test_no_hostile_message_runs_or_fetches_in_the_browser(
    site: Site, browser: Any, how: str
) -> None:
    dialogs, ran, elsewhere = visit(browser, site.port, how, NAMES)
    assert dialogs == [] and ran == [], (dialogs, ran)
    assert elsewhere == [], elsewhere
