"""The admin pages in a real browser (Debian's Chromium driven by
Playwright), found by role and name: an admin signs in at /admin/, creates
an account, and that account then signs in to the webmail; the webmail's
"Admin" link shows for the admin only; a normal user is refused the admin
pages and the admin API. No request leaves for any host but the node.

A screenshot of the admin page goes to ``test-artifacts/admin/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from e2e import test_webmail_browser as web
from e2e.test_webmail_browser import CHROMIUM, base

async_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
expect = async_api.expect
browser = web.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "admin"
ADMIN, BOB, PASSWORD = "root@example.org", "bob@example.org", "correct horse"
NEW_USER, NEW_PASSWORD = "dana@example.org", "dana's new password"


@pytest.fixture
async def node(node_factory: Any) -> Any:
    node = await node_factory(listen=("http",))
    await node.add_user(ADMIN, PASSWORD)
    await node.store.account_set(ADMIN, admin=True)
    await node.add_user(BOB, PASSWORD)
    return node


async def new_page(browser: Any, node: Any) -> Any:
    context = await browser.new_context()
    page = await context.new_page()
    page.errors = []
    page.hosts = set()
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("request", lambda request: page.hosts.add(urlsplit(request.url).netloc))
    return page


async def sign_in(page: Any, user: str, password: str) -> None:
    await page.get_by_label("Email address").fill(user)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_an_admin_creates_a_user_who_then_reads_mail(node: Any, browser: Any) -> None:
    page = await new_page(browser, node)
    await page.goto(base(node) + "/admin/")
    await sign_in(page, ADMIN, PASSWORD)
    accounts = page.get_by_role("table", name="Accounts list")
    await expect(accounts).to_contain_text(BOB)
    await expect(page.get_by_role("table", name="Certificates list")).to_contain_text("mx.test")

    await page.get_by_label("Address", exact=True).fill(NEW_USER)
    await page.get_by_label("Initial password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Add account").click()
    await expect(page.get_by_role("status")).to_have_text(f"added {NEW_USER}")
    row = accounts.get_by_role("row").filter(has_text=NEW_USER)
    await expect(row).to_contain_text("active")
    await expect(row.get_by_role("button", name=f"Disable {NEW_USER}")).to_be_visible()
    created = await node.store.account_get(NEW_USER)
    assert created is not None and not created.admin

    await page.get_by_label("Alias source").fill("sales@example.org")
    await page.get_by_label("Alias target").fill(NEW_USER)
    await page.get_by_role("button", name="Add alias").click()
    await expect(page.get_by_role("list", name="Aliases list")).to_contain_text(
        f"sales@example.org → {NEW_USER}"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "admin.png"), full_page=True)

    # The new account signs in to the webmail.
    mail = await new_page(browser, node)
    await mail.goto(base(node) + "/mail/")
    async with mail.expect_response(
        lambda r: "/admin/api/me" in r.url and r.status == 403
    ):
        await sign_in(mail, NEW_USER, NEW_PASSWORD)
    await expect(mail.get_by_role("navigation", name="Mailboxes")).to_be_visible()
    # Not an admin: no link to the admin pages.
    assert await mail.get_by_role("link", name="Admin").count() == 0

    # The admin's webmail has the link.
    own = await new_page(browser, node)
    await own.goto(base(node) + "/mail/")
    await sign_in(own, ADMIN, PASSWORD)
    await expect(own.get_by_role("link", name="Admin")).to_be_visible()

    # Disabled from the admin page: the user can no longer sign in.
    await row.get_by_role("button", name=f"Disable {NEW_USER}").click()
    await expect(row).to_contain_text("disabled")
    again = await new_page(browser, node)
    await again.goto(base(node) + "/mail/")
    async with again.expect_response(lambda r: r.url.endswith("/webmail/login")) as answer:
        await sign_in(again, NEW_USER, NEW_PASSWORD)
    assert (await answer.value).status == 401

    for opened in (page, mail, own, again):
        assert opened.errors == []
        assert opened.hosts == {urlsplit(base(node)).netloc}


async def test_a_normal_user_is_refused_the_admin_pages_and_api(
    node: Any, browser: Any
) -> None:
    page = await new_page(browser, node)
    await page.goto(base(node) + "/admin/")
    await sign_in(page, BOB, PASSWORD)
    await expect(page.get_by_role("heading", name="Not an admin")).to_be_visible()
    await expect(page.get_by_role("table", name="Accounts list")).to_be_hidden()
    statuses = await page.evaluate(
        """async () => {
            const out = [];
            for (const path of ["/admin/api/accounts", "/admin/api/queue", "/admin/api/logs"]) {
                out.push((await fetch(path)).status);
            }
            return out;
        }"""
    )
    assert statuses == [403, 403, 403]
    assert page.errors == []
    # Without a session: 401.
    anonymous = await new_page(browser, node)
    answer = await anonymous.request.get(base(node) + "/admin/api/accounts")
    assert answer.status == 401
