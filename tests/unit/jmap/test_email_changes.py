"""Email/changes (RFC 8621 §4.3, RFC 8620 §5.2) against the real store,
changes made through IMAP-level store calls and through Email/set."""

from __future__ import annotations

from conftest import Jmap, message


async def state(jmap: Jmap) -> str:
    return str(await jmap.store.account_state(jmap.user.id))


async def test_created_updated_destroyed(jmap: Jmap) -> None:
    kept = await jmap.add(message("kept"))
    doomed = await jmap.add(message("doomed"))
    since = await state(jmap)
    unchanged = await jmap.call("Email/changes", sinceState=since)
    assert unchanged["created"] == unchanged["updated"] == unchanged["destroyed"] == []
    assert unchanged["newState"] == since and unchanged["hasMoreChanges"] is False

    new = await jmap.add(message("new"))
    # An IMAP STORE is a change JMAP sees (one MODSEQ for both).
    inbox = await jmap.mailbox()
    (kept_meta,) = [m for m in await jmap.store.messages(inbox.id) if f"E{m.email_id}" == kept]
    await jmap.store.store_flags(inbox.id, [kept_meta.uid], ["\\Seen"], "add")
    await jmap.call("Email/set", destroy=[doomed])
    changes = await jmap.call("Email/changes", sinceState=since)
    assert changes["oldState"] == since
    assert changes["newState"] == await state(jmap)
    assert changes["created"] == [new]
    assert changes["updated"] == [kept]
    assert changes["destroyed"] == [doomed]
    assert changes["accountId"] == jmap.account_id


async def test_max_changes_pages(jmap: Jmap) -> None:
    since = await state(jmap)
    made = [await jmap.add(message(f"m{n}")) for n in range(5)]
    seen: list[str] = []
    pages = 0
    while True:
        page = await jmap.call("Email/changes", sinceState=since, maxChanges=2)
        assert len(page["created"]) + len(page["updated"]) + len(page["destroyed"]) <= 2
        seen += page["created"]
        since = page["newState"]
        pages += 1
        if not page["hasMoreChanges"]:
            break
    assert sorted(seen) == sorted(made) and pages == 3


async def test_an_email_flagged_deleted_is_destroyed_for_jmap(jmap: Jmap) -> None:
    email = await jmap.add(message("x"))
    since = await state(jmap)
    hidden = await jmap.add(message("hidden"), flags=("\\Deleted",))
    inbox = await jmap.mailbox()
    (meta,) = [m for m in await jmap.store.messages(inbox.id) if f"E{m.email_id}" == email]
    await jmap.store.store_flags(inbox.id, [meta.uid], ["\\Deleted"], "add")
    changes = await jmap.call("Email/changes", sinceState=since)
    assert hidden not in changes["created"]
    assert changes["destroyed"] == [email] and changes["updated"] == []


async def test_errors(jmap: Jmap) -> None:
    for bad in ("99999", "x", "01", ""):
        error = await jmap.error("Email/changes", sinceState=bad)
        assert error["type"] == "cannotCalculateChanges", bad
    assert (await jmap.error("Email/changes"))["type"] == "invalidArguments"
    for bad_max in (0, -1, "2"):
        error = await jmap.error("Email/changes", sinceState="0", maxChanges=bad_max)
        assert error["type"] == "invalidArguments"
