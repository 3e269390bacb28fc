"""Email/get and Email/parse (RFC 8621 §4.2, §4.9), and part blobs,
against the real SQLite store."""

from __future__ import annotations

from typing import Any

from jmap_mail_support import mailbox_ids, other
from jmap_mail_support import raw_message as message

from mailstack.jmap import blobs, emailview, ids

ATTACHED = message(
    "Subject: inner one",
    "From: Inner <inner@example.net>",
    body="inner body\r\n",
).decode()

OUTER = message(
    "From: Alice <alice@example.com>",
    "To: bob@example.org",
    "Subject: With an attachment",
    "Message-ID: <outer@example.com>",
    "Date: Mon, 2 Mar 2020 10:00:00 +0100",
    "Content-Type: multipart/mixed; boundary=OUT",
    body="\r\n".join([
        "--OUT", "Content-Type: text/plain; charset=utf-8", "", "Hello Bob, see attached.",
        "--OUT", "Content-Type: message/rfc822", "Content-Disposition: attachment", "",
        ATTACHED,
        "--OUT", "Content-Type: application/octet-stream; name=data.bin",
        "Content-Transfer-Encoding: base64", "", "AAECAw==",
        "--OUT--", ""]),
)



async def test_get_default_properties(jmap: Any) -> None:
    email_id = await jmap.add(OUTER, flags=["\\Seen", "$Label"])
    got = await jmap.call("Email/get", ids=[email_id])
    (email,) = got["list"]
    assert list(email) == ["id", *emailview.DEFAULT_PROPERTIES[1:]]
    assert email["id"] == email_id
    assert email["blobId"] == "G" + email_id[1:]
    assert email["threadId"].startswith("T")
    assert email["mailboxIds"] == {(await mailbox_ids(jmap))["INBOX"]: True}
    assert email["keywords"] == {"$seen": True, "$label": True}
    assert email["size"] == len(OUTER)
    assert email["receivedAt"].endswith("Z")
    assert email["from"] == [{"name": "Alice", "email": "alice@example.com"}]
    assert email["subject"] == "With an attachment"
    assert email["messageId"] == ["outer@example.com"]
    assert email["sentAt"] == "2020-03-02T10:00:00+01:00"
    assert email["preview"].startswith("Hello Bob, see attached.")
    assert email["bodyValues"] == {}
    assert [p["partId"] for p in email["textBody"]] == ["1"]
    assert [(p["partId"], p["type"], p["size"]) for p in email["attachments"]] == [
        ("2", "message/rfc822", len(ATTACHED)), ("3", "application/octet-stream", 4)]
    assert email["hasAttachment"] is True
    assert got["notFound"] == [] and got["state"].isdigit()


async def test_get_properties_body_values_and_not_found(jmap: Any) -> None:
    email_id = await jmap.add(OUTER)
    got = await jmap.call(
        "Email/get", ids=[email_id, "E999999", "nonsense", "T1"],
        properties=["subject", "header:Subject:asRaw", "bodyValues", "headers"],
        fetchTextBodyValues=True, maxBodyValueBytes=5)
    (email,) = got["list"]
    assert email["id"] == email_id  # always returned
    assert email["header:Subject:asRaw"] == " With an attachment"
    assert email["bodyValues"] == {"1": {"value": "Hello", "isEncodingProblem": False,
                                         "isTruncated": True}}
    assert email["headers"][0] == {"name": "From", "value": " Alice <alice@example.com>"}
    assert got["notFound"] == ["E999999", "nonsense", "T1"]


async def test_get_rejects_bad_arguments(jmap: Any) -> None:
    for args in ({"ids": None, "properties": ["header:From:asDate"]},
                 {"ids": None, "properties": ["unknown"]},
                 {"ids": "E1"},
                 {"ids": None, "fetchTextBodyValues": 1},
                 {"ids": None, "bodyProperties": ["subject"]}):
        error = await jmap.error("Email/get", **args)
        assert error["type"] == "invalidArguments", args


async def test_get_all_when_ids_null_and_deleted_is_invisible(jmap: Any) -> None:
    shown = await jmap.add(message("Subject: shown"))
    hidden = await jmap.add(message("Subject: hidden"), flags=["\\Deleted"])
    got = await jmap.call("Email/get", ids=None, properties=["subject"])
    assert got["list"] == [{"id": shown, "subject": "shown"}]
    got = await jmap.call("Email/get", ids=[hidden], properties=["subject"])
    assert got["notFound"] == [hidden]


async def test_email_of_another_account_is_not_found(jmap: Any) -> None:
    bob = jmap
    eve = await other(jmap, "eve@example.org")
    email_id = await bob.add(message("Subject: private"))
    got = await eve.call("Email/get", ids=[email_id], properties=["subject"])
    assert got["list"] == [] and got["notFound"] == [email_id]
    got = await eve.call("Email/parse", blobIds=["G" + email_id[1:], f"G{email_id[1:]}-1"])
    assert got["notFound"] == ["G" + email_id[1:], f"G{email_id[1:]}-1"]
    assert await emailview.part_bytes(jmap.store, eve.user.id, f"G{email_id[1:]}-1") is None


async def test_part_bytes_serves_decoded_parts(jmap: Any) -> None:
    email_id = await jmap.add(OUTER)
    number = ids.decode(ids.EMAIL, email_id)
    assert number is not None
    part = await emailview.part_bytes(jmap.store, jmap.user.id, f"G{number}-3")
    assert part == b"\x00\x01\x02\x03"
    attached = await emailview.part_bytes(jmap.store, jmap.user.id, f"G{number}-2")
    assert attached == ATTACHED.encode()
    assert await emailview.part_bytes(jmap.store, jmap.user.id, f"G{number}-9") is None


async def test_parse_email_blob_and_attached_message(jmap: Any) -> None:
    email_id = await jmap.add(OUTER)
    number = email_id[1:]
    got = await jmap.call("Email/parse", blobIds=[f"G{number}", f"G{number}-2", "G999999",
                                                  "U999999"],
                          properties=["id", "blobId", "threadId", "subject", "from",
                                      "textBody", "size"], fetchAllBodyValues=True)
    assert got["notFound"] == ["G999999", "U999999"]
    assert got["notParsable"] is None
    whole = got["parsed"][f"G{number}"]
    assert whole["id"] is None and whole["threadId"] is None
    assert whole["blobId"] == f"G{number}" and whole["subject"] == "With an attachment"
    inner = got["parsed"][f"G{number}-2"]
    assert inner["subject"] == "inner one"
    assert inner["from"] == [{"name": "Inner", "email": "inner@example.net"}]
    assert inner["size"] == len(ATTACHED)
    # The attached message's body is part 2.1 of the outer one.
    (body,) = inner["textBody"]
    assert body["blobId"] == f"G{number}-2-1"
    text = await emailview.part_bytes(jmap.store, jmap.user.id, body["blobId"])
    assert text == b"inner body\r\n"


async def test_parse_not_parsable(jmap: Any) -> None:
    email_id = await jmap.add(OUTER)
    got = await jmap.call("Email/parse", blobIds=[f"G{email_id[1:]}-3"])
    assert got["notParsable"] == [f"G{email_id[1:]}-3"] and got["parsed"] is None


async def test_parse_uploaded_blob(jmap: Any) -> None:
    area = blobs.uploads(jmap.node)
    writer = area.writer(jmap.user.id)
    writer.write(message("Subject: uploaded", "From: up@example.net", body="up\r\n"))
    upload = writer.commit("message/rfc822")
    blob_id = ids.encode(ids.UPLOAD_BLOB, upload.number)
    got = await jmap.call("Email/parse", blobIds=[blob_id],
                          properties=["subject", "textBody", "bodyValues"],
                          fetchTextBodyValues=True)
    email = got["parsed"][blob_id]
    assert email["subject"] == "uploaded"
    # An upload's parts have no blob ids of their own.
    assert email["textBody"][0]["blobId"] is None
    assert email["bodyValues"]["1"]["value"] == "up\n"
    other_account = await other(jmap, "eve@example.org")
    got = await other_account.call("Email/parse", blobIds=[blob_id])
    assert got["notFound"] == [blob_id]
