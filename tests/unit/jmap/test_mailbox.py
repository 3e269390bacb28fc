"""Mailbox/get, /changes, /query, /queryChanges, /set (RFC 8621 §2) against
the real SQLite store."""

from __future__ import annotations

from typing import Any

from jmap_mail_support import mailbox_ids, other
from jmap_mail_support import raw_message as message

COUNTS = ("totalEmails", "unreadEmails", "totalThreads", "unreadThreads")



async def by_name(jmap: Any) -> dict[str, dict[str, Any]]:
    got = await jmap.call("Mailbox/get", ids=None)
    return {m["name"]: m for m in got["list"]}


async def test_get_default_mailboxes_with_roles_rights_and_counts(jmap: Any) -> None:
    await jmap.add(message("Subject: a"))
    await jmap.add(message("Subject: b"), flags=["\\Seen"])
    got = await jmap.call("Mailbox/get", ids=None)
    assert got["accountId"] == jmap.account_id
    assert got["notFound"] == [] and got["state"].isdigit()
    boxes = {m["name"]: m for m in got["list"]}
    assert {name: m["role"] for name, m in boxes.items()} == {
        "INBOX": "inbox", "Sent": "sent", "Drafts": "drafts", "Trash": "trash",
        "Junk": "junk", "Archive": "archive"}
    inbox = boxes["INBOX"]
    assert set(inbox) == {"id", "name", "parentId", "role", "sortOrder", *COUNTS, "myRights",
                          "isSubscribed"}  # shareWith: with the principals capability
    assert [inbox[c] for c in COUNTS] == [2, 1, 2, 1]
    assert inbox["parentId"] is None and inbox["sortOrder"] == 0
    assert inbox["myRights"]["mayReadItems"] and not inbox["myRights"]["mayDelete"]
    assert all(boxes["Trash"]["myRights"].values())


async def test_get_by_ids_with_properties_and_not_found(jmap: Any) -> None:
    inbox = (await mailbox_ids(jmap))["INBOX"]
    got = await jmap.call("Mailbox/get", ids=[inbox, "M999999", "bogus", inbox],
                          properties=["name"])
    assert got["list"] == [{"id": inbox, "name": "INBOX"}]
    assert got["notFound"] == ["M999999", "bogus"]
    error = await jmap.error("Mailbox/get", ids=None, properties=["name", "colour"])
    assert error["type"] == "invalidArguments"
    error = await jmap.error("Mailbox/get", accountId="A999", ids=None)
    assert error["type"] == "accountNotFound"


async def test_get_over_max_objects_is_request_too_large(jmap: Any) -> None:
    jmap = await other(jmap, max_objects_in_get=2)
    error = await jmap.error("Mailbox/get", ids=["M1", "M2", "M3"])
    assert error["type"] == "requestTooLarge"


async def test_set_create_tree_with_creation_ids_then_get(jmap: Any) -> None:
    got = await jmap.call("Mailbox/set", create={
        "child": {"name": "Child", "parentId": "#parent", "isSubscribed": True,
                  "sortOrder": 5},
        "parent": {"name": "Projects"},
    })
    assert set(got["created"]) == {"child", "parent"}
    parent = got["created"]["parent"]
    assert parent["totalEmails"] == 0 and parent["myRights"]["mayDelete"]
    assert parent["isSubscribed"] is False and parent["sortOrder"] == 0
    assert "name" not in parent  # sent, and kept as sent
    boxes = await by_name(jmap)
    assert boxes["Child"]["parentId"] == parent["id"]
    assert boxes["Child"]["isSubscribed"] is True and boxes["Child"]["sortOrder"] == 5
    names = {m.name for m in await jmap.store.mailbox_list(jmap.user.id)}
    assert "Projects/Child" in names
    subscribed = await jmap.store.subscriptions(jmap.user.id)
    assert "Projects/Child" in subscribed and "Projects" not in subscribed


async def test_set_create_errors(jmap: Any) -> None:
    got = await jmap.call("Mailbox/set", create={
        "dup": {"name": "Sent"},
        "slash": {"name": "a/b"},
        "empty": {"name": ""},
        "role": {"name": "Sent2", "role": "sent"},
        "badrole": {"name": "X", "role": "nonsense"},
        "serverset": {"name": "Y", "totalEmails": 3},
        "orphan": {"name": "Z", "parentId": "M999999"},
    })
    assert got["created"] is None
    errors = got["notCreated"]
    assert {cid: e["type"] for cid, e in errors.items()} == dict.fromkeys(errors,
                                                                         "invalidProperties")
    assert errors["dup"]["properties"] == ["name"]
    assert errors["role"]["properties"] == ["role"]
    assert errors["serverset"]["properties"] == ["totalEmails"]
    assert errors["orphan"]["properties"] == ["parentId"]


async def test_set_create_with_role(jmap: Any) -> None:
    got = await jmap.call("Mailbox/set", create={"f": {"name": "Important", "role": "flagged"}})
    assert "f" in got["created"]
    assert (await by_name(jmap))["Important"]["role"] == "flagged"


async def test_set_update_rename_move_subscribe_sort(jmap: Any) -> None:
    created = (await jmap.call("Mailbox/set", create={
        "a": {"name": "A"}, "b": {"name": "B"}}))["created"]
    a, b = created["a"]["id"], created["b"]["id"]
    got = await jmap.call("Mailbox/set", update={
        b: {"parentId": a, "name": "Bee", "isSubscribed": True, "sortOrder": 3}})
    assert got["updated"] == {b: None}
    boxes = await by_name(jmap)
    assert boxes["Bee"]["parentId"] == a and boxes["Bee"]["sortOrder"] == 3
    assert boxes["Bee"]["isSubscribed"] is True
    assert "A/Bee" in {m.name for m in await jmap.store.mailbox_list(jmap.user.id)}
    # Renaming the parent keeps the child's id.
    await jmap.call("Mailbox/set", update={a: {"name": "Aye"}})
    boxes = await by_name(jmap)
    assert boxes["Bee"]["id"] == b and boxes["Bee"]["parentId"] == a
    # A mailbox cannot move below itself.
    got = await jmap.call("Mailbox/set", update={a: {"parentId": b}})
    assert got["notUpdated"][a]["type"] == "invalidProperties"


async def test_set_update_errors(jmap: Any) -> None:
    ids = await mailbox_ids(jmap)
    got = await jmap.call("Mailbox/set", update={
        ids["INBOX"]: {"name": "Other"},
        ids["Sent"]: {"totalEmails": 1},
        ids["Drafts"]: {"name": "Trash"},
        ids["Junk"]: {"myRights/mayDelete": False},
        "M999999": {"name": "x"},
    })
    errors = got["notUpdated"]
    assert errors[ids["INBOX"]]["type"] == "forbidden"
    assert errors[ids["Sent"]]["type"] == "invalidProperties"
    assert errors[ids["Drafts"]]["type"] == "invalidProperties"
    assert errors[ids["Junk"]]["type"] == "invalidPatch"
    assert errors["M999999"]["type"] == "notFound"


async def test_set_destroy_rules(jmap: Any) -> None:
    created = (await jmap.call("Mailbox/set", create={
        "p": {"name": "P"}, "c": {"name": "C", "parentId": "#p"},
        "full": {"name": "Full"}}))["created"]
    p, c, full = (created[k]["id"] for k in ("p", "c", "full"))
    await jmap.add(message("Subject: keep"), mailbox="Full")
    ids = await mailbox_ids(jmap)
    got = await jmap.call("Mailbox/set", destroy=[p, full, ids["INBOX"], "M999999"])
    assert got["destroyed"] is None
    assert {k: v["type"] for k, v in got["notDestroyed"].items()} == {
        p: "mailboxHasChild", full: "mailboxHasEmail", ids["INBOX"]: "forbidden",
        "M999999": "notFound"}
    # Parent and child together; the emails with onDestroyRemoveEmails.
    got = await jmap.call("Mailbox/set", destroy=[p, c, full], onDestroyRemoveEmails=True)
    assert sorted(got["destroyed"]) == sorted([p, c, full])
    assert not {"P", "P/C", "Full"} & set(await mailbox_ids(jmap))
    assert (await jmap.call("Mailbox/get", ids=[p]))["notFound"] == [p]


async def test_set_if_in_state(jmap: Any) -> None:
    state = (await jmap.call("Mailbox/get", ids=[]))["state"]
    error = await jmap.error("Mailbox/set", ifInState=state + "0", create={"x": {"name": "X"}})
    assert error["type"] == "stateMismatch"
    got = await jmap.call("Mailbox/set", ifInState=state, create={"x": {"name": "X"}})
    assert got["oldState"] == state and got["newState"] != state


async def test_set_over_max_objects_is_request_too_large(jmap: Any) -> None:
    jmap = await other(jmap, max_objects_in_set=1)
    error = await jmap.error("Mailbox/set", create={"a": {"name": "A"}, "b": {"name": "B"}})
    assert error["type"] == "requestTooLarge"


async def test_changes_after_create_update_destroy_and_counts_only(jmap: Any) -> None:
    state = (await jmap.call("Mailbox/get", ids=[]))["state"]
    created = (await jmap.call("Mailbox/set", create={"a": {"name": "A"}}))["created"]
    a = created["a"]["id"]
    got = await jmap.call("Mailbox/changes", sinceState=state)
    assert got["created"] == [a] and got["updated"] == [] and got["destroyed"] == []
    assert got["oldState"] == state and got["hasMoreChanges"] is False
    state = got["newState"]
    await jmap.add(message("Subject: count me"), mailbox="A")
    got = await jmap.call("Mailbox/changes", sinceState=state)
    assert got["updated"] == [a]
    assert got["updatedProperties"] == list(COUNTS)
    state = got["newState"]
    await jmap.call("Mailbox/set", update={a: {"name": "B"}})
    got = await jmap.call("Mailbox/changes", sinceState=state)
    assert got["updated"] == [a] and got["updatedProperties"] is None
    state = got["newState"]
    await jmap.call("Mailbox/set", destroy=[a], onDestroyRemoveEmails=True)
    got = await jmap.call("Mailbox/changes", sinceState=state)
    assert got["destroyed"] == [a]
    same = await jmap.call("Mailbox/changes", sinceState=got["newState"])
    assert same["created"] == same["updated"] == same["destroyed"] == []
    assert same["newState"] == got["newState"]


async def test_changes_bad_states(jmap: Any) -> None:
    for since in ("nope", "99999999999"):
        error = await jmap.error("Mailbox/changes", sinceState=since)
        assert error["type"] == "cannotCalculateChanges"
    error = await jmap.error("Mailbox/changes", sinceState="1", maxChanges=0)
    assert error["type"] == "invalidArguments"


async def test_query_filters_and_sorts(jmap: Any) -> None:
    created = (await jmap.call("Mailbox/set", create={
        "w": {"name": "Work", "sortOrder": 2, "isSubscribed": True},
        "h": {"name": "Home", "sortOrder": 1},
        "wa": {"name": "alpha", "parentId": "#w"},
    }))["created"]
    w, h, wa = (created[k]["id"] for k in ("w", "h", "wa"))
    ids = await mailbox_ids(jmap)

    async def query(**args: Any) -> list[str]:
        return list((await jmap.call("Mailbox/query", **args))["ids"])

    assert await query(filter={"parentId": w}) == [wa]
    assert await query(filter={"name": "OM"}) == [h]
    assert await query(filter={"role": "inbox"}) == [ids["INBOX"]]
    assert set(await query(filter={"hasAnyRole": False})) == {w, h, wa}
    assert await query(filter={"isSubscribed": True, "hasAnyRole": False}) == [w]
    assert set(await query(filter={"operator": "NOT", "conditions": [
        {"hasAnyRole": True}, {"parentId": w}]})) == {w, h}
    assert await query(filter={"hasAnyRole": False, "parentId": None},
                       sort=[{"property": "sortOrder"}]) == [h, w]
    assert await query(filter={"hasAnyRole": False},
                       sort=[{"property": "name", "isAscending": False}]) == [w, h, wa]
    assert await query(filter={"hasAnyRole": False}, sort=[{"property": "name"}],
                       sortAsTree=True) == [h, w, wa]
    assert await query(filter={"name": "alpha"}, filterAsTree=True) == []
    got = await jmap.call("Mailbox/query", filter={"hasAnyRole": False},
                          sort=[{"property": "name"}], position=1, limit=1,
                          calculateTotal=True)
    assert got["ids"] == [h] and got["position"] == 1 and got["total"] == 3
    got = await jmap.call("Mailbox/query", filter={"hasAnyRole": False},
                          sort=[{"property": "name"}], anchor=h, anchorOffset=1)
    assert got["ids"] == [w] and got["position"] == 2
    error = await jmap.error("Mailbox/query", anchor="M999999")
    assert error["type"] == "anchorNotFound"
    error = await jmap.error("Mailbox/query", filter={"colour": "red"})
    assert error["type"] == "unsupportedFilter"
    error = await jmap.error("Mailbox/query", sort=[{"property": "totalEmails"}])
    assert error["type"] == "unsupportedSort"


async def test_query_changes(jmap: Any) -> None:
    args = {"filter": {"hasAnyRole": False}, "sort": [{"property": "name"}]}
    first = await jmap.call("Mailbox/query", **args)
    assert first["ids"] == [] and first["canCalculateChanges"] is True
    created = (await jmap.call("Mailbox/set", create={"b": {"name": "B"}}))["created"]
    b = created["b"]["id"]
    got = await jmap.call("Mailbox/queryChanges", sinceQueryState=first["queryState"],
                          calculateTotal=True, **args)
    assert got["removed"] == [] and got["added"] == [{"id": b, "index": 0}]
    assert got["total"] == 1 and got["oldQueryState"] == first["queryState"]
    later = got["newQueryState"]
    await jmap.call("Mailbox/set", update={b: {"name": "A"}})
    got = await jmap.call("Mailbox/queryChanges", sinceQueryState=later, **args)
    assert got["removed"] == [b] and got["added"] == [{"id": b, "index": 0}]
    error = await jmap.error("Mailbox/queryChanges", sinceQueryState=later, maxChanges=1,
                             **args)
    assert error["type"] == "tooManyChanges"
    error = await jmap.error("Mailbox/queryChanges", sinceQueryState=later, sortAsTree=True)
    assert error["type"] == "cannotCalculateChanges"
