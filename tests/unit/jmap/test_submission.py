"""JMAP EmailSubmission (RFC 8621 §7) over the real store: sending as SMTP
submission does (sender checks, DKIM, Bcc: removed, local mailboxes at once
and the queue for the rest), the envelope checks, undo while pending,
deliveryStatus, query, and onSuccess* as an implicit Email/set."""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest
from submit_support import Client

from mailstack.jmap.method import Method
from mailstack.jmap.submission import without_bcc
from mailstack.msgauth import keys

from support import append

SUBMISSION = "urn:ietf:params:jmap:submission"

DRAFT = (
    "From: Bob <bob@crepes.fr>\r\nTo: carol@crepes.fr\r\nCc: Ann <ann@poly.edu>\r\n"
    "Bcc: dave@crepes.fr,\r\n eve@crepes.fr\r\nSubject: crepes tonight\r\n"
    "Message-ID: <d1@crepes.fr>\r\n\r\nBring jam.\r\n"
)


class World:
    def __init__(self, node: Any, bob: Client) -> None:
        self.node = node
        self.bob = bob
        self.store = node.store

    async def draft(self, text: str = DRAFT) -> str:
        drafts = await self.store.mailbox_get(self.bob.user.id, "Drafts")
        await append(self.store, drafts.id, text.encode(), ["$draft"])
        emails = await self.store.emails(self.bob.user.id, drafts.id)
        return f"E{emails[-1].email_id}"

    async def identity(self) -> str:
        got = await self.bob.call("Identity/get", ids=None)
        return got["list"][0]["id"]

    async def inbox(self, address: str) -> list[bytes]:
        account = await self.store.account_get(address)
        inbox = await self.store.mailbox_get(account.id, "INBOX")
        metas = await self.store.messages(inbox.id)
        found = await self.store.messages_bytes(inbox.id, [m.uid for m in metas])
        return [found[m.uid] for m in metas]

    async def submit(self, **submission: Any) -> dict[str, Any]:
        submission.setdefault("identityId", await self.identity())
        return await self.bob.call("EmailSubmission/set", create={"s": submission})


@pytest.fixture
async def world(node_factory):
    node = await node_factory(listen=(), queue={"enabled": False}, limits={"recipients": 5})
    bob = await node.add_user("bob@crepes.fr")
    for address in ("carol@crepes.fr", "dave@crepes.fr", "eve@crepes.fr"):
        await node.add_user(address)
    await keys.create(node.store, "crepes.fr")
    return World(node, Client(node, bob))


async def test_a_submission_goes_out_as_smtp_submission_sends(world):
    email_id = await world.draft()
    result = await world.submit(emailId=email_id)
    created = result["created"]["s"]
    # Delivered to local recipients already: it cannot be recalled (§7).
    assert created["undoStatus"] == "final"
    assert created["envelope"] == {
        "mailFrom": {"email": "bob@crepes.fr", "parameters": None},
        "rcptTo": [
            {"email": address, "parameters": None}
            for address in ("carol@crepes.fr", "ann@poly.edu", "dave@crepes.fr", "eve@crepes.fr")
        ],
    }
    status = created["deliveryStatus"]
    assert status["carol@crepes.fr"]["delivered"] == "yes"
    assert status["dave@crepes.fr"]["delivered"] == "yes"
    assert status["ann@poly.edu"]["delivered"] == "queued"
    assert created["dsnBlobIds"] == [] and created["mdnBlobIds"] == []
    [received] = await world.inbox("dave@crepes.fr")
    parsed = email.message_from_bytes(received, policy=email.policy.default)
    assert parsed["Bcc"] is None  # §7.5: removed from what is sent
    assert b"eve@crepes.fr" not in received
    assert parsed["DKIM-Signature"] is not None and "d=crepes.fr" in parsed["DKIM-Signature"]
    assert parsed["Subject"] == "crepes tonight"
    [entry] = await world.store.queue_list()
    assert entry.mail_from == "bob@crepes.fr"
    assert [r.address for r in entry.recipients] == ["ann@poly.edu"]
    assert b"Bcc:" not in await world.store.queue_data(entry.id)
    got = await world.bob.call("EmailSubmission/get", ids=[created["id"]])
    [submission] = got["list"]
    assert submission["emailId"] == email_id and submission["threadId"].startswith("T")
    assert submission["identityId"] == await world.identity()
    assert submission["sendAt"].endswith("Z")


async def test_undo_while_pending(world):
    email_id = await world.draft(
        "From: bob@crepes.fr\r\nTo: ann@poly.edu\r\nSubject: oops\r\n\r\nWrong.\r\n"
    )
    created = (await world.submit(emailId=email_id))["created"]["s"]
    assert created["undoStatus"] == "pending"
    assert len(await world.store.queue_list()) == 1
    result = await world.bob.call(
        "EmailSubmission/set", update={created["id"]: {"undoStatus": "canceled"}}
    )
    assert result["updated"] == {created["id"]: None}
    assert await world.store.queue_list() == []
    [got] = (await world.bob.call("EmailSubmission/get", ids=[created["id"]]))["list"]
    assert got["undoStatus"] == "canceled"
    assert got["deliveryStatus"]["ann@poly.edu"]["delivered"] == "no"


async def test_too_late_to_undo(world):
    email_id = await world.draft(
        "From: bob@crepes.fr\r\nTo: carol@crepes.fr\r\nSubject: hi\r\n\r\nhi\r\n"
    )
    created = (await world.submit(emailId=email_id))["created"]["s"]
    result = await world.bob.call(
        "EmailSubmission/set",
        update={
            created["id"]: {"undoStatus": "canceled"},
            "R99999": {"undoStatus": "canceled"},
        },
    )
    assert result["notUpdated"][created["id"]]["type"] == "cannotUnsend"
    assert result["notUpdated"]["R99999"]["type"] == "notFound"
    result = await world.bob.call(
        "EmailSubmission/set", update={created["id"]: {"emailId": "E999", "undoStatus": "final"}}
    )
    assert result["notUpdated"][created["id"]] == {
        "type": "invalidProperties", "properties": ["emailId"]
    }


async def test_the_envelope_checks(world):
    ours = await world.draft("From: bob@crepes.fr\r\nTo: carol@crepes.fr\r\n\r\nx\r\n")
    carols = await world.draft("From: carol@crepes.fr\r\nTo: ann@poly.edu\r\n\r\nx\r\n")
    nobody = await world.draft("From: bob@crepes.fr\r\nSubject: to no one\r\n\r\nx\r\n")
    no_from = await world.draft("To: ann@poly.edu\r\n\r\nx\r\n")

    def envelope(*rcpts: str, mail_from: str = "bob@crepes.fr") -> dict[str, Any]:
        return {"mailFrom": {"email": mail_from}, "rcptTo": [{"email": r} for r in rcpts]}

    identity = await world.identity()
    result = await world.bob.call(
        "EmailSubmission/set",
        create={
            "mailfrom": {"identityId": identity, "emailId": ours,
                         "envelope": envelope("ann@poly.edu", mail_from="carol@crepes.fr")},
            "from": {"identityId": identity, "emailId": carols},
            "none": {"identityId": identity, "emailId": nobody},
            "invalid": {"identityId": identity, "emailId": ours,
                        "envelope": envelope("nobody@crepes.fr", "not an address", "ok@poly.edu")},
            "many": {"identityId": identity, "emailId": ours,
                     "envelope": envelope(*(f"a{n}@poly.edu" for n in range(6)))},
            "noemail": {"identityId": identity, "emailId": "E999999"},
            "noidentity": {"identityId": "R999999", "emailId": ours},
            "badfrom": {"identityId": identity, "emailId": no_from},
            "param": {"identityId": identity, "emailId": ours,
                      "envelope": {"mailFrom": {"email": "bob@crepes.fr",
                                                "parameters": {"HOLDFOR": "60"}},
                                   "rcptTo": [{"email": "ann@poly.edu"}]}},
            "serverset": {"identityId": identity, "emailId": ours, "sendAt": "x"},
        },
    )
    assert result["created"] is None
    errors = result["notCreated"]
    assert errors["mailfrom"]["type"] == "forbiddenMailFrom"
    assert errors["from"]["type"] == "forbiddenFrom"
    assert errors["none"]["type"] == "noRecipients"
    assert errors["invalid"] == {
        "type": "invalidRecipients",
        "invalidRecipients": ["nobody@crepes.fr", "not an address"],
    }
    assert errors["many"] == {"type": "tooManyRecipients", "maxRecipients": 5}
    assert errors["noemail"]["properties"] == ["emailId"]
    assert errors["noidentity"]["properties"] == ["identityId"]
    assert errors["badfrom"]["type"] == "invalidEmail"
    assert errors["param"]["properties"] == ["envelope"]
    assert errors["serverset"]["properties"] == ["sendAt"]
    assert await world.store.queue_list() == []


async def test_envelope_parameters_reach_the_queue(world):
    email_id = await world.draft("From: bob@crepes.fr\r\nTo: ann@poly.edu\r\n\r\nx\r\n")
    result = await world.submit(
        emailId=email_id,
        envelope={
            "mailFrom": {"email": "bob+x@crepes.fr", "parameters": {"ENVID": "a+b", "RET": "hdrs"}},
            "rcptTo": [{"email": "ann@poly.edu", "parameters": {"NOTIFY": "success,failure"}}],
        },
    )
    created = result["created"]["s"]
    assert created["undoStatus"] == "pending"
    [got] = (await world.bob.call("EmailSubmission/get", ids=[created["id"]]))["list"]
    assert got["envelope"]["mailFrom"]["parameters"] == {"ENVID": "a+b", "RET": "HDRS"}
    assert got["envelope"]["rcptTo"][0]["parameters"] == {"NOTIFY": "SUCCESS,FAILURE"}
    [entry] = await world.store.queue_list()
    assert entry.mail_from == "bob+x@crepes.fr"
    assert entry.envid == "a+2Bb" and entry.ret == "HDRS"  # xtext again (RFC 3461 §4)
    assert entry.recipients[0].notify == "SUCCESS,FAILURE"


async def test_too_large(node_factory):
    node = await node_factory(listen=(), queue={"enabled": False}, limits={"message_size": 200})
    world = World(node, Client(node, await node.add_user("bob@crepes.fr")))
    email_id = await world.draft(DRAFT + "x" * 300 + "\r\n")
    result = await world.submit(emailId=email_id)
    assert result["notCreated"]["s"] == {"type": "tooLarge", "maxSize": 200}


async def test_the_sender_comes_from_sender_or_from_as_the_identity_allows(world):
    # Sender: names the sender (§7); an address the identity does not allow
    # gives way to the identity's own.
    await world.store.alias_add("robert@crepes.fr", "bob@crepes.fr")
    made = await world.bob.call(
        "Identity/set", create={"r": {"email": "robert@crepes.fr"}}
    )
    robert = made["created"]["r"]["id"]
    email_id = await world.draft(
        "From: robert@crepes.fr\r\nSender: bob@crepes.fr\r\nTo: ann@poly.edu\r\n\r\nx\r\n"
    )
    result = await world.submit(emailId=email_id, identityId=robert)
    assert result["created"]["s"]["envelope"]["mailFrom"]["email"] == "robert@crepes.fr"
    twice = await world.draft(
        "From: bob@crepes.fr, robert@crepes.fr\r\nSender: a@crepes.fr\r\nSender: b@crepes.fr\r\n"
        "To: ann@poly.edu\r\n\r\nx\r\n"
    )
    result = await world.submit(emailId=twice)
    assert result["notCreated"]["s"] == {
        "type": "invalidEmail",
        "description": "More than one Sender address.",
        "properties": ["sender"],
    }


async def test_on_success_update_and_destroy_email(world):
    seen: list[dict[str, Any]] = []

    async def email_set(call, args):
        seen.append(args)
        return {"accountId": args["accountId"], "updated": None}

    world.bob.extra = {"Email/set": Method("urn:ietf:params:jmap:mail", email_set)}
    first = await world.draft()
    second = await world.draft()
    identity = await world.identity()
    responses = await world.bob.request(
        (
            "EmailSubmission/set",
            {
                "create": {
                    "one": {"identityId": identity, "emailId": first},
                    "two": {"identityId": identity, "emailId": second},
                    "bad": {"identityId": identity, "emailId": "E999999"},
                },
                "onSuccessUpdateEmail": {
                    "#one": {"keywords/$draft": None, "mailboxIds/M1": True},
                    "#bad": {"keywords/$draft": None},
                },
                "onSuccessDestroyEmail": ["#two", "#bad"],
            },
        )
    )
    assert [r[0] for r in responses] == ["EmailSubmission/set", "Email/set"]
    assert responses[0][2] == responses[1][2]  # the same call id
    assert seen == [
        {
            "accountId": world.bob.account,
            "update": {first: {"keywords/$draft": None, "mailboxIds/M1": True}},
            "destroy": [second],
        }
    ]


async def test_query_changes_and_query_changes(world):
    identity = await world.identity()
    first = (await world.submit(emailId=await world.draft()))["created"]["s"]["id"]
    state = (await world.bob.call("EmailSubmission/get", ids=[]))["state"]
    pending_email = await world.draft("From: bob@crepes.fr\r\nTo: ann@poly.edu\r\n\r\nx\r\n")
    second = (await world.submit(emailId=pending_email))["created"]["s"]["id"]
    query = await world.bob.call(
        "EmailSubmission/query",
        filter={"undoStatus": "pending"},
        calculateTotal=True,
    )
    assert query["ids"] == [second] and query["total"] == 1
    query = await world.bob.call(
        "EmailSubmission/query",
        filter={"operator": "OR", "conditions": [
            {"emailIds": [pending_email]}, {"identityIds": [identity], "undoStatus": "final"},
        ]},
        sort=[{"property": "emailId", "isAscending": False}],
    )
    assert query["ids"] == [second, first]
    query = await world.bob.call(
        "EmailSubmission/query",
        filter={"after": "2000-01-01T00:00:00Z", "before": "2000-01-02T00:00:00Z"},
    )
    assert query["ids"] == []
    [[name, error, _]] = await world.bob.request(
        ("EmailSubmission/query", {"sort": [{"property": "subject"}]})
    )
    assert (name, error["type"]) == ("error", "unsupportedSort")
    [[name, error, _]] = await world.bob.request(
        ("EmailSubmission/query", {"filter": {"subject": "x"}})
    )
    assert (name, error["type"]) == ("error", "unsupportedFilter")
    changes = await world.bob.call("EmailSubmission/changes", sinceState=state)
    assert changes["created"] == [second]
    query_changes = await world.bob.call(
        "EmailSubmission/queryChanges", sinceQueryState=state, filter={"undoStatus": "pending"}
    )
    assert query_changes["removed"] == [second]
    assert query_changes["added"] == [{"id": second, "index": 0}]
    gone = await world.bob.call("EmailSubmission/set", destroy=[first])
    assert gone["destroyed"] == [first]
    assert (await world.bob.call("EmailSubmission/get", ids=[first]))["notFound"] == [first]


def test_without_bcc_keeps_everything_else():
    raw = b"From: a@b\r\nBcc: x@y,\r\n z@y\r\nTo: c@d\r\nbcc: w@y\r\n\r\nBcc: in the body\r\n"
    assert without_bcc(raw, 100) == b"From: a@b\r\nTo: c@d\r\n\r\nBcc: in the body\r\n"
    assert without_bcc(b"From: a@b\r\n\r\nx", 100) == b"From: a@b\r\n\r\nx"
