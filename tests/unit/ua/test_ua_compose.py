"""Composing with the `email` package: what RFC 5322 and MIME ask, checked by
parsing the result with `email` and with `mailstack.mime`."""

from __future__ import annotations

import email
import email.policy

import pytest

from mailstack.mime import parse
from mailstack.ua.compose import ComposeError, Draft, addresses, compose, content_type


def parsed(draft: Draft) -> email.message.EmailMessage:
    return email.message_from_bytes(compose(draft).message, policy=email.policy.default)


def test_fields_and_envelope() -> None:
    out = compose(Draft(
        sender="Alice <alice@crepes.fr>", to=["bob@hamburger.edu, Carol <carol@x.org>"],
        cc=["dan@x.org"], bcc=["eve@y.org", "bob@hamburger.edu"], subject="ketchup",
        text="Do you like ketchup?\n", reply_to=["r@crepes.fr"], headers=["X-Lab: 1"],
    ))  # fmt: skip
    assert out.mail_from == "alice@crepes.fr"
    assert out.recipients == ["bob@hamburger.edu", "carol@x.org", "dan@x.org", "eve@y.org"]
    message = email.message_from_bytes(out.message, policy=email.policy.default)
    assert message["To"] == "bob@hamburger.edu, Carol <carol@x.org>"
    assert "Bcc" not in message and b"eve@" not in out.message  # RFC 5322 §3.6.3
    assert message["Message-ID"] == out.message_id and out.message_id.endswith("@crepes.fr>")
    assert message["Date"].datetime is not None and message["MIME-Version"] == "1.0"
    assert message["X-Lab"] == "1" and message["Reply-To"] == "r@crepes.fr"
    assert out.message.endswith(b"\r\n") and b"\r\n" in out.message and b"\n\n" not in out.message


def test_rfc2047_subject_and_name_and_rfc2231_filename(tmp_path) -> None:
    (tmp_path / "crêpe façon ½.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))
    out = compose(Draft(
        sender="Ünal Çelik <alice@crepes.fr>", to=["bob@hamburger.edu"],
        subject="Grüße — 日本", text="x\n", attachments=[tmp_path / "crêpe façon ½.jpg"],
    ))  # fmt: skip
    assert out.message.isascii()
    head = out.message.split(b"\r\n\r\n")[0]
    assert b"=?utf-8?" in head  # RFC 2047 encoded words
    assert b"filename*" in out.message  # RFC 2231
    message = email.message_from_bytes(out.message, policy=email.policy.default)
    assert message["Subject"] == "Grüße — 日本"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "crêpe façon ½.jpg"
    assert attachment.get_content_type() == "image/jpeg"
    second = parse(out.message)
    assert second.header_value("subject") == "Grüße — 日本"
    [part] = [p for p in second.root.walk() if p.maintype == "image"]
    assert part.filename() == "crêpe façon ½.jpg" and part.encoding.lower() == "base64"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("plain ASCII\n", "7bit"),
        ("Liebe Grüße aus Paris\n", "quoted-printable"),
        ("日本語のメッセージです\n", "base64"),
        ("x" * 1200 + "\n", "quoted-printable"),  # RFC 5322 §2.1.1: 998 octets a line
    ],
)
def test_transfer_encoding_per_part(text: str, encoding: str) -> None:
    message = parsed(Draft(sender="a@b.org", to=["c@d.org"], text=text))
    assert message["Content-Transfer-Encoding"] == encoding
    assert message.get_content().replace("\r\n", "\n") == text


def test_html_alternative_and_text_made_from_html() -> None:
    message = parsed(Draft(sender="a@b.org", to=["c@d.org"], html="<p>Hi <b>Bob</b></p>"))
    assert message.get_content_type() == "multipart/alternative"
    assert "Hi" in message.get_body(("plain",)).get_content()
    assert message.get_body(("html",)).get_content().startswith("<p>Hi")
    assert "MIME-Version" not in message.get_body(("html",))  # the header only


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("a.pdf", b"", ("application", "pdf")),
        ("noext", b"\x89PNG\r\n\x1a\n....", ("image", "png")),
        ("noext", b"just words\n", ("text", "plain")),
        ("noext", b"\x00\x01\x02", ("application", "octet-stream")),
        ("noext", b"\xff\xfe\xfd", ("application", "octet-stream")),
        ("backup.tar.gz", b"\x1f\x8b", ("application", "gzip")),
    ],
)
def test_content_type_from_name_then_content(name: str, data: bytes, kind: tuple) -> None:
    assert content_type(name, data) == kind


@pytest.mark.parametrize(
    ("draft", "said"),
    [
        (Draft(sender="", to=["b@c.org"]), "--from is required"),
        (Draft(sender="a@b.org, c@d.org", to=["b@c.org"]), "--from names one address"),
        (Draft(sender="a@b.org"), "no recipient"),
        (Draft(sender="a@b.org", to=["bob"]), "--to 'bob' is not an address"),
        (Draft(sender="a@b.org", to=["a@b@c"]), "is not an address"),
        (Draft(sender="a@b.org", to=["<>"]), "is not an address"),
        (Draft(sender="a@b.org", to=["bad@"]), "is not an address"),
        (Draft(sender="a@b.org", to=["ü@x.org"]), "non-ASCII addresses"),
        (Draft(sender="a@b.org", to=["b@c.org"], headers=["NoColon"]), "is not 'Name: value'"),
        (Draft(sender="a@b.org", to=["b@c.org"], headers=["Bad Name: x"]), "is not 'Name: value'"),
        (Draft(sender="a@b.org", to=["b@c.org"], headers=["Date: x"]), "set by send's own"),
    ],
)
def test_bad_drafts(draft: Draft, said: str) -> None:
    with pytest.raises(ComposeError, match=said.replace("(", r"\(")):
        compose(draft)


def test_attachment_errors(tmp_path) -> None:
    with pytest.raises(ComposeError, match="no such file"):
        compose(Draft(sender="a@b.org", to=["b@c.org"], attachments=[tmp_path / "gone"]))
    with pytest.raises(ComposeError, match="is a directory"):
        compose(Draft(sender="a@b.org", to=["b@c.org"], attachments=[tmp_path]))


def test_addresses_keeps_display_names() -> None:
    [one, two] = addresses("--to", ['"Smith, Bob" <bob@x.org>, carol@y.org'])
    assert (one.display_name, one.addr_spec, two.addr_spec) == (
        "Smith, Bob",
        "bob@x.org",
        "carol@y.org",
    )
