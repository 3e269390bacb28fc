"""The webmail's user features beyond reading and sending, in Debian's
Chromium driven by Playwright and found by role and name: bulk actions on a
selection, junk / not junk, folder rename, conversation view, settings kept
on the server (display name, signature, theme), send-as another identity.

What the page did is checked again through JMAP (keywords, mailboxes)."""

from __future__ import annotations

import asyncio
import re
import smtplib
from email.message import EmailMessage
from typing import Any

import aiohttp

from e2e import test_webmail_browser as web
from e2e.test_webmail_browser import ALICE, BOB, PASSWORD, base, deliver, field, messages, shot

expect = web.expect
node = web.node
browser = web.browser
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
         "urn:ietf:params:jmap:submission"]  # fmt: skip


async def jmap(node: Any, user: str, calls: list[Any]) -> dict[str, Any]:
    auth = {"Authorization": aiohttp.encode_basic_auth(user, PASSWORD)}
    async with aiohttp.ClientSession() as client:
        async with client.post(
            base(node) + "/jmap/api/", json={"using": USING, "methodCalls": calls}, headers=auth
        ) as r:
            assert r.status == 200
            return {cid: args for _, args, cid in (await r.json())["methodResponses"]}


async def emails(node: Any, account: int, subject: str) -> list[dict[str, Any]]:
    """Bob's emails with this subject: their keywords and mailbox names."""
    acc = f"A{account}"
    out = await jmap(node, BOB, [
        ["Mailbox/get", {"accountId": acc, "properties": ["name"]}, "m"],
        ["Email/query", {"accountId": acc, "filter": {"subject": subject}}, "q"],
        ["Email/get", {"accountId": acc, "properties": ["keywords", "mailboxIds", "subject"],
                       "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"],
    ])  # fmt: skip
    names = {m["id"]: m["name"] for m in out["m"]["list"]}
    return [
        {"keywords": set(e["keywords"]), "in": {names[i] for i in e["mailboxIds"]}}
        for e in out["g"]["list"]
        if e["subject"] == subject
    ]


def nav_link(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Mailboxes").get_by_role(
        "link", name=re.compile(f"^{name}")
    )


async def test_bulk_actions_on_a_selection_and_junk_not_junk(node: Any, browser: Any) -> None:
    for n in (1, 2, 3):
        await deliver(node, BOB, f"Bulk {n}", f"Body {n}.")
    page = await web.open_app(browser, node, BOB)
    await expect(messages(page)).to_have_count(3)
    bulk = page.get_by_role("toolbar", name="Selected messages")
    await expect(bulk).to_be_hidden()
    await page.get_by_role("checkbox", name="Select: Bulk 1").check()
    await page.get_by_role("checkbox", name="Select: Bulk 2").check()
    await expect(bulk).to_contain_text("2 selected")
    await expect(page.get_by_role("checkbox", name="Select all on this page")).not_to_be_checked()
    await shot(page, "selection")
    await bulk.get_by_role("button", name="Mark selected read").click()
    await expect(page.get_by_role("status")).to_have_text("Marked read: 2 messages.")
    await expect(nav_link(page, "Inbox")).to_have_text(re.compile(r"Inbox\s*1"))
    await expect(bulk).to_be_hidden()  # the selection is done with
    assert [e["keywords"] for e in await emails(node, node.bob.id, "Bulk 1")] == [{"$seen"}]

    await page.get_by_role("checkbox", name="Select: Bulk 1").check()
    await page.get_by_role("checkbox", name="Select: Bulk 3").check()
    await bulk.get_by_role("button", name="Flag selected").click()
    await expect(page.get_by_role("status")).to_have_text("Flagged: 2 messages.")
    assert "$flagged" in (await emails(node, node.bob.id, "Bulk 3"))[0]["keywords"]
    assert "$flagged" not in (await emails(node, node.bob.id, "Bulk 2"))[0]["keywords"]

    await page.get_by_role("checkbox", name="Select: Bulk 1").check()
    await page.get_by_role("checkbox", name="Select: Bulk 2").check()
    await bulk.get_by_role("button", name="Junk selected", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Moved to Junk: 2 messages.")
    await expect(messages(page)).to_have_count(1)
    [junked] = await emails(node, node.bob.id, "Bulk 2")
    assert junked["in"] == {"Junk"} and "$junk" in junked["keywords"]

    # In Junk, an open message says "Not junk": back to the Inbox, marked so.
    await nav_link(page, "Junk").click()
    await messages(page).filter(has_text="Bulk 1").get_by_role("button").click()
    await expect(page.get_by_role("button", name="Junk", exact=True)).to_be_hidden()
    await page.get_by_role("button", name="Not junk").click()
    await expect(page.get_by_role("status")).to_have_text("Moved to Inbox.")
    [saved] = await emails(node, node.bob.id, "Bulk 1")
    assert saved["in"] == {"INBOX"}
    assert "$notjunk" in saved["keywords"] and "$junk" not in saved["keywords"]

    # Everything on the page, deleted: to Trash, then from Trash for good.
    await page.get_by_role("checkbox", name="Select all on this page").check()
    await expect(bulk).to_contain_text("1 selected")
    await bulk.get_by_role("button", name="Delete selected").click()
    await expect(page.get_by_role("status")).to_have_text("Moved to Trash: 1 message.")
    await nav_link(page, "Trash").click()
    await page.get_by_role("checkbox", name="Select all on this page").check()
    await bulk.get_by_role("button", name="Delete selected").click()
    await expect(page.get_by_role("status")).to_have_text("Deleted for good: 1 message.")
    assert await emails(node, node.bob.id, "Bulk 2") == []

    # Moved and archived in bulk; junk from the open message.
    await nav_link(page, "Inbox").click()
    await page.get_by_role("checkbox", name="Select: Bulk 3").check()
    await bulk.get_by_label("Move selected to").select_option(label="Archive")
    await bulk.get_by_role("button", name="Move selected", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Moved to Archive: 1 message.")
    await messages(page).filter(has_text="Bulk 1").get_by_role("button").click()
    await page.get_by_role("button", name="Junk", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Moved to Junk.")
    assert (await emails(node, node.bob.id, "Bulk 1"))[0]["in"] == {"Junk"}
    assert (await emails(node, node.bob.id, "Bulk 3"))[0]["in"] == {"Archive"}
    assert page.errors == []


async def new_folder(page: Any, name: str, said: str, inside: str | None = None) -> Any:
    """Make a folder in Settings (inside another, when given); the region."""
    settings = page.get_by_role("region", name="Settings")
    if not await settings.is_visible():
        await page.get_by_role("button", name="Settings", exact=True).click()
    await settings.get_by_label("New folder name").fill(name)
    if inside is not None:
        await settings.get_by_label("Inside").select_option(label=inside)
    await settings.get_by_role("button", name="Create folder").click()
    await expect(page.get_by_role("status")).to_have_text(said)
    return settings


async def test_a_folder_renamed(node: Any, browser: Any) -> None:
    page = await web.open_app(browser, node, BOB)
    settings = await new_folder(page, "Recipes", "Folder Recipes created.")
    await settings.get_by_label("Folder to change").select_option(label="Recipes")
    await settings.get_by_label("New name").fill("Cooking")
    await settings.get_by_role("button", name="Rename folder").click()
    await expect(page.get_by_role("status")).to_have_text("Folder Recipes renamed Cooking.")
    await expect(nav_link(page, "Cooking")).to_be_visible()
    await expect(nav_link(page, "Recipes")).to_have_count(0)
    assert await node.store.mailbox_get(node.bob.id, "Cooking") is not None
    assert await node.store.mailbox_get(node.bob.id, "Recipes") is None
    # A name the server refuses is said plainly.
    await settings.get_by_label("Folder to change").select_option(label="Cooking")
    await settings.get_by_label("New name").fill("Inbox")
    await settings.get_by_role("button", name="Rename folder").click()
    await expect(page.get_by_role("status")).to_have_text(re.compile("^Error: "))
    assert page.errors == []


async def test_folders_inside_folders(node: Any, browser: Any) -> None:
    """A folder made inside another, and one an IMAP client made
    ("Work/2026"), are listed under their parents, indented, and named by
    their path in every folder picker."""
    work = await node.store.mailbox_create(node.bob.id, "Work")
    await node.store.mailbox_create(node.bob.id, "Work/2026")
    page = await web.open_app(browser, node, BOB)
    await new_folder(page, "Recipes", "Folder Recipes created.")
    settings = await new_folder(page, "Cakes", "Folder Recipes / Cakes created.", "Recipes")
    recipes = await node.store.mailbox_get(node.bob.id, "Recipes")
    cakes = await node.store.mailbox_get(node.bob.id, "Recipes/Cakes")
    assert recipes is not None and cakes is not None
    # Each child right after its parent, one level in.
    names = await page.get_by_role("navigation", name="Mailboxes").get_by_role(
        "listitem"
    ).evaluate_all("items => items.map(i => [i.className, i.querySelector('span').textContent])")
    order = [name for _cls, name in names]
    assert order.index("2026") == order.index("Work") + 1
    assert order.index("Cakes") == order.index("Recipes") + 1
    assert dict((name, cls) for cls, name in names)["Cakes"] == "depth-1"
    assert dict((name, cls) for cls, name in names)["Recipes"] == ""
    choices = await settings.get_by_label("Folder to change").evaluate(
        "s => [...s.options].map(o => o.textContent)"
    )
    assert "Work / 2026" in choices and "Recipes / Cakes" in choices
    assert work is not None
    assert page.errors == []


def _send_threaded(node: Any) -> None:
    def message(subject: str, msgid: str, reply_to: str | None, body: str) -> EmailMessage:
        m = EmailMessage()
        m["From"] = "Carol <carol@crepes.test>"
        m["To"] = BOB
        m["Subject"] = subject
        m["Message-ID"] = msgid
        if reply_to:
            m["In-Reply-To"] = reply_to
            m["References"] = reply_to
        m.set_content(body)
        return m

    with smtplib.SMTP("127.0.0.1", node.port("smtp"), timeout=10) as client:
        client.send_message(message("Plans", "<p1@crepes.test>", None, "Shall we meet?"))
        client.send_message(message("Re: Plans", "<p2@crepes.test>", "<p1@crepes.test>",
                                    "Friday suits me."))  # fmt: skip
        client.send_message(message("Unrelated", "<u1@crepes.test>", None, "Something else."))


async def test_conversation_view_groups_reads_and_acts_on_threads(
    node: Any, browser: Any
) -> None:
    await asyncio.to_thread(_send_threaded, node)
    page = await web.open_app(browser, node, BOB)
    await expect(messages(page)).to_have_count(3)
    toggle = page.get_by_role("checkbox", name="Conversations")
    await toggle.check()
    await expect(messages(page)).to_have_count(2)
    thread = messages(page).filter(has_text="Plans")
    await expect(thread).to_contain_text("(2)")
    await thread.get_by_role("button").click()
    conversation = page.get_by_role("region", name="Conversation")
    await expect(conversation.get_by_role("listitem")).to_have_count(2)
    frames = conversation.locator("iframe")
    await expect(frames).to_have_count(2)
    assert await frames.first.get_attribute("sandbox") == ""
    first, second = (page.frame_locator(f"#thread-list li:nth-child({n}) iframe") for n in (1, 2))
    await expect(first.locator("pre")).to_contain_text("Shall we meet?")
    await expect(second.locator("pre")).to_contain_text("Friday suits me.")
    # Opening the conversation read all of it.
    await expect(nav_link(page, "Inbox")).to_have_text(re.compile(r"Inbox\s*1"))
    await shot(page, "conversation")
    # The choice is kept on the server: a new page opens grouped.
    await page.reload()
    await expect(page.get_by_role("checkbox", name="Conversations")).to_be_checked()
    await expect(messages(page)).to_have_count(2)
    # A selected conversation is acted on whole.
    await page.get_by_role("checkbox", name=re.compile("^Select: (Re: )?Plans")).check()
    await page.get_by_role("button", name="Archive selected").click()
    await expect(page.get_by_role("status")).to_have_text("Moved to Archive: 2 messages.")
    await expect(messages(page)).to_have_count(1)
    await page.get_by_role("checkbox", name="Conversations").uncheck()
    await expect(messages(page)).to_have_count(1)
    assert page.errors == []


async def test_settings_name_signature_theme_and_send_as(node: Any, browser: Any) -> None:
    await node.store.alias_add("robert@example.org", BOB)
    made = await jmap(node, BOB, [["Identity/set", {"accountId": f"A{node.bob.id}", "create": {
        "r": {"name": "Robert", "email": "robert@example.org"}}}, "i"]])  # fmt: skip
    assert made["i"]["created"]["r"]["id"]
    page = await web.open_app(browser, node, BOB)
    await page.get_by_role("button", name="Settings").click()
    settings = page.get_by_role("region", name="Settings")
    await expect(settings.get_by_label("Send as")).to_have_value(re.compile("."))
    await settings.get_by_label("Display name").fill("Bob Builder")
    await settings.get_by_label("Signature").fill("Bob\nHamburger Inc.")
    await settings.get_by_label("Theme").select_option(label="Dark")
    await settings.get_by_role("button", name="Save preferences").click()
    await expect(page.get_by_role("status")).to_have_text("Preferences saved.")
    root = page.locator("html")
    await expect(root).to_have_attribute("data-theme", "dark")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(27, 27, 29)"
    await shot(page, "settings-dark")
    # Kept on the server: another browser, signed in afresh, has them.
    other = await web.open_app(browser, node, BOB)
    await expect(other.locator("html")).to_have_attribute("data-theme", "dark")
    await other.get_by_role("button", name="Compose").click()
    await expect(field(other, "Message")).to_have_value("\n\n-- \nBob\nHamburger Inc.")
    sender = other.get_by_role("combobox", name="From", exact=True)
    await expect(sender.get_by_role("option")).to_have_count(2)
    await expect(sender).to_have_text(re.compile("Bob Builder <bob@example.org>"))
    # Send as the alias: its signature (none) replaces Bob's.
    await sender.select_option(label="Robert <robert@example.org>")
    await expect(field(other, "Message")).to_have_value("")
    await field(other, "To").fill(ALICE)
    await field(other, "Subject").fill("From my other address")
    await field(other, "Message").fill("Hello from Robert.")
    await other.get_by_role("button", name="Send").click()
    await expect(other.get_by_role("status")).to_have_text("Message sent.")
    acc = f"A{node.alice.id}"
    got = await jmap(node, ALICE, [
        ["Email/query", {"accountId": acc, "filter": {"subject": "From my other address"}}, "q"],
        ["Email/get", {"accountId": acc, "properties": ["from"],
                       "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"],
    ])  # fmt: skip
    assert got["g"]["list"][0]["from"] == [{"name": "Robert", "email": "robert@example.org"}]
    # The light theme, chosen, wins over a dark system.
    await other.emulate_media(color_scheme="dark")
    await other.get_by_role("button", name="Settings").click()
    await other.get_by_role("region", name="Settings").get_by_label("Theme").select_option(
        label="Light"
    )
    await other.get_by_role("button", name="Save preferences").click()
    await expect(other.get_by_role("status")).to_have_text("Preferences saved.")
    background = await other.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(255, 255, 255)"
    assert page.errors == [] and other.errors == []


async def test_addresses_to_send_as_added_and_removed(node: Any, browser: Any) -> None:
    """An alias of the account can be added as an address to send as (JMAP
    Identity/set); an address the account does not own is refused in plain
    words; the account's own address cannot be removed."""
    await node.store.alias_add("bobby@example.org", BOB)
    page = await web.open_app(browser, node, BOB)
    await page.get_by_role("button", name="Settings").click()
    settings = page.get_by_role("region", name="Settings")
    await settings.get_by_label("Your other address").fill("alice@example.org")
    await settings.get_by_role("button", name="Add address").click()
    await expect(page.get_by_role("status")).to_have_text(re.compile("^Error: .*may not send as"))
    await settings.get_by_label("Your other address").fill("bobby@example.org")
    await settings.get_by_label("Shown as").fill("Bobby")
    await settings.get_by_role("button", name="Add address").click()
    await expect(page.get_by_role("status")).to_have_text("You can now send as bobby@example.org.")
    send_as = settings.get_by_label("Send as")
    await expect(send_as.get_by_role("option")).to_have_count(2)
    await page.get_by_role("button", name="Compose").click()
    sender = page.get_by_role("combobox", name="From", exact=True)
    await expect(sender.get_by_role("option", name="Bobby <bobby@example.org>")).to_have_count(1)
    await page.get_by_role("button", name="Settings").click()
    await send_as.select_option(label="bob@example.org")
    await settings.get_by_role("button", name="Remove the chosen address").click()
    await expect(page.get_by_role("status")).to_have_text(re.compile("account's own address"))
    await send_as.select_option(label="Bobby <bobby@example.org>")
    await settings.get_by_role("button", name="Remove the chosen address").click()
    said = page.get_by_role("status")
    await expect(said).to_have_text("You no longer send as bobby@example.org.")
    await expect(send_as.get_by_role("option")).to_have_count(1)
    made = await jmap(node, BOB, [["Identity/get", {"accountId": f"A{node.bob.id}"}, "i"]])
    assert [i["email"] for i in made["i"]["list"]] == [BOB]
    assert page.errors == []


async def test_settings_route_refuses_bad_input(node: Any) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(
            base(node) + "/webmail/login", json={"username": BOB, "password": PASSWORD}
        ) as r:
            csrf = {"X-CSRF-Token": (await r.json())["csrf"]}
        url = base(node) + "/webmail/settings"
        for bad in (b"[]", b"{", b'{"theme": "pink"}', b'{"colour": 1}',
                    b'{"conversations": "yes"}', b"{" + b" " * 5000 + b"}"):  # fmt: skip
            async with client.post(url, data=bad, headers=csrf) as r:
                assert r.status == 400, bad
                assert (await r.json())["detail"]
        async with client.post(url, json={"theme": "dark"}) as r:
            assert r.status == 403  # no CSRF token
        async with client.post(url, json={"theme": "dark"}, headers=csrf) as r:
            assert r.status == 200 and (await r.json())["theme"] == "dark"
        async with client.get(url) as r:
            assert await r.json() == {"theme": "dark", "conversations": False}


async def test_rich_text_compose_sent_as_alternative_and_cleaned_by_the_node(
    node: Any, browser: Any
) -> None:
    alice = await web.open_app(browser, node, ALICE)
    bob = await web.open_app(browser, node, BOB)
    await bob.get_by_role("button", name="Compose").click()
    await field(bob, "To").fill(ALICE)
    await field(bob, "Subject").fill("Rich words")
    formatting = bob.get_by_role("toolbar", name="Formatting")
    await expect(formatting.get_by_role("button", name="Bold")).to_be_disabled()
    await field(bob, "Message").fill("Plain start")
    await formatting.get_by_role("button", name="Rich text").click()
    await expect(formatting.get_by_role("button", name="Rich text")).to_have_attribute(
        "aria-pressed", "true"
    )
    editor = field(bob, "Message")  # the same name, now the rich editor
    await expect(editor).to_have_attribute("contenteditable", "true")
    await expect(editor).to_have_text("Plain start")
    await editor.press("Control+End")
    await editor.press("Enter")
    await formatting.get_by_role("button", name="Bold").click()
    await editor.press_sequentially("strong words")
    await formatting.get_by_role("button", name="Bold").click()
    await editor.press("Enter")
    await formatting.get_by_role("button", name="Bulleted list").click()
    await editor.press_sequentially("first point")
    # What a paste could bring: script, a handler, a remote image.
    await bob.evaluate(
        """() => document.getElementById("rich").insertAdjacentHTML("beforeend",
        '<p>pasted<img src="http://evil.test/t.png" onerror="window.PWNED=1">'
        + '<script>window.PWNED=2</script></p>')"""
    )
    await shot(bob, "compose-rich")
    await bob.get_by_role("button", name="Send").click()
    await expect(bob.get_by_role("status")).to_have_text("Message sent.")
    assert await bob.evaluate("() => window.PWNED === undefined")

    arrived = messages(alice).filter(has_text="Rich words")
    await expect(arrived).to_have_count(1)
    await arrived.get_by_role("button").click()
    frame = web.body_frame(alice)
    await expect(frame.locator("b, strong")).to_have_text("strong words")
    await expect(frame.locator("li")).to_have_text("first point")
    acc = f"A{node.alice.id}"
    got = await jmap(node, ALICE, [
        ["Email/query", {"accountId": acc, "filter": {"subject": "Rich words"}}, "q"],
        ["Email/get", {"accountId": acc, "properties": ["bodyStructure", "textBody", "htmlBody",
                                                        "bodyValues"],
                       "fetchAllBodyValues": True,
                       "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"],
    ])  # fmt: skip
    email = got["g"]["list"][0]
    assert email["bodyStructure"]["type"] == "multipart/alternative"
    text = email["bodyValues"][email["textBody"][0]["partId"]]["value"]
    html = email["bodyValues"][email["htmlBody"][0]["partId"]]["value"]
    assert "Plain start" in text and "strong words" in text and "first point" in text
    assert "<" not in text
    assert "strong words" in html and "<li>" in html
    # Stored already clean: nothing that runs or fetches was kept.
    for bad in ("script", "onerror", "evil.test", "PWNED"):
        assert bad not in html, bad
    assert alice.errors == [] and bob.errors == []


async def test_attachments_dropped_on_the_composer(node: Any, browser: Any) -> None:
    bob = await web.open_app(browser, node, BOB)
    await bob.get_by_role("button", name="Compose").click()
    await field(bob, "To").fill(ALICE)
    await field(bob, "Subject").fill("Dropped in")
    await field(bob, "Message").fill("Two files.")
    composer = bob.get_by_role("region", name="New message")
    for name, content in (("one.txt", "first file"), ("two.txt", "second file")):
        dropped = await bob.evaluate_handle(
            """([name, content]) => { const dt = new DataTransfer();
            dt.items.add(new File([content], name, { type: "text/plain" })); return dt; }""",
            [name, content],
        )
        await composer.dispatch_event("dragover", {"dataTransfer": dropped})
        await composer.dispatch_event("drop", {"dataTransfer": dropped})
    files = bob.get_by_role("list", name="Files to send").get_by_role("listitem")
    await expect(files).to_have_text(["one.txt", "two.txt"])
    await bob.get_by_role("button", name="Send").click()
    await expect(bob.get_by_role("status")).to_have_text("Message sent.")
    alice = await web.open_app(browser, node, ALICE)
    await messages(alice).filter(has_text="Dropped in").get_by_role("button").click()
    links = alice.get_by_role("list", name="Attachments").get_by_role("link")
    await expect(links).to_have_count(2)
    async with alice.expect_download() as info:
        await links.filter(has_text="two.txt").click()
    download = await info.value
    assert open(await download.path()).read() == "second file"  # noqa: PTH123
    assert bob.errors == [] and alice.errors == []


async def test_contacts_autocomplete_from_past_correspondents(node: Any, browser: Any) -> None:
    await deliver(node, BOB, "Hello", "from Carol")  # Carol Crêpe <carol@crepes.test>
    page = await web.open_app(browser, node, BOB)
    await page.get_by_role("button", name="Compose").click()
    to = field(page, "To")
    await to.press_sequentially("car")
    options = page.get_by_role("listbox", name="Suggestions").get_by_role("option")
    await expect(options).to_have_text(["Carol Crêpe <carol@crepes.test>"])
    await expect(to).to_have_attribute("aria-autocomplete", "list")
    await to.press("ArrowDown")
    await expect(options.first).to_have_attribute("aria-selected", "true")
    await to.press("Enter")
    await expect(to).to_have_value("Carol Crêpe <carol@crepes.test>, ")
    await expect(page.get_by_role("listbox", name="Suggestions")).to_have_count(0)
    # Unknown people: nothing offered; Escape closes suggestions, not the composer.
    cc = field(page, "Cc")
    await cc.press_sequentially("nobody")
    await cc.press_sequentially("@x")
    await expect(page.get_by_role("listbox", name="Suggestions")).to_have_count(0)
    await cc.fill("")
    await cc.press_sequentially("crep")
    await expect(options).to_have_count(1)
    await cc.press("Escape")
    await expect(page.get_by_role("listbox", name="Suggestions")).to_have_count(0)
    await expect(page.get_by_role("region", name="New message")).to_be_visible()
    # The route is bounded and plain about bad input.
    async with aiohttp.ClientSession() as client:
        auth = {"Authorization": aiohttp.encode_basic_auth(BOB, PASSWORD)}
        async with client.get(base(node) + "/webmail/contacts?q=" + "x" * 101, headers=auth) as r:
            assert r.status == 400
        async with client.get(base(node) + "/webmail/contacts?q=crepes", headers=auth) as r:
            assert await r.json() == {
                "contacts": [{"name": "Carol Crêpe", "email": "carol@crepes.test"}]
            }
    assert page.errors == []


async def test_every_shortcut_and_the_phone_layout(node: Any, browser: Any) -> None:
    """c r a f e # / j k, each pressed as a user would; then the app at a
    phone's width (no sideways scrolling) and in the dark."""
    for n in (1, 2, 3):
        await deliver(node, BOB, f"Key {n}", f"Body {n}.")
    page = await web.open_app(browser, node, BOB)
    await expect(messages(page)).to_have_count(3)
    # (j and k on their own: test_webmail_browser's keyboard test)
    await page.keyboard.press("j")
    await expect(page.get_by_role("heading", name="Key 3")).to_be_visible()
    composer = page.get_by_role("region", name="New message")
    for key, subject in (("r", "Re: Key 3"), ("a", "Re: Key 3"), ("f", "Fwd: Key 3")):
        await page.get_by_role("heading", name="Key 3").click()  # focus in the page, not a field
        await page.keyboard.press(key)
        await expect(composer).to_be_visible()
        await expect(field(page, "Subject")).to_have_value(subject)
        await page.keyboard.press("Escape")
        await expect(composer).to_be_hidden()
        await messages(page).filter(has_text="Key 3").get_by_role("button").click()
    await page.get_by_role("heading", name="Key 3").click()
    await page.keyboard.press("#")
    await expect(page.get_by_role("status")).to_have_text("Moved to Trash.")
    await expect(messages(page)).to_have_count(2)
    await page.keyboard.press("j")
    await expect(page.get_by_role("heading", name="Key 2")).to_be_visible()
    await page.get_by_role("heading", name="Key 2").click()
    await page.keyboard.press("e")
    await expect(page.get_by_role("status")).to_have_text("Moved to Archive.")
    await page.keyboard.press("/")
    await expect(page.get_by_role("searchbox", name="Search mail")).to_be_focused()
    await page.keyboard.press("Escape")
    await page.get_by_role("heading", name="Inbox").click()
    await page.keyboard.press("c")
    await expect(field(page, "To")).to_be_focused()
    await page.keyboard.press("Escape")
    # Focus is visible: a focused button has an outline.
    await page.get_by_role("button", name="Compose").focus()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Shift+Tab")
    outline = await page.evaluate(
        "getComputedStyle(document.activeElement).outlineStyle"
    )
    assert outline == "solid"

    # A phone: one column, nothing wider than the screen.
    await page.set_viewport_size({"width": 375, "height": 740})
    await expect(page.get_by_role("navigation", name="Mailboxes")).to_be_visible()
    await expect(messages(page)).to_have_count(1)
    wide = await page.evaluate("document.documentElement.scrollWidth")
    culprits = await page.evaluate(
        """() => [...document.querySelectorAll("#app *")].filter((e) =>
        e.getBoundingClientRect().right > 376 && e.offsetParent).map((e) =>
        `${e.tagName}#${e.id}.${e.className}`).slice(0, 8)"""
    )
    assert wide <= 375, culprits
    await shot(page, "phone")
    await messages(page).filter(has_text="Key 1").get_by_role("button").click()
    await expect(page.get_by_role("heading", name="Key 1")).to_be_visible()
    await page.get_by_role("heading", name="Key 1").scroll_into_view_if_needed()
    await shot(page, "phone-message")
    # The system's dark mode, followed when the theme is automatic.
    await page.set_viewport_size({"width": 1280, "height": 720})
    await page.emulate_media(color_scheme="dark")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(27, 27, 29)"
    await shot(page, "dark")
    assert page.errors == []


async def test_scrolling_down_adds_pages_to_the_list(node: Any, browser: Any) -> None:
    from support import parse_for_store

    inbox = await node.store.mailbox_get(node.bob.id, "INBOX")
    for n in range(120):
        raw = (
            f"From: Carol <carol@crepes.test>\r\nTo: {BOB}\r\nSubject: Scroll {n}\r\n"
            f"Message-ID: <s{n}@crepes.test>\r\n\r\nBody {n}\r\n"
        ).encode()
        await node.store.append(inbox.id, raw, await parse_for_store(raw))
    page = await web.open_app(browser, node, BOB)
    await expect(messages(page)).to_have_count(50)
    await expect(page.get_by_text("1–50 of 120")).to_be_visible()
    for count in (100, 120):
        await messages(page).last.hover()
        await page.mouse.wheel(0, 50_000)
        await expect(messages(page)).to_have_count(count)
    await expect(page.get_by_text("1–120 of 120")).to_be_visible()
    await expect(messages(page).last).to_contain_text("Scroll 0")
    await expect(page.get_by_role("button", name="Older")).to_be_disabled()
    # A change pushed meanwhile keeps the window the user scrolled to.
    await deliver(node, BOB, "Scroll new", "newest")
    await expect(messages(page).first).to_contain_text("Scroll new")
    await expect(messages(page)).to_have_count(121)
    assert page.errors == []
