"""Email/set, Email/import and Email/copy (RFC 8621 §4.6-4.8) against the
real store, through the dispatcher; what was created is read back with the
standard library's parser and with Email/get."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import Jmap, message
from mailstack.config import Config
from mailstack.jmap import blobs, ids


async def raw_of(jmap: Jmap, email_id: str) -> bytes:
    number = int(email_id[1:])
    meta = (await jmap.store.emails_by_id(jmap.user.id, [number]))[number]
    return bytes(await jmap.store.message_bytes(meta.mailbox_id, meta.uid))


async def mailbox_of(jmap: Jmap, email_id: str) -> int:
    number = int(email_id[1:])
    return int((await jmap.store.emails_by_id(jmap.user.id, [number]))[number].mailbox_id)


async def flags_of(jmap: Jmap, email_id: str) -> frozenset[str]:
    number = int(email_id[1:])
    return frozenset((await jmap.store.emails_by_id(jmap.user.id, [number]))[number].flags)


async def draft(jmap: Jmap, **extra: Any) -> dict[str, Any]:
    return {
        "mailboxIds": {await jmap.mailbox_id("Drafts"): True},
        "keywords": {"$draft": True, "$seen": True},
        "from": [{"name": "Bob Été", "email": "bob@example.org"}],
        "to": [{"name": "Alice", "email": "alice@example.org"}, {"email": "carol@x.test"}],
        "subject": "Déjà vu, a long subject " + "that folds " * 8,
        "bodyValues": {"t": {"value": "Hello Alice,\nça va?\n"}},
        "textBody": [{"partId": "t", "type": "text/plain"}],
        **extra,
    }


async def create(jmap: Jmap, spec: dict[str, Any]) -> dict[str, Any]:
    response = await jmap.call("Email/set", create={"k": spec})
    assert response["notCreated"] is None, response["notCreated"]
    return dict(response["created"]["k"])


async def not_created(jmap: Jmap, spec: Any) -> dict[str, Any]:
    response = await jmap.call("Email/set", create={"k": spec})
    assert response["created"] is None, response
    return dict(response["notCreated"]["k"])


async def test_create_a_text_draft(jmap: Jmap) -> None:
    before = str(await jmap.store.account_state(jmap.user.id))
    response = await jmap.call(
        "Email/set", create={"k": {**await draft(jmap), "receivedAt": "2026-12-01T08:00:00Z"}}
    )
    created = response["created"]["k"]
    assert set(created) == {"id", "blobId", "threadId", "size"}
    assert response["oldState"] == before != response["newState"]
    assert response["updated"] is None and response["notCreated"] is None
    raw = await raw_of(jmap, created["id"])
    assert created["size"] == len(raw)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Déjà vu, a long subject " + "that folds " * 8
    assert parsed["From"].addresses[0].display_name == "Bob Été"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["alice@example.org", "carol@x.test"]
    assert parsed["Date"] and parsed["Message-ID"].endswith("@mx.test>")
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().replace("\r\n", "\n") == "Hello Alice,\nça va?\n"
    assert raw.isascii()  # 7bit transfer encodings only
    assert await mailbox_of(jmap, created["id"]) == (await jmap.mailbox("Drafts")).id
    assert await flags_of(jmap, created["id"]) == {"\\Draft", "\\Seen"}
    got = await jmap.call(
        "Email/get", ids=[created["id"]], properties=["receivedAt", "keywords", "subject"]
    )
    assert got["list"][0]["receivedAt"] == "2026-12-01T08:00:00Z"
    assert got["list"][0]["keywords"] == {"$draft": True, "$seen": True}


async def test_create_html_with_inline_image_and_attachment(jmap: Jmap) -> None:
    source = await jmap.add(
        b"From: a@x.test\r\nSubject: pic\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee\r\n--b\r\n"
        b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b--\r\n"
    )
    image = f"G{source[1:]}-2"
    spec = await draft(
        jmap,
        bodyValues={
            "t": {"value": "text"},
            "h": {"value": '<p>hi <img src="cid:logo@x"></p>', "isTruncated": False},
        },
        htmlBody=[{"partId": "h", "type": "text/html"}],
        attachments=[
            {"blobId": image, "type": "image/png", "cid": "logo@x", "disposition": "inline"},
            {"blobId": f"G{source[1:]}", "type": "message/rfc822", "name": "fwd.eml"},
            {"blobId": image, "type": "image/png", "name": "pièce.png"},
        ],
    )
    created = await create(jmap, spec)
    raw = await raw_of(jmap, created["id"])
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    alternative, forwarded, attached = parsed.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text, related = alternative.get_payload()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, inline = related.get_payload()
    assert html.get_content_type() == "text/html" and "cid:logo@x" in html.get_content()
    assert inline["Content-ID"] == "<logo@x>" and inline.get_content() == b"\x89PNG\r\n"
    assert forwarded.get_content_type() == "message/rfc822"
    assert attached.get_filename() == "pièce.png"
    got = await jmap.call(
        "Email/get", ids=[created["id"]], properties=["hasAttachment", "attachments"]
    )
    (view,) = got["list"]
    assert view["hasAttachment"] is True
    assert {a["name"] for a in view["attachments"]} >= {"fwd.eml", "pièce.png"}


async def test_create_from_body_structure_and_header_forms(jmap: Jmap) -> None:
    spec = {
        "mailboxIds": {await jmap.mailbox_id(): True},
        "header:X-Note:asText": "naïve note",
        "header:List-Post:asURLs": ["mailto:list@x.test"],
        "header:Reply-To:asGroupedAddresses": [
            {"name": "Team", "addresses": [{"name": None, "email": "t@x.test"}]}
        ],
        "header:X-Raw": " kept  as\r\n is",
        "header:X-Twice:all": [" one", " two"],
        "messageId": ["abc@x.test"],
        "inReplyTo": ["parent@x.test"],
        "sentAt": "2026-12-02T10:00:00+01:00",
        "bodyValues": {"1": {"value": "one"}, "2": {"value": "<b>two</b>"}},
        "bodyStructure": {
            "type": "multipart/alternative",
            "subParts": [
                {"partId": "1", "type": "text/plain", "language": ["en"]},
                {"partId": "2", "type": "text/html", "header:X-Part": "p"},
            ],
        },
    }
    created = await create(jmap, spec)
    raw = await raw_of(jmap, created["id"])
    assert b"X-Raw: kept  as\r\n is\r\n" in raw
    assert b"X-Twice: one\r\nX-Twice: two\r\n" in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["X-Note"] == "naïve note"
    assert parsed["List-Post"] == "<mailto:list@x.test>"
    assert parsed["Reply-To"] == "Team: t@x.test;"
    assert parsed["Message-ID"] == "<abc@x.test>" and parsed["In-Reply-To"] == "<parent@x.test>"
    assert parsed["Date"].datetime == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    plain, html = parsed.get_payload()
    assert plain["Content-Language"] == "en" and html["X-Part"] == "p"


async def test_creation_ids_reach_later_calls(jmap: Jmap) -> None:
    responses = await jmap.request(
        ("Mailbox/set", {"create": {"box": {"name": "Projects"}}}),
        ("Email/set", {"create": {"e": {**await draft(jmap), "mailboxIds": {"#box": True}}}}),
        ("Email/get", {"ids": ["#e"], "properties": ["mailboxIds"]}),
    )
    box = responses[0][1]["created"]["box"]["id"]
    assert responses[1][1]["created"]["e"]["id"]
    assert responses[2][1]["list"][0]["mailboxIds"] == {box: True}


@pytest.mark.parametrize(
    ("change", "properties"),
    [
        ({"headers": [{"name": "X", "value": "y"}]}, ["headers"]),
        ({"header:From:asAddresses": [{"email": "x@y.z"}]}, ["header:From:asAddresses"]),
        ({"header:Content-Type": " text/plain"}, ["header:Content-Type"]),
        ({"header:From:asDate": "2026-12-02T10:00:00Z"}, ["header:From:asDate"]),
        ({"id": "E1"}, ["id"]),
        ({"size": 3}, ["size"]),
        ({"bodyStructure": {"partId": "t"}}, ["bodyStructure"]),
        ({"textBody": [{"partId": "t"}, {"partId": "t"}]}, ["textBody"]),
        ({"textBody": [{"partId": "t", "type": "text/html"}]}, ["textBody"]),
        ({"textBody": [{"partId": "nope"}]}, ["textBody"]),
        ({"textBody": [{"partId": "t", "charset": "utf-8"}]}, ["textBody"]),
        ({"textBody": [{"partId": "t", "blobId": "G1"}]}, ["textBody"]),
        ({"textBody": [{"partId": "t", "header:Content-Transfer-Encoding": " 8bit"}]},
         ["textBody"]),
        ({"bodyValues": {"t": {"value": "x", "isTruncated": True}}}, ["bodyValues"]),
        ({"bodyValues": {"t": {"value": "x", "isEncodingProblem": True}}}, ["bodyValues"]),
        ({"subject": "two\r\nlines"}, ["subject"]),
        ({"header:X-Raw": "bare\nnewline"}, ["header:X-Raw"]),
        ({"messageId": ["<angled@x>"]}, ["messageId"]),
        ({"sentAt": "yesterday"}, ["sentAt"]),
        ({"from": [{"name": "No address"}]}, ["from"]),
        ({"mailboxIds": {}}, ["mailboxIds"]),
        ({"mailboxIds": {"M99999": True}}, ["mailboxIds"]),
        ({"mailboxIds": None}, ["mailboxIds"]),
        ({"keywords": {"$seen": False}}, ["keywords"]),
        ({"keywords": {"bad word": True}}, ["keywords"]),
        ({"receivedAt": "2026-12-01"}, ["receivedAt"]),
    ],
)
async def test_invalid_properties(
    jmap: Jmap, change: dict[str, Any], properties: list[str]
) -> None:
    error = await not_created(jmap, {**await draft(jmap), **change})
    assert error["type"] == "invalidProperties", error
    assert error["properties"] == properties


async def test_other_create_errors(jmap: Jmap) -> None:
    two = {await jmap.mailbox_id(): True, await jmap.mailbox_id("Trash"): True}
    assert (await not_created(jmap, {**await draft(jmap), "mailboxIds": two}))["type"] == (
        "tooManyMailboxes"
    )
    missing = await not_created(
        jmap, {**await draft(jmap), "attachments": [{"blobId": "G9999", "type": "image/png"}]}
    )
    assert missing == {"type": "blobNotFound", "notFound": ["G9999"]}
    assert (await not_created(jmap, "not an object"))["type"] == "invalidProperties"
    jmap.node.limits = dataclasses.replace(jmap.node.limits, message_size=200)
    assert (await not_created(jmap, await draft(jmap)))["type"] == "tooLarge"


async def test_over_quota(jmap: Jmap) -> None:
    small = await jmap.store.account_add("small@example.org", "x", quota=600)
    other = Jmap(jmap.store, jmap.node, small)
    spec = await draft(other)
    spec["bodyValues"] = {"t": {"value": "x" * 2000}}
    assert (await not_created(other, spec))["type"] == "overQuota"


async def test_update_keywords(jmap: Jmap) -> None:
    e = await jmap.add(message("x"), flags=("\\Seen", "$Work", "\\Deleted"))
    await jmap.store.store_flags((await jmap.mailbox()).id, [1], ["\\Deleted"], "remove")
    response = await jmap.call(
        "Email/set", update={e: {"keywords/$flagged": True, "keywords/$work": None}}
    )
    assert response["updated"] == {e: None}
    assert await flags_of(jmap, e) == {"\\Seen", "\\Flagged"}
    await jmap.call("Email/set", update={e: {"keywords": {"$answered": True, "Later": True}}})
    assert await flags_of(jmap, e) == {"\\Answered", "later"}
    got = await jmap.call("Email/get", ids=[e], properties=["keywords"])
    assert got["list"][0]["keywords"] == {"$answered": True, "later": True}


async def test_update_moves_keeping_the_id(jmap: Jmap) -> None:
    e = await jmap.add(message("x"), flags=("\\Seen",))
    inbox, trash = await jmap.mailbox_id(), await jmap.mailbox_id("Trash")
    await jmap.call("Email/set", update={e: {f"mailboxIds/{inbox}": None,
                                             f"mailboxIds/{trash}": True,
                                             "keywords/$flagged": True}})
    assert await mailbox_of(jmap, e) == (await jmap.mailbox("Trash")).id
    assert await flags_of(jmap, e) == {"\\Seen", "\\Flagged"}
    await jmap.call("Email/set", update={e: {"mailboxIds": {inbox: True}}})
    assert await mailbox_of(jmap, e) == (await jmap.mailbox()).id
    assert (await jmap.call("Email/query", filter={"inMailbox": inbox}))["ids"] == [e]


@pytest.mark.parametrize(
    ("patch", "error", "properties"),
    [
        ({"subject": "new"}, "invalidProperties", ["subject"]),
        ({"receivedAt": "2026-12-01T00:00:00Z"}, "invalidProperties", ["receivedAt"]),
        ({"keywords/$seen": False}, "invalidProperties", ["keywords"]),
        ({"keywords/bad word": True}, "invalidProperties", ["keywords"]),
        ({"keywords": {"$seen": True}, "keywords/$flagged": True}, "invalidPatch", None),
        ({"mailboxIds": {}}, "invalidProperties", ["mailboxIds"]),
        ({"mailboxIds/M99999": True, "mailboxIds/INBOX": None}, None, None),
        ({"mailboxIds/M99999": True}, "tooManyMailboxes", None),
        ("not a patch", "invalidPatch", None),
    ],
)
async def test_update_errors(
    jmap: Jmap, patch: Any, error: str | None, properties: list[str] | None
) -> None:
    e = await jmap.add(message("x"))
    if isinstance(patch, dict) and "mailboxIds/INBOX" in patch:
        patch = {"mailboxIds/M99999": True, f"mailboxIds/{await jmap.mailbox_id()}": None}
        error, properties = "invalidProperties", ["mailboxIds"]
    response = await jmap.call("Email/set", update={e: patch})
    assert response["updated"] is None
    result = response["notUpdated"][e]
    assert result["type"] == error
    if properties is not None:
        assert result["properties"] == properties


async def test_destroy_and_not_found(jmap: Jmap) -> None:
    e = await jmap.add(message("x"))
    other = await jmap.add(message("y"))
    response = await jmap.call(
        "Email/set", destroy=[e, "E99999", "Mnot-an-email"], update={other: {}, "E99998": {}}
    )
    assert response["destroyed"] == [e]
    assert response["notDestroyed"] == {
        "E99999": {"type": "notFound"}, "Mnot-an-email": {"type": "notFound"}
    }
    assert response["updated"] == {other: None}
    assert response["notUpdated"] == {"E99998": {"type": "notFound"}}
    assert (await jmap.call("Email/query"))["ids"] == [other]
    again = await jmap.call("Email/set", destroy=[e])
    assert again["notDestroyed"] == {e: {"type": "notFound"}}
    both = await jmap.call("Email/set", update={other: {"keywords/$seen": True}}, destroy=[other])
    assert both["notUpdated"] == {other: {"type": "willDestroy"}} and both["destroyed"] == [other]


async def test_if_in_state_and_limits(jmap: Jmap, tmp_path: Path) -> None:
    e = await jmap.add(message("x"))
    error = await jmap.error("Email/set", ifInState="1", update={e: {"keywords/$seen": True}})
    assert error["type"] == "stateMismatch"
    assert await flags_of(jmap, e) == frozenset()
    state = str(await jmap.store.account_state(jmap.user.id))
    ok = await jmap.call("Email/set", ifInState=state, update={e: {"keywords/$seen": True}})
    assert ok["oldState"] == state and ok["updated"] == {e: None}
    jmap.node.config = Config.from_table({"jmap": {"max_objects_in_set": 2}}, tmp_path)
    error = await jmap.error("Email/set", destroy=["E1", "E2", "E3"])
    assert error["type"] == "requestTooLarge"
    for bad in ({"create": []}, {"update": "x"}, {"destroy": "E1"}, {"ifInState": 3}):
        assert (await jmap.error("Email/set", **bad))["type"] == "invalidArguments"


async def test_import(jmap: Jmap) -> None:
    source = await jmap.add(message("original", body="the body"))
    archive = await jmap.mailbox_id("Archive")
    response = await jmap.call(
        "Email/import",
        emails={
            "i": {"blobId": f"G{source[1:]}", "mailboxIds": {archive: True},
                  "keywords": {"$seen": True}, "receivedAt": "2026-11-30T00:00:00Z"},
            "missing": {"blobId": "G99999", "mailboxIds": {archive: True}},
            "nobox": {"blobId": f"G{source[1:]}", "mailboxIds": {}},
            "extra": {"blobId": f"G{source[1:]}", "mailboxIds": {archive: True}, "subject": "x"},
        },
    )
    created = response["created"]["i"]
    assert created["id"] != source and created["blobId"] == f"G{created['id'][1:]}"
    assert await raw_of(jmap, created["id"]) == await raw_of(jmap, source)
    assert await mailbox_of(jmap, created["id"]) == (await jmap.mailbox("Archive")).id
    assert await flags_of(jmap, created["id"]) == {"\\Seen"}
    assert response["notCreated"]["missing"] == {"type": "blobNotFound", "notFound": ["G99999"]}
    assert response["notCreated"]["nobox"]["type"] == "invalidProperties"
    assert response["notCreated"]["extra"]["properties"] == ["subject"]
    # The same message again: the same thread (threading applies to imports).
    assert created["threadId"] == (await jmap.call("Email/get", ids=[source],
                                                   properties=["threadId"]))["list"][0]["threadId"]
    error = await jmap.error("Email/import", emails=[])
    assert error["type"] == "invalidArguments"


async def test_copy_needs_another_account(jmap: Jmap) -> None:
    e = await jmap.add(message("x"))
    same = await jmap.error(
        "Email/copy", fromAccountId=jmap.account_id,
        create={"c": {"id": e, "mailboxIds": {await jmap.mailbox_id(): True}}},
    )
    assert same["type"] == "invalidArguments"
    other = await jmap.error("Email/copy", fromAccountId=ids.encode(ids.ACCOUNT, 999), create={})
    assert other["type"] == "accountNotFound"


def upload(jmap: Jmap, content: bytes, media_type: str) -> str:
    writer = blobs.uploads(jmap.node).writer(jmap.user.id)
    writer.write(content)
    return ids.encode(ids.UPLOAD_BLOB, writer.commit(media_type).number)


async def test_import_an_upload_received_at_from_its_received_field(jmap: Jmap) -> None:
    raw = (
        b"Received: from relay.x.test by mx.test; Tue, 1 Dec 2026 08:30:00 +0100 (CET)\r\n"
        b"Received: from origin by relay.x.test; Tue, 1 Dec 2026 07:00:00 +0100\r\n"
        + message("uploaded")
    )
    blob_id = upload(jmap, raw, "message/rfc822")
    inbox = {await jmap.mailbox_id(): True}
    spec = {"blobId": blob_id, "mailboxIds": inbox}
    response = await jmap.call("Email/import", emails={"i": spec})
    created = response["created"]["i"]
    assert await raw_of(jmap, created["id"]) == raw
    got = await jmap.call("Email/get", ids=[created["id"]], properties=["receivedAt", "keywords"])
    assert got["list"][0] == {
        "id": created["id"], "receivedAt": "2026-12-01T07:30:00Z", "keywords": {}
    }
    empty = upload(jmap, b"", "message/rfc822")
    response = await jmap.call("Email/import", emails={"i": {"blobId": empty, "mailboxIds": inbox}})
    assert response["notCreated"]["i"]["type"] == "invalidEmail"


async def test_create_with_an_uploaded_attachment(jmap: Jmap) -> None:
    blob_id = upload(jmap, b"%PDF-1.7 binary \x00\xff", "application/pdf")
    created = await create(
        jmap, await draft(jmap, attachments=[{"blobId": blob_id, "type": "application/pdf",
                                             "name": "report.pdf", "size": 1}])
    )
    raw = await raw_of(jmap, created["id"])
    text, attached = email.message_from_bytes(raw, policy=email.policy.default).get_payload()
    assert attached.get_content() == b"%PDF-1.7 binary \x00\xff"
    assert attached.get_filename() == "report.pdf"
    assert attached["Content-Transfer-Encoding"] == "base64"


async def shared_with_bob(alice: Jmap, rights: str) -> tuple[Jmap, int]:
    """Bob, and Alice's Archive shared with him with these rights."""
    user = await alice.store.account_add("bob2@example.org", "x")
    bob = Jmap(alice.store, alice.node, user)
    archive = (await alice.mailbox("Archive")).id
    await alice.store.acl_set(archive, "bob2@example.org", rights)
    return bob, archive


async def test_set_in_a_shared_account_keeps_to_the_rights(jmap: Jmap) -> None:
    alice = jmap
    bob, archive = await shared_with_bob(alice, "lrsi")
    kept = await alice.add(message("shared"), mailbox="Archive")
    private = await alice.add(message("private"))
    theirs = alice.account_id
    archive_id = ids.encode(ids.MAILBOX, archive)
    response = await bob.call(
        "Email/set", accountId=theirs,
        update={kept: {"keywords/$seen": True}, private: {"keywords/$seen": True}},
        destroy=[kept],
    )
    assert response["notUpdated"][private] == {"type": "notFound"}
    assert response["notUpdated"][kept]["type"] == "willDestroy"
    assert response["notDestroyed"][kept]["type"] == "forbidden"  # no t and e
    response = await bob.call("Email/set", accountId=theirs,
                              update={kept: {"keywords/$seen": True}})
    assert response["updated"] == {kept: None}
    assert await flags_of(alice, kept) == {"\\Seen"}
    flagged = await bob.call("Email/set", accountId=theirs,
                             update={kept: {"keywords/$flagged": True}})
    assert flagged["notUpdated"][kept]["type"] == "forbidden"  # no w
    moved = await bob.call("Email/set", accountId=theirs,
                           update={kept: {"mailboxIds": {await alice.mailbox_id(): True}}})
    assert moved["notUpdated"][kept]["type"] == "forbidden"  # no t and e on Archive
    spec = {**await draft(alice), "mailboxIds": {archive_id: True}, "keywords": {"$seen": True}}
    made = await bob.call("Email/set", accountId=theirs, create={"d": spec})
    assert made["created"]["d"]["id"]
    spec["keywords"] = {"$draft": True}
    refused = await bob.call("Email/set", accountId=theirs, create={"d": spec})
    assert refused["notCreated"]["d"]["type"] == "forbidden"
    changes = await bob.call("Email/changes", accountId=theirs, sinceState="0")
    assert private not in changes["created"] and kept in changes["created"]


async def test_copy_between_accounts_and_destroy_the_original(jmap: Jmap) -> None:
    alice = jmap
    bob, archive = await shared_with_bob(alice, "lrte")
    original = await alice.add(message("to copy"), mailbox="Archive", flags=("\\Seen",))
    original_raw = await raw_of(alice, original)
    bob_inbox = await bob.mailbox_id()
    responses = await bob.request((
        "Email/copy",
        {"fromAccountId": alice.account_id, "accountId": bob.account_id,
         "create": {"c": {"id": original, "mailboxIds": {bob_inbox: True}}},
         "onSuccessDestroyOriginal": True},
    ))
    (copy, implicit) = responses
    assert copy[0] == "Email/copy" and copy[1]["fromAccountId"] == alice.account_id
    created = copy[1]["created"]["c"]
    assert await raw_of(bob, created["id"]) == original_raw
    assert await flags_of(bob, created["id"]) == {"\\Seen"}  # keywords copied
    assert implicit[0] == "Email/set" and implicit[2] == copy[2]
    assert implicit[1]["destroyed"] == [original]
    assert (await alice.call("Email/query"))["ids"] == []
    # Into the shared account, without the i right: forbidden.
    mine = await bob.add(message("bob's"))
    back = await bob.call(
        "Email/copy", fromAccountId=bob.account_id, accountId=alice.account_id,
        create={"c": {"id": mine, "mailboxIds": {ids.encode(ids.MAILBOX, archive): True}}},
    )
    assert back["notCreated"]["c"]["type"] == "forbidden"
