"""The mail methods in an account that shares mailboxes with the user
(RFC 8621 §2 myRights, RFC 9670 shareWith): only the shared mailboxes and
their emails are seen, and the user's rights are enforced."""

from __future__ import annotations

from typing import Any

from jmap_mail_support import mailbox_ids, other
from jmap_mail_support import raw_message as message

from mailstack.jmap import api, ids, sharing

PRINCIPALS = "urn:ietf:params:jmap:principals"


async def as_bob(alice: Any, bob: Any, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    """Bob's request naming Alice's account."""
    body = {
        "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail", PRINCIPALS],
        "methodCalls": [[name, {"accountId": alice.account_id, **args}, f"c{n}"]
                        for n, (name, args) in enumerate(calls)],
    }
    request = api.parse_request(body, known=api.capabilities(api.method_table()),
                                max_calls=16)
    shared = await sharing.shared_accounts(bob.node, bob.user)
    response = await api.process(bob.node, bob.user, request, session_state="0",
                                 shared=shared)
    return list(response["methodResponses"])


async def one(alice: Any, bob: Any, name: str, **args: Any) -> dict[str, Any]:
    (response,) = await as_bob(alice, bob, (name, args))
    assert response[0] == name, response
    return dict(response[1])


async def test_shared_mailbox_emails_and_rights(jmap: Any) -> None:
    alice = jmap
    bob = await other(jmap, "bob2@example.org")
    boxes = await mailbox_ids(alice)
    shared_id = ids.decode(ids.MAILBOX, boxes["Archive"])
    assert shared_id is not None
    await alice.store.acl_set(shared_id, "bob2@example.org", "lrs")
    kept = await alice.add(message("Subject: archived", body="shared text\r\n"),
                           mailbox="Archive")
    private = await alice.add(message("Subject: private"))

    got = await one(alice, bob, "Mailbox/get", ids=None)
    (box,) = got["list"]
    assert box["id"] == boxes["Archive"] and box["totalEmails"] == 1
    assert box["myRights"]["mayReadItems"] and box["myRights"]["maySetSeen"]
    assert not box["myRights"]["mayDelete"] and not box["myRights"]["mayAddItems"]
    assert box["isSubscribed"] is False
    got = await one(alice, bob, "Mailbox/get", ids=[boxes["INBOX"]])
    assert got["notFound"] == [boxes["INBOX"]]

    got = await one(alice, bob, "Email/get", ids=[kept, private], properties=["subject"])
    assert got["list"] == [{"id": kept, "subject": "archived"}]
    assert got["notFound"] == [private]
    got = await one(alice, bob, "Email/parse", blobIds=["G" + private[1:], "G" + kept[1:]],
                    properties=["subject"])
    assert got["notFound"] == ["G" + private[1:]]
    got = await one(alice, bob, "SearchSnippet/get", filter={"text": "shared"},
                    emailIds=[kept, private])
    assert [s["emailId"] for s in got["list"]] == [kept] and got["notFound"] == [private]
    thread = (await alice.call("Email/get", ids=[private], properties=["threadId"]))
    got = await one(alice, bob, "Thread/get", ids=[thread["list"][0]["threadId"]])
    assert got["list"] == []

    got = await one(alice, bob, "Mailbox/set", create={"x": {"name": "Mine"}},
                    update={boxes["Archive"]: {"name": "Renamed"}},
                    destroy=[boxes["Archive"]])
    assert got["notCreated"]["x"]["type"] == "forbidden"
    assert got["notUpdated"][boxes["Archive"]]["type"] == "forbidden"
    assert got["notDestroyed"][boxes["Archive"]]["type"] == "forbidden"


async def test_share_with_is_read_and_patched_by_the_owner(jmap: Any) -> None:
    alice = jmap
    bob = await other(jmap, "bob3@example.org")
    boxes = await mailbox_ids(alice)
    principal = ids.encode(ids.PRINCIPAL, bob.user.id)
    (response,) = await alice.request(("Mailbox/set", {"update": {
        boxes["Sent"]: {f"shareWith/{principal}": {"mayReadItems": True}}}}))
    assert response[1]["updated"] == {boxes["Sent"]: None}, response
    got = await one(alice, alice, "Mailbox/get", ids=[boxes["Sent"]],
                    properties=["shareWith", "myRights"])
    assert got["list"][0]["shareWith"] == {principal: sharing.mailbox_rights("lr")}
    got = await one(alice, bob, "Mailbox/get", ids=None, properties=["name"])
    assert got["list"] == [{"id": boxes["Sent"], "name": "Sent"}]
