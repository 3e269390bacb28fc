"""RFC 3501 §6.4.5 section numbers and the slices FETCH BODY[...] takes."""

from __future__ import annotations

import email
import email.policy

import pytest
from mime_samples import ALL, FORWARDED, MIXED, PLAIN

from mailstack.limits import Limits
from mailstack.mime import Part, parse, part_text, transfer_decode

# RFC 3501 §6.4.5 example message structure, built as a real message.
RFC3501_EXAMPLE = (
    b"Subject: example\r\nContent-Type: MULTIPART/MIXED; boundary=a\r\n\r\n"
    b"--a\r\nContent-Type: TEXT/PLAIN\r\n\r\npart1\r\n"
    b"--a\r\nContent-Type: APPLICATION/OCTET-STREAM\r\n\r\npart2\r\n"
    b"--a\r\nContent-Type: MESSAGE/RFC822\r\n\r\n"
    b"Subject: three\r\nContent-Type: MULTIPART/MIXED; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: TEXT/PLAIN\r\n\r\npart3.1\r\n"
    b"--b\r\nContent-Type: APPLICATION/OCTET-STREAM\r\n\r\npart3.2\r\n"
    b"--b--\r\n"
    b"--a\r\nContent-Type: MULTIPART/MIXED; boundary=c\r\n\r\n"
    b"--c\r\nContent-Type: IMAGE/GIF\r\n\r\npart4.1\r\n"
    b"--c\r\nContent-Type: MESSAGE/RFC822\r\n\r\n"
    b"Subject: four-two\r\nContent-Type: MULTIPART/MIXED; boundary=d\r\n\r\n"
    b"--d\r\nContent-Type: TEXT/PLAIN\r\n\r\npart4.2.1\r\n"
    b"--d\r\nContent-Type: MULTIPART/ALTERNATIVE; boundary=e\r\n\r\n"
    b"--e\r\nContent-Type: TEXT/PLAIN\r\n\r\npart4.2.2.1\r\n"
    b"--e\r\nContent-Type: TEXT/RICHTEXT\r\n\r\npart4.2.2.2\r\n"
    b"--e--\r\n--d--\r\n--c--\r\n--a--\r\n"
)


def body(raw: bytes, part: Part | None) -> bytes:
    assert part is not None
    return raw[part.body_start:part.body_end]


@pytest.mark.parametrize("path, expected", [
    ((1,), b"part1"),
    ((2,), b"part2"),
    ((3, 1), b"part3.1"),
    ((3, 2), b"part3.2"),
    ((4, 1), b"part4.1"),
    ((4, 2, 1), b"part4.2.1"),
    ((4, 2, 2, 1), b"part4.2.2.1"),
    ((4, 2, 2, 2), b"part4.2.2.2"),
])
def test_rfc3501_example_numbering(path, expected):
    assert body(RFC3501_EXAMPLE, parse(RFC3501_EXAMPLE).section(path)) == expected


@pytest.mark.parametrize("path", [(0,), (5,), (1, 1), (2, 1), (3, 3), (4, 2, 2, 3), (9, 9)])
def test_missing_sections(path):
    assert parse(RFC3501_EXAMPLE).section(path) is None


def test_message_rfc822_part_header_and_text():
    raw = RFC3501_EXAMPLE
    msg = parse(raw)
    part3 = msg.section((3,))
    assert part3 is not None and part3.message is not None
    # BODY[3.MIME] is the part's own header, BODY[3.HEADER] the encapsulated one.
    assert raw[part3.header_start:part3.body_start] == (
        b"Content-Type: MESSAGE/RFC822\r\n\r\n")
    inner = part3.message
    assert raw[inner.header_start:inner.body_start] == (
        b"Subject: three\r\nContent-Type: MULTIPART/MIXED; boundary=b\r\n\r\n")
    assert raw[inner.body_start:inner.body_end].startswith(b"--b\r\n")
    # The line ending before "--a" belongs to the outer delimiter.
    assert raw[inner.body_start:inner.body_end].endswith(b"part3.2\r\n--b--")
    assert part3.message_envelope is not None
    assert part3.message_envelope.subject == "three"
    assert msg.section((4, 2)).message_envelope.subject == "four-two"


def test_single_part_message_part_one_is_its_body():
    msg = parse(PLAIN)
    assert msg.section(()) is msg.root
    assert msg.section((1,)) is msg.root
    assert msg.section((2,)) is None
    assert msg.section((1, 1)) is None


def test_single_part_encapsulated_message():
    raw = (b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
           b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner text\r\n--z--\r\n")
    msg = parse(raw)
    assert body(raw, msg.section((1, 1))) == b"inner text"
    assert msg.section((1, 2)) is None


def test_top_level_message_rfc822():
    raw = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner\r\n"
    msg = parse(raw)
    assert msg.section((1,)) is msg.root
    assert body(raw, msg.section((1, 1))) == b"inner\r\n"


def test_header_index_slices_whole_fields():
    msg = parse(PLAIN)
    fields = {name: PLAIN[start:end] for name, start, end in msg.headers}
    assert fields["subject"] == b"Subject: Saying\r\n Hello\r\n"
    assert fields["message-id"] == b"Message-ID: <1234@local.machine.example>\r\n"
    assert b"".join(PLAIN[s:e] for _, s, e in msg.headers) == PLAIN[:msg.root.header_end]


def test_attachment_decoding_helpers():
    msg = parse(MIXED)
    pdf = msg.section((2,))
    assert transfer_decode(body(MIXED, pdf), pdf.encoding) == "%PDF-1.4\n%äüöß\n".encode()
    assert transfer_decode(b"YWJj\r\nZA==\r\n", "BASE64") == b"abcd"
    assert transfer_decode(b"YQ==\r\nYg==\r\n", "base64") == b"ab"
    assert transfer_decode(b"YWJjZA", "base64") == b"abcd"
    assert transfer_decode(b"*Y*Q*\r\n", "base64") == b"a"
    assert transfer_decode(b"YWJjZ", "base64") == b"abc"
    assert transfer_decode(b"", "base64") == b""
    assert transfer_decode(b"=C3=A9=\r\nx", "quoted-printable") == "éx".encode()
    assert transfer_decode(b"abc", "x-unknown") == b"abc"
    assert part_text(MIXED, msg.section((1,)), 100) == "See the attachment."


def test_searchable_text():
    assert parse(ALL["alternative"]).text.split() == ["Café", "au", "lait", "Café", "noir"]
    text = parse(FORWARDED).text
    assert "Forwarded below." in text and "inner plain" in text and "inner html" in text
    assert "<p>" not in text
    assert parse(MIXED).text == "See the attachment."
    assert len(parse(b"\r\n" + b"x" * 5000, Limits(mime_search_text=100)).text) == 100


def _stdlib_leaves(raw: bytes) -> list[tuple[str, object]]:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [(leaf.get_content_type(), leaf.get_payload(decode=True))
            for leaf in message.walk() if not leaf.is_multipart()]


def _our_leaves(raw: bytes, part: Part) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for node in part.walk():
        if node.children or node.message is not None:
            continue
        out.append((f"{node.maintype}/{node.subtype}",
                    transfer_decode(raw[node.body_start:node.body_end], node.encoding)))
    return out


@pytest.mark.parametrize("name", ["plain", "alternative", "mixed", "lf_only", "forwarded"])
def test_leaves_agree_with_the_stdlib_parser(name):
    raw = ALL[name]
    ours = _our_leaves(raw, parse(raw).root)
    theirs = _stdlib_leaves(raw)
    assert [kind for kind, _ in ours] == [kind for kind, _ in theirs]
    for (_, mine), (_, stdlib) in zip(ours, theirs, strict=True):
        # The stdlib keeps the line ending that RFC 2046 gives to the delimiter.
        assert mine == stdlib or mine + b"\r\n" == stdlib or mine + b"\n" == stdlib


def test_select_fields():
    root = parse(PLAIN).root
    assert root.select_fields(PLAIN, {"subject", "x-none", "to"}) == (
        b"To: Mary Smith <mary@x.test>, jdoe@one.test\r\n"
        b"Subject: Saying\r\n Hello\r\n\r\n")
    rest = root.select_fields(PLAIN, {"subject", "to"}, exclude=True)
    assert rest.startswith(b"Return-Path: <joe@example.com>\r\nFrom: ")
    assert b"Subject" not in rest and rest.endswith(b">\r\n\r\n")
    assert root.select_fields(PLAIN, set()) == b"\r\n"
    raw = ALL["no_blank_line"]
    assert parse(raw).root.select_fields(raw, {"from"}) == b"From: a@example.com\r\n\r\n"
    lf = ALL["lf_only"]
    assert parse(lf).root.select_fields(lf, {"subject"}) == b"Subject: bare LF\n\n"


def test_header_text():
    text = parse(ALL["encoded_subject"]).header_text()
    assert "subject: Grüße aus München" in text
    assert text.startswith("from: Jürgen <j@example.de>")
