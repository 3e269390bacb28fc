"""JMAP sharing against the real store: alice shares a mailbox with bob;
bob's session lists alice's account, and in it he sees the shared mailbox
only, with his rights (RFC 8621 §2 myRights); shareWith and Principals
(RFC 9670)."""

from __future__ import annotations

from typing import Any

import pytest
from jmap_mail_support import other, raw_message

from mailstack.jmap import api, ids, session, sharing
from mailstack.jmap.sharing import acl_from_rights, mailbox_rights

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
PRINCIPALS = "urn:ietf:params:jmap:principals"
OWNER_CAP = "urn:ietf:params:jmap:principals:owner"


async def request(jmap: Any, *calls: tuple[str, dict[str, Any]]) -> list[list[Any]]:
    """One request as the HTTP service makes it, with the shared accounts."""
    body = {
        "using": [CORE, MAIL, PRINCIPALS],
        "methodCalls": [[name, args, f"c{n}"] for n, (name, args) in enumerate(calls)],
    }
    parsed = api.parse_request(body, known=api.capabilities(api.method_table()), max_calls=16)
    shared = await sharing.shared_accounts(jmap.node, jmap.user)
    response = await api.process(jmap.node, jmap.user, parsed, session_state="0", shared=shared)
    return list(response["methodResponses"])


async def call(jmap: Any, name: str, **args: Any) -> dict[str, Any]:
    (response,) = await request(jmap, (name, args))
    assert response[0] == name, response
    return dict(response[1])


async def error(jmap: Any, name: str, **args: Any) -> str:
    (response,) = await request(jmap, (name, args))
    assert response[0] == "error", response
    return str(response[1]["type"])


def test_rights_mapping() -> None:
    rights = mailbox_rights("lrs")
    assert rights == {
        "mayReadItems": True, "mayAddItems": False, "mayRemoveItems": False,
        "maySetSeen": True, "maySetKeywords": False, "mayCreateChild": False,
        "mayRename": False, "mayDelete": False, "maySubmit": False,
    }  # fmt: skip
    assert mailbox_rights("lrswipkxtea") == dict.fromkeys(rights, True)
    assert not mailbox_rights("lrt")["mayRemoveItems"]  # t and e both
    assert acl_from_rights({"mayReadItems": True, "maySetSeen": True}) == "lrs"
    assert acl_from_rights({"mayRemoveItems": True, "mayDelete": True}) == "xte"
    assert acl_from_rights({"mayReadItems": False}) == ""
    for bad in ({"mayFly": True}, {"mayReadItems": 1}):
        with pytest.raises(ValueError):
            acl_from_rights(bad)
    owner: Any = None
    assert sharing.SharedAccount(owner, {1: "lrp", 2: "l"}).read_only
    assert not sharing.SharedAccount(owner, {1: "lr", 2: "ls"}).read_only


async def setup(jmap: Any) -> tuple[Any, Any, dict[str, str]]:
    """bob (the fixture's user) and alice, who shares Team with bob (lr);
    the JMAP email ids of alice's messages."""
    alice = await other(jmap, "alice@example.org")
    await jmap.store.mailbox_create(alice.user.id, "Team")
    team = await jmap.store.mailbox_get(alice.user.id, "Team")
    emails = {
        "team": await alice.add(raw_message("Subject: team plan"), "Team"),
        "private": await alice.add(raw_message("Subject: private note"), "INBOX"),
    }
    await jmap.store.acl_set(team.id, "bob@example.org", "lr")
    return alice, team, emails


async def test_session_lists_the_shared_account(jmap: Any) -> None:
    alice, team, _ = await setup(jmap)
    body = await session.session(jmap.node, jmap.user, "https://mx.test")
    own, theirs = ids.encode(ids.ACCOUNT, jmap.user.id), ids.encode(ids.ACCOUNT, alice.user.id)
    assert list(body["accounts"]) == [own, theirs]
    shared = body["accounts"][theirs]
    assert shared["name"] == "alice@example.org"
    assert shared["isPersonal"] is False and shared["isReadOnly"] is True
    caps = shared["accountCapabilities"]
    assert set(caps) == {CORE, MAIL, OWNER_CAP}
    assert caps[MAIL]["mayCreateTopLevelMailbox"] is False
    principal_bob = ids.encode(ids.PRINCIPAL, jmap.user.id)
    assert caps[OWNER_CAP] == {
        "accountIdForPrincipal": own,
        "principalId": ids.encode(ids.PRINCIPAL, alice.user.id),
    }
    mine = body["accounts"][own]["accountCapabilities"]
    assert mine[PRINCIPALS] == {"currentUserPrincipalId": principal_bob}
    assert mine[OWNER_CAP]["principalId"] == principal_bob
    assert body["primaryAccounts"][MAIL] == own
    # With write rights the account is no longer read-only; the state changes.
    await jmap.store.acl_set(team.id, "bob@example.org", "lrs")
    again = await session.session(jmap.node, jmap.user, "https://mx.test")
    assert again["accounts"][theirs]["isReadOnly"] is False
    assert again["state"] != body["state"]


async def test_shared_account_shows_only_what_is_shared(jmap: Any) -> None:
    alice, team, emails = await setup(jmap)
    account = ids.encode(ids.ACCOUNT, alice.user.id)
    got = await call(jmap, "Mailbox/get", accountId=account, ids=None)
    (box,) = got["list"]
    assert box["name"] == "Team" and box["parentId"] is None
    assert box["myRights"]["mayReadItems"] is True
    assert box["myRights"]["mayAddItems"] is False
    assert box["shareWith"] is None  # bob may not administer it
    inbox_id = ids.encode(ids.MAILBOX, (await alice.mailbox("INBOX")).id)
    got = await call(jmap, "Mailbox/get", accountId=account, ids=[inbox_id])
    assert got["notFound"] == [inbox_id]
    query = await call(jmap, "Mailbox/query", accountId=account)
    assert query["ids"] == [box["id"]]

    found = await call(jmap, "Email/query", accountId=account)
    assert found["ids"] == [emails["team"]]
    got = await call(jmap, "Email/get", accountId=account, ids=list(emails.values()),
                     properties=["subject", "mailboxIds"])  # fmt: skip
    assert [e["subject"] for e in got["list"]] == ["team plan"]
    assert got["notFound"] == [emails["private"]]
    got = await call(jmap, "Email/get", accountId=account, ids=None, properties=["id"])
    assert [e["id"] for e in got["list"]] == [emails["team"]]
    thread = (await call(jmap, "Email/get", accountId=account, ids=[emails["team"]],
                         properties=["threadId"]))["list"][0]["threadId"]  # fmt: skip
    got = await call(jmap, "Thread/get", accountId=account, ids=[thread])
    assert got["list"] == [{"id": thread, "emailIds": [emails["team"]]}]

    # Email/set limits itself to what is shared: with "lr" the account is
    # read-only (RFC 8620 §5.3; an empty /set changes nothing and is no error).
    seen = {emails["team"]: {"keywords/$seen": True}}
    assert await error(jmap, "Email/set", accountId=account, update=seen) == "accountReadOnly"
    # Mailbox/changes keeps to the shared mailboxes too (jmap-mail).
    changes = await call(jmap, "Mailbox/changes", accountId=account, sinceState="0")
    assert changes["created"] == [box["id"]]
    # Without the r right, the mailbox shows (l) but its emails do not.
    await jmap.store.acl_set(team.id, "bob@example.org", "l")
    assert (await call(jmap, "Email/query", accountId=account))["ids"] == []
    (box,) = (await call(jmap, "Mailbox/get", accountId=account))["list"]
    assert box["myRights"]["mayReadItems"] is False
    # Revoked: the account is gone.
    await jmap.store.acl_set(team.id, "bob@example.org", "")
    assert await error(jmap, "Mailbox/get", accountId=account) == "accountNotFound"


async def test_an_account_not_shared_is_not_found(jmap: Any) -> None:
    alice, _team, _ = await setup(jmap)
    carol = await other(jmap, "carol@example.org")
    account = ids.encode(ids.ACCOUNT, alice.user.id)
    for name in ("Mailbox/get", "Email/query", "Email/get", "Thread/get"):
        args: dict[str, Any] = {"accountId": account}
        if name in ("Email/get", "Thread/get"):
            args["ids"] = []
        assert await error(carol, name, **args) == "accountNotFound", name


async def test_owner_sets_share_with(jmap: Any) -> None:
    alice, team, _ = await setup(jmap)
    carol = await other(jmap, "carol@example.org")
    bob_p = ids.encode(ids.PRINCIPAL, jmap.user.id)
    carol_p = ids.encode(ids.PRINCIPAL, carol.user.id)
    account = ids.encode(ids.ACCOUNT, alice.user.id)
    team_id = ids.encode(ids.MAILBOX, team.id)
    got = await call(alice, "Mailbox/get", accountId=account, ids=[team_id],
                     properties=["shareWith", "myRights"])  # fmt: skip
    assert got["list"][0]["shareWith"] == {bob_p: mailbox_rights("lr")}
    assert all(got["list"][0]["myRights"].values())
    done = await call(alice, "Mailbox/set", accountId=account, update={team_id: {
        f"shareWith/{carol_p}": {"mayReadItems": True, "maySetSeen": True},
        f"shareWith/{bob_p}/mayAddItems": True,
    }})  # fmt: skip
    assert done["updated"] == {team_id: None}, done
    assert await jmap.store.acl_get(team.id) == {
        "bob@example.org": "ilr", "carol@example.org": "lrs"
    }
    done = await call(alice, "Mailbox/set", accountId=account,
                      update={team_id: {f"shareWith/{bob_p}": None}})  # fmt: skip
    assert await jmap.store.acl_get(team.id) == {"carol@example.org": "lrs"}
    for bad in (
        {"shareWith": {ids.encode(ids.PRINCIPAL, alice.user.id): {"mayReadItems": True}}},
        {"shareWith": {"P999": {"mayReadItems": True}}},
        {"shareWith": {bob_p: {"mayFly": True}}},
        {"shareWith": "everyone"},
    ):
        done = await call(alice, "Mailbox/set", accountId=account, update={team_id: bad})
        assert done["notUpdated"][team_id]["type"] == "invalidProperties", bad
    done = await call(alice, "Mailbox/set", accountId=account,
                      update={team_id: {"shareWith": None}})  # fmt: skip
    assert await jmap.store.acl_get(team.id) == {}
    # Bob cannot share alice's mailbox: Mailbox/set is not offered in her account.
    assert await error(jmap, "Mailbox/set", accountId=account, update={}) == "accountNotFound"


async def test_principals(jmap: Any) -> None:
    alice, _team, _ = await setup(jmap)
    own = ids.encode(ids.ACCOUNT, jmap.user.id)
    bob_p = ids.encode(ids.PRINCIPAL, jmap.user.id)
    alice_p = ids.encode(ids.PRINCIPAL, alice.user.id)
    got = await call(jmap, "Principal/get", accountId=own, ids=None)
    by_id = {p["id"]: p for p in got["list"]}
    assert set(by_id) == {bob_p, alice_p}
    assert by_id[alice_p] == {
        "id": alice_p, "type": "individual", "name": "alice@example.org",
        "description": None, "email": "alice@example.org", "timeZone": None,
        "capabilities": {},
        "accounts": {ids.encode(ids.ACCOUNT, alice.user.id): {
            "name": "alice@example.org", "isPersonal": False, "isReadOnly": True}},
    }  # fmt: skip
    assert by_id[bob_p]["accounts"][own]["isPersonal"] is True
    got = await call(jmap, "Principal/get", accountId=own, ids=[alice_p, "P999", "x"],
                     properties=["email"])  # fmt: skip
    assert got["list"] == [{"id": alice_p, "email": "alice@example.org"}]
    assert got["notFound"] == ["P999", "x"]
    state = got["state"]

    query = await call(jmap, "Principal/query", accountId=own, filter={"text": "ALICE"},
                       calculateTotal=True)  # fmt: skip
    assert query["ids"] == [alice_p] and query["total"] == 1
    query = await call(jmap, "Principal/query", accountId=own,
                       filter={"accountIds": [ids.encode(ids.ACCOUNT, alice.user.id)]})
    assert query["ids"] == [alice_p]
    query = await call(jmap, "Principal/query", accountId=own,
                       sort=[{"property": "name", "isAscending": False}])  # fmt: skip
    assert query["ids"] == [bob_p, alice_p]
    query = await call(jmap, "Principal/query", accountId=own, filter={
        "operator": "NOT", "conditions": [{"type": "individual"}]})  # fmt: skip
    assert query["ids"] == []
    assert await error(jmap, "Principal/query", accountId=own, filter={"zodiac": "x"}) == (
        "unsupportedFilter"
    )
    assert await error(jmap, "Principal/query", accountId=own, sort=[{"property": "id"}]) == (
        "unsupportedSort"
    )

    changes = await call(jmap, "Principal/changes", accountId=own, sinceState=state)
    assert changes["newState"] == state and changes["created"] == []
    await other(jmap, "carol@example.org")
    assert await error(jmap, "Principal/changes", accountId=own, sinceState=state) == (
        "cannotCalculateChanges"
    )
    # The Principals are in the user's own account only.
    shared = ids.encode(ids.ACCOUNT, alice.user.id)
    assert await error(jmap, "Principal/get", accountId=shared, ids=None) == (
        "accountNotSupportedByMethod"
    )


async def test_writes_in_a_shared_account_follow_the_rights(jmap: Any) -> None:
    alice, team, emails = await setup(jmap)
    await jmap.store.mailbox_create(alice.user.id, "Done")
    done = await jmap.store.mailbox_get(alice.user.id, "Done")
    await jmap.store.acl_set(team.id, "bob@example.org", "lrs")
    account = ids.encode(ids.ACCOUNT, alice.user.id)
    plan = emails["team"]

    async def update(patch: dict[str, Any]) -> dict[str, Any]:
        return await call(jmap, "Email/set", accountId=account, update={plan: patch})

    got = await update({"keywords/$seen": True})
    assert got["updated"] == {plan: None}, got
    got = await update({"keywords/$flagged": True})  # no w: maySetKeywords is false
    assert got["notUpdated"][plan]["type"] == "forbidden"
    got = await call(jmap, "Email/set", accountId=account, destroy=[plan])
    assert got["notDestroyed"][plan]["type"] == "forbidden"
    done_id = ids.encode(ids.MAILBOX, done.id)
    # A move needs mayRemoveItems (t, e) where the email is: refused before
    # anything is said about Done, which is not shared with bob.
    got = await update({"mailboxIds": {done_id: True}})
    assert got["notUpdated"][plan]["type"] == "forbidden"
    got = await call(jmap, "Email/set", accountId=account, update={emails["private"]: {
        "keywords/$seen": True}})  # fmt: skip
    assert got["notUpdated"][emails["private"]]["type"] == "notFound"
    (meta,) = await jmap.store.messages(team.id)
    assert meta.flags == {"\\Seen"}

    # Copy from the shared account into bob's own; into it needs mayAddItems.
    inbox = ids.encode(ids.MAILBOX, (await jmap.mailbox("INBOX")).id)
    got = await call(jmap, "Email/copy", fromAccountId=account, accountId=jmap.account_id,
                     create={"c1": {"id": plan, "mailboxIds": {inbox: True}}})  # fmt: skip
    assert "c1" in got["created"], got
    mine = got["created"]["c1"]["id"]
    team_id = ids.encode(ids.MAILBOX, team.id)
    got = await call(jmap, "Email/copy", fromAccountId=jmap.account_id, accountId=account,
                     create={"c2": {"id": mine, "mailboxIds": {team_id: True}}})  # fmt: skip
    assert got["notCreated"]["c2"]["type"] == "forbidden"
    # With i, w, t and e: keywords, copies in, and moves between shared mailboxes.
    await jmap.store.acl_set(team.id, "bob@example.org", "lrswite")
    await jmap.store.acl_set(done.id, "bob@example.org", "lri")
    assert (await update({"keywords/$flagged": True}))["updated"] == {plan: None}
    got = await call(jmap, "Email/copy", fromAccountId=jmap.account_id, accountId=account,
                     create={"c2": {"id": mine, "mailboxIds": {team_id: True}}})  # fmt: skip
    assert "c2" in got["created"], got
    assert (await update({"mailboxIds": {done_id: True}}))["updated"] == {plan: None}
    assert len(await jmap.store.messages(done.id)) == 1
