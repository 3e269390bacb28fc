"""JMAP Email properties from a parsed message (RFC 8621 §4.1): header
forms, convenience properties, body structure, the §4.1.4 split, body
values and part blob ids. Pure: mailstack.mime parses, no store."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from mailstack.jmap import emailview
from mailstack.jmap.emailview import (
    BodyOptions,
    EmailView,
    decode_part_blob_id,
    header_property,
    part_blob_id,
)
from mailstack.jmap.method import MethodError
from mailstack.mime import parse
from mailstack.store.contract import EmailMeta


def message(*lines: str, body: str = "") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


MIXED = message(
    "From: =?utf-8?q?J=C3=B6rg?= <jorg@example.com>, bob@example.org (Bob B)",
    'To: Friends: a@b.example, "Last, First" <c@d.example>;, z@y.example',
    "Cc: undisclosed-recipients:;",
    "Subject: Hello",
    " =?utf-8?b?V29ybGQ=?=",
    "Message-ID: <abc@x.example>",
    "References: <a@x.example>\r\n <b@x.example>",
    "Date: Thu, 30 Oct 2014 14:12:00 +0800",
    "List-Unsubscribe: <mailto:u@x.example>, (comment) <https://x.example/u>",
    "X-Custom: one",
    "X-Custom: two",
    "MIME-Version: 1.0",
    "Content-Type: multipart/mixed; boundary=XX",
    body="\r\n".join([
        "--XX",
        "Content-Type: multipart/alternative; boundary=YY",
        "",
        "--YY",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Hi J=C3=B6rg,",
        "see you",
        "--YY",
        "Content-Type: text/html",
        "",
        '<p>Hi <a href="https://example.com">there</a></p>',
        "--YY--",
        "--XX",
        "Content-Type: application/pdf; name=a.pdf",
        "Content-Disposition: attachment; filename=a.pdf",
        "Content-ID: <part1@x.example>",
        "Content-Transfer-Encoding: base64",
        "",
        "aGVsbG8gd29ybGQ=",
        "--XX--",
        "",
    ]),
)

META = EmailMeta(
    email_id=42, thread_id=7, mailbox_id=3, uid=9,
    flags=frozenset({"\\Seen", "\\Answered", "$Forwarded", "\\Recent", "Custom"}),
    internaldate=datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(
        datetime.timedelta(hours=2))),
    size=len(MIXED), modseq=5,
)


def view(raw: bytes = MIXED, *, with_raw: bool = True, meta: EmailMeta | None = META) -> EmailView:
    return EmailView(parse(raw), meta=meta, raw=raw if with_raw else None, blob_id="G42",
                     parts_blob="G42")


def get(props: list[str], raw: bytes = MIXED, **options: Any) -> dict[str, Any]:
    return view(raw).get(props, BodyOptions(**options))


def test_metadata_maps_flags_to_lowercase_keywords_and_dates_to_utc() -> None:
    out = get(list(emailview.METADATA))
    assert out == {
        "id": "E42", "blobId": "G42", "threadId": "T7", "mailboxIds": {"M3": True},
        "keywords": {"$seen": True, "$answered": True, "$forwarded": True, "custom": True},
        "size": len(MIXED), "receivedAt": "2020-01-02T01:04:05Z",
    }


def test_convenience_properties() -> None:
    out = get(list(emailview.CONVENIENCE))
    assert out["from"] == [{"name": "Jörg", "email": "jorg@example.com"},
                           {"name": "Bob B", "email": "bob@example.org"}]
    assert out["to"] == [{"name": None, "email": "a@b.example"},
                         {"name": "Last, First", "email": "c@d.example"},
                         {"name": None, "email": "z@y.example"}]
    assert out["cc"] == []
    assert out["bcc"] is None and out["sender"] is None and out["replyTo"] is None
    assert out["subject"] == "Hello World"
    assert out["messageId"] == ["abc@x.example"]
    assert out["references"] == ["a@x.example", "b@x.example"]
    assert out["inReplyTo"] is None
    assert out["sentAt"] == "2014-10-30T14:12:00+08:00"


def test_convenience_properties_need_no_raw_bytes() -> None:
    props = list(emailview.CONVENIENCE)
    assert not emailview.needs_raw(props, BodyOptions(), parse(MIXED))
    assert view(with_raw=False).get(props, BodyOptions()) == get(props)


def test_headers_are_raw_with_folding_and_original_case() -> None:
    headers = get(["headers"])["headers"]
    assert headers[3] == {"name": "Subject", "value": " Hello\r\n =?utf-8?b?V29ybGQ=?="}
    assert [h["name"] for h in headers][:3] == ["From", "To", "Cc"]


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ("header:Subject", " Hello\r\n =?utf-8?b?V29ybGQ=?="),
        ("header:SUBJECT:asText", "Hello World"),
        ("header:X-Custom", " two"),
        ("header:x-custom:all", [" one", " two"]),
        ("header:X-Custom:asText:all", ["one", "two"]),
        ("header:X-Missing", None),
        ("header:X-Missing:all", []),
        ("header:To:asGroupedAddresses", [
            {"name": "Friends", "addresses": [
                {"name": None, "email": "a@b.example"},
                {"name": "Last, First", "email": "c@d.example"}]},
            {"name": None, "addresses": [{"name": None, "email": "z@y.example"}]},
        ]),
        ("header:Cc:asGroupedAddresses", [{"name": "undisclosed-recipients", "addresses": []}]),
        ("header:List-Unsubscribe:asURLs", ["mailto:u@x.example", "https://x.example/u"]),
        ("header:References:asMessageIds", ["a@x.example", "b@x.example"]),
        ("header:Date:asDate", "2014-10-30T14:12:00+08:00"),
        ("header:X-Custom:asDate", None),
        ("header:X-Custom:asMessageIds", None),
    ],
)
def test_header_forms(prop: str, expected: Any) -> None:
    assert get([prop]) == {prop: expected}


@pytest.mark.parametrize(
    "prop",
    ["header:From:asDate", "header:Subject:asAddresses", "header:Date:asText",
     "header:List-Post:asText", "header:Message-ID:asURLs", "header:From:asRaw:all:x",
     "header:From:asNothing", "header:", "header:Bad Name", "header:From:all:asRaw",
     "header:To:asraw"],
)
def test_forbidden_or_malformed_header_properties_are_invalid_arguments(prop: str) -> None:
    assert header_property(prop) is None
    with pytest.raises(MethodError) as raised:
        emailview.check_properties([prop], emailview.EMAIL_PROPERTIES, "properties", ())
    assert raised.value.type == "invalidArguments"


def test_unknown_property_is_invalid_arguments() -> None:
    with pytest.raises(MethodError) as raised:
        emailview.check_properties(["id", "nope"], emailview.EMAIL_PROPERTIES, "properties", ())
    assert raised.value.type == "invalidArguments"
    assert raised.value.extra == {"arguments": ["properties"]}


def test_raw_form_replaces_bad_utf8_and_drops_nul() -> None:
    raw = b"Subject: caf\xe9\x00!\r\nX-A: b\r\n\r\nbody"
    assert get(["header:Subject"], raw) == {"header:Subject": " caf\ufffd!"}


def test_text_form_is_nfc() -> None:
    raw = "Subject: e\u0301t\u00e9\r\n\r\n".encode()
    assert get(["subject"], raw) == {"subject": "\u00e9t\u00e9"}


def test_body_split_and_structure() -> None:
    out = get(["bodyStructure", "textBody", "htmlBody", "attachments", "hasAttachment"])
    structure = out["bodyStructure"]
    assert structure["type"] == "multipart/mixed" and structure["partId"] is None
    assert structure["blobId"] is None
    alternative, pdf = structure["subParts"]
    assert [p["partId"] for p in alternative["subParts"]] == ["1.1", "1.2"]
    assert [p["partId"] for p in out["textBody"]] == ["1.1"]
    assert [p["partId"] for p in out["htmlBody"]] == ["1.2"]
    assert out["attachments"] == [{
        "partId": "2", "blobId": "G42-2", "size": len(b"hello world"), "name": "a.pdf",
        "type": "application/pdf", "charset": None, "disposition": "attachment",
        "cid": "part1@x.example", "language": None, "location": None,
    }]
    assert out["textBody"][0]["charset"] == "utf-8"
    assert out["htmlBody"][0]["charset"] == "us-ascii"
    assert out["hasAttachment"] is True


def test_html_only_alternative_fills_text_body() -> None:
    raw = message("Content-Type: multipart/alternative; boundary=B", body="\r\n".join([
        "--B", "Content-Type: text/html", "", "<b>x</b>", "--B--", ""]))
    out = get(["textBody", "htmlBody", "attachments", "hasAttachment"], raw)
    assert [p["partId"] for p in out["textBody"]] == ["1"]
    assert [p["partId"] for p in out["htmlBody"]] == ["1"]
    assert out["attachments"] == [] and out["hasAttachment"] is False


def test_related_inline_image_and_text_attachment_with_name() -> None:
    raw = message("Content-Type: multipart/mixed; boundary=M", body="\r\n".join([
        "--M", "Content-Type: multipart/related; boundary=R", "",
        "--R", "Content-Type: text/html", "", "<img src=cid:i>",
        "--R", "Content-Type: image/png", "Content-Disposition: inline", "Content-ID: <i>", "",
        "PNG",
        "--R--",
        "--M", "Content-Type: text/plain; name=notes.txt", "", "notes",
        "--M", "Content-Type: image/jpeg", "", "JPG",
        "--M--", ""]))
    out = get(["textBody", "htmlBody", "attachments", "hasAttachment"], raw)
    assert [p["partId"] for p in out["htmlBody"]] == ["1.1", "3"]
    assert [p["partId"] for p in out["textBody"]] == ["1.1", "3"]
    # Related parts after the first are attachments; a named text part that
    # is not first is one; an image in mixed is shown in both bodies only.
    assert [p["partId"] for p in out["attachments"]] == ["1.2", "2"]
    assert out["hasAttachment"] is True


def test_only_inline_attachments_do_not_count_as_has_attachment() -> None:
    raw = message("Content-Type: multipart/related; boundary=R", body="\r\n".join([
        "--R", "Content-Type: text/html", "", "<img src=cid:i>",
        "--R", "Content-Type: image/png", "Content-Disposition: inline", "", "PNG",
        "--R--", ""]))
    assert get(["hasAttachment"], raw) == {"hasAttachment": False}


def test_single_part_message_is_part_1() -> None:
    raw = message("Subject: x", body="just text\r\n")
    out = get(["bodyStructure", "textBody", "preview"], raw)
    assert out["bodyStructure"]["partId"] == "1"
    assert out["bodyStructure"]["blobId"] == "G42-1"
    assert out["bodyStructure"]["subParts"] is None
    assert out["textBody"][0]["type"] == "text/plain"
    assert out["preview"] == "just text"


def test_message_rfc822_part_is_a_leaf() -> None:
    inner = ("Subject: inner\r\nContent-Type: multipart/mixed; boundary=I\r\n\r\n"
             "--I\r\n\r\nx\r\n--I--")
    raw = message("Content-Type: multipart/mixed; boundary=M", body="\r\n".join([
        "--M", "", "outer", "--M", "Content-Type: message/rfc822", "", inner, "--M--", ""]))
    out = get(["bodyStructure", "attachments"], raw)
    attached = out["bodyStructure"]["subParts"][1]
    assert attached["type"] == "message/rfc822" and attached["subParts"] is None
    assert [p["partId"] for p in out["attachments"]] == ["2"]


def test_body_values_decoding_truncation_and_encoding_problems() -> None:
    out = get(["bodyValues"], fetch_text=True, fetch_html=True)
    assert out["bodyValues"] == {
        "1.1": {"value": "Hi Jörg,\nsee you", "isEncodingProblem": False,
                "isTruncated": False},
        "1.2": {"value": '<p>Hi <a href="https://example.com">there</a></p>',
                "isEncodingProblem": False, "isTruncated": False},
    }
    # "Hi J" + two octets of ö: a cut inside the character keeps it out.
    out = get(["bodyValues"], fetch_text=True, max_bytes=5)
    assert out["bodyValues"]["1.1"] == {"value": "Hi J", "isEncodingProblem": False,
                                        "isTruncated": True}
    # Never inside an HTML tag.
    out = get(["bodyValues"], fetch_html=True, max_bytes=12)
    assert out["bodyValues"]["1.2"]["value"] == "<p>Hi "
    raw = message("Content-Type: text/plain; charset=utf-8", body="bad \xff".encode(
        "latin-1").decode("latin-1"))
    raw = raw.replace("bad \u00ff".encode(), b"bad \xff")
    value = get(["bodyValues"], raw, fetch_all=True)["bodyValues"]["1"]
    assert value == {"value": "bad \ufffd", "isEncodingProblem": True, "isTruncated": False}


def test_body_values_only_for_text_parts_when_asked() -> None:
    assert get(["bodyValues"])["bodyValues"] == {}
    assert set(get(["bodyValues"], fetch_all=True)["bodyValues"]) == {"1.1", "1.2"}


def test_body_options_are_checked() -> None:
    for args in ({"fetchTextBodyValues": "yes"}, {"maxBodyValueBytes": -1},
                 {"maxBodyValueBytes": True}, {"bodyProperties": ["nope"]},
                 {"bodyProperties": ["header:From:asDate"]}):
        with pytest.raises(MethodError):
            BodyOptions.from_args(args)
    options = BodyOptions.from_args({"bodyProperties": ["partId", "header:Content-Type"]})
    out = view().get(["attachments"], options)
    assert out["attachments"] == [{"partId": "2",
                                   "header:Content-Type": " application/pdf; name=a.pdf"}]


def test_preview_is_at_most_256_characters_of_collapsed_text() -> None:
    raw = message("Subject: long", body=("word  \r\n" * 200))
    preview = get(["preview"], raw)["preview"]
    assert len(preview) == 256 and "  " not in preview and preview.startswith("word word")


def test_part_blob_ids_round_trip() -> None:
    assert part_blob_id("G42", "2.1.3") == "G42-2-1-3"
    assert decode_part_blob_id("G42-2-1-3") == (42, (2, 1, 3))
    for bad in ("G42", "G42-", "G42-0", "G42-01", "E42-1", "G-1", "G42-1-x", 5, None):
        assert decode_part_blob_id(bad) is None


def test_email_parse_view_has_no_metadata_but_its_blob() -> None:
    out = view(meta=None).get(["id", "blobId", "threadId", "keywords", "subject"],
                              BodyOptions())
    assert out == {"id": None, "blobId": "G42", "threadId": None, "keywords": None,
                   "subject": "Hello World"}
