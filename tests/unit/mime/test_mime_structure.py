"""Golden body structures: types, parameters, extension data, body slices."""

from __future__ import annotations

from mime_samples import ALL, DIGEST, FORWARDED, LF_ONLY, MIXED, RFC2231

from mailstack.limits import Limits
from mailstack.mime import Part, parse


def shape(raw: bytes, part: Part) -> tuple:
    """A BODYSTRUCTURE-like summary whose body slices prove the offsets."""
    kind = f"{part.maintype}/{part.subtype}"
    if part.children:
        return (kind, part.params, [shape(raw, child) for child in part.children])
    summary: tuple = (kind, part.params, part.encoding, raw[part.body_start:part.body_end],
                      part.lines)
    if part.message is not None:
        assert part.message_envelope is not None
        summary += (part.message_envelope.subject, shape(raw, part.message))
    return summary


US_ASCII = [("charset", "us-ascii")]


def test_plain():
    raw = ALL["plain"]
    msg = parse(raw)
    assert shape(raw, msg.root) == (
        "text/plain", US_ASCII, "7BIT",
        b'This is a message just to say hello.\r\nSo, "Hello".\r\n', 2,
    )
    assert msg.size == len(raw)
    assert msg.root.size == 52


def test_alternative():
    raw = ALL["alternative"]
    assert shape(raw, parse(raw).root) == (
        "multipart/alternative", [("boundary", "alt-1")], [
            ("text/plain", [("charset", "utf-8")], "quoted-printable",
             b"Caf=C3=A9 au lait", 1),
            ("text/html", [("charset", "utf-8")], "7BIT",
             b"<html><body><p>Caf&eacute; <b>noir</b></p></body></html>", 1),
        ],
    )


def test_mixed_with_attachment_and_extension_data():
    msg = parse(MIXED)
    assert shape(MIXED, msg.root) == (
        "multipart/mixed", [("boundary", "mix")], [
            ("text/plain", US_ASCII, "7BIT", b"See the attachment.", 1),
            ("application/pdf", [("name", "report.pdf")], "base64",
             b"JVBERi0xLjQKJcOkw7zDtsOfCg==", None),
        ],
    )
    pdf = msg.root.children[1]
    assert pdf.id == "<part2@example.com>"
    assert pdf.description == "The report"
    assert pdf.md5 == "Q2hlY2sgSW50ZWdyaXR5IQ=="
    assert pdf.disposition == ("attachment", [("filename", "report.pdf"), ("size", "12")])
    assert pdf.language == ["en", "de"]
    assert pdf.location == "http://example.com/report.pdf"
    assert pdf.filename() == "report.pdf"
    assert msg.root.children[0].disposition is None
    assert msg.root.children[0].language is None


def test_nested_message_rfc822():
    msg = parse(FORWARDED)
    assert shape(FORWARDED, msg.root) == (
        "multipart/mixed", [("boundary", "outer")], [
            ("text/plain", [], "7BIT", b"Forwarded below.", 1),
            ("message/rfc822", [], "7BIT", FORWARDED[FORWARDED.index(b"From: Inner"):
                                                     FORWARDED.index(b"\r\n--outer--")], 15,
             "inner",
             ("multipart/alternative", [("boundary", "inner")], [
                 ("text/plain", US_ASCII, "7BIT", b"inner plain", 1),
                 ("text/html", [], "7BIT", b"<p>inner html</p>", 1),
             ])),
        ],
    )
    inner = msg.root.children[1]
    assert inner.disposition == ("inline", [])
    envelope = inner.message_envelope
    assert envelope is not None
    assert envelope.date == "Sat, 1 Jan 2000 00:00:00 +0000"
    assert [tuple(a) for a in envelope.from_] == [
        ("Inner Sender", None, "inner", "example.org")]
    assert [tuple(a) for a in envelope.to] == [
        (None, None, "undisclosed-recipients", None), (None, None, None, None)]


def test_rfc2231_continuations_and_charset():
    part = parse(RFC2231).root
    assert (part.maintype, part.subtype) == ("application", "x-stuff")
    assert part.params == [("title", "This is even more ***fun*** isn't it!")]
    assert part.disposition == ("attachment", [("filename", "€ rates.txt")])


def test_lf_only_line_endings():
    assert shape(LF_ONLY, parse(LF_ONLY).root) == (
        "multipart/mixed", [("boundary", "b")], [
            ("text/plain", [], "7BIT", b"one", 1),
            ("text/plain", US_ASCII, "7BIT", b"two", 1),
        ],
    )


def test_no_blank_line_between_header_and_body():
    raw = ALL["no_blank_line"]
    root = parse(raw).root
    assert root.header_end == root.body_start
    assert raw[:root.header_end] == b"From: a@example.com\r\nSubject: no separator\r\n"
    assert raw[root.body_start:].startswith(b"this line is not a header")
    assert root.lines == 2


def test_empty_body_and_header_without_line_ending():
    raw = ALL["empty_body"]
    root = parse(raw).root
    assert raw[root.header_end:root.body_start] == b"\r\n"
    assert (root.size, root.lines, root.body_end) == (0, 0, len(raw))
    raw = ALL["header_only"]
    msg = parse(raw)
    assert (msg.root.header_end, msg.root.body_start, msg.root.size) == (len(raw),) * 2 + (0,)
    assert msg.envelope.subject == "no newline at all"


def test_boundary_never_found_gives_one_headerless_part():
    raw = ALL["malformed_boundary"]
    root = parse(raw).root
    assert shape(raw, root) == (
        "multipart/mixed", [("boundary", "never-used")], [
            ("text/plain", US_ASCII, "7BIT", b"--something-else\r\n\r\ntext\r\n", 3),
        ],
    )


def test_unclosed_multipart_runs_to_the_end():
    raw = ALL["unclosed"]
    assert shape(raw, parse(raw).root)[2] == [
        ("text/plain", [], "7BIT", b"first", 1),
        ("text/plain", US_ASCII, "7BIT", b"second, never closed\r\n", 1),
    ]


def test_malformed_content_types_fall_back_to_the_default():
    for name in ("no_boundary_param", "bad_content_type"):
        raw = ALL[name]
        assert shape(raw, parse(raw).root) == ("text/plain", US_ASCII, "7BIT", b"text\r\n", 1)


def test_digest_defaults_to_message_rfc822():
    root = parse(DIGEST).root
    first, second = root.children
    assert (first.maintype, first.subtype) == ("message", "rfc822")
    assert first.message_envelope is not None
    assert first.message_envelope.subject == "first"
    assert DIGEST[first.message.body_start:first.message.body_end] == b"first body"
    assert (second.maintype, second.subtype) == ("text", "plain")


def test_boundary_must_start_a_line_and_may_have_padding():
    raw = (b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
           b"--x  \r\n\r\nnot --x here\r\n--xy\r\nstill one\r\n--x--\t\r\nepilogue\r\n")
    root = parse(raw).root
    assert [raw[p.body_start:p.body_end] for p in root.children] == [
        b"not --x here\r\n--xy\r\nstill one"]


def test_part_without_headers_or_blank_line():
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nbody at once\r\n--x--\r\n"
    (child,) = parse(raw).root.children
    assert child.headers == []
    assert child.header_start == child.header_end == child.body_start
    assert raw[child.body_start:child.body_end] == b"body at once"


def test_depth_limit_makes_opaque_leaves():
    inner = b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    raw = inner
    for _ in range(60):
        raw = b"Content-Type: message/rfc822\r\n\r\n" + raw
    msg = parse(raw, Limits(mime_nesting=10))
    depth = 0
    part = msg.root
    while part.message is not None:
        part = part.message
        depth += 1
    assert depth == 10
    assert (part.maintype, part.subtype) == ("application", "octet-stream")
    assert part.body_end == len(raw)


def test_part_limit_bounds_work():
    body = b"".join(b"--x\r\n\r\n%d\r\n" % i for i in range(50))
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + body + b"--x--\r\n"
    assert len(parse(raw).root.children) == 50
    assert len(parse(raw, Limits(mime_parts=11)).root.children) == 10


def test_content_type_comments_and_case():
    raw = (b"Content-Type: TEXT/HTML (comment); CharSet=\"ISO-8859-1\"\r\n"
           b"Content-Transfer-Encoding: Quoted-Printable (qp)\r\n\r\n=E9\r\n")
    root = parse(raw).root
    assert (root.maintype, root.subtype) == ("text", "html")
    assert root.params == [("charset", "ISO-8859-1")]
    assert root.encoding == "Quoted-Printable"
    assert parse(raw).text.strip() == "é"


def test_filename_sources():
    raw = (b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
           b"--x\r\nContent-Type: application/pdf; name=\"=?utf-8?q?r=C3=A9sum=C3=A9?=.pdf\"\r\n"
           b"\r\n%PDF\r\n--x\r\nContent-Type: text/plain\r\n\r\nno name\r\n--x--\r\n")
    first, second = parse(raw).root.children
    assert first.filename() == "résumé.pdf"
    assert first.params == [("name", "=?utf-8?q?r=C3=A9sum=C3=A9?=.pdf")]
    assert second.filename() is None
