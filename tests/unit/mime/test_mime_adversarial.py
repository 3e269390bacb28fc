"""Hostile inputs: the work stays linear and bounded (a timeout, not a timing check)."""

from __future__ import annotations

import pytest

from mailstack.limits import Limits
from mailstack.mime import html_text, parse


def test_html_text():
    assert html_text("<p>a &amp; b</p><script>x<y</script>c<!-- d -->e").split() == [
        "a", "&", "b", "c", "e"]
    assert html_text("1 < 2 and 3 > 2") == "1 < 2 and 3 > 2"
    assert html_text("<STYLE>p{}</style >ok") == " ok"
    assert html_text("x<!-- never closed") == "x"
    assert html_text("x<script>never closed") == "x"


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("markup", "visible"), [
    ("<script" * 100_000, ""),            # an unclosed script hides the rest
    ("<!--" * 100_000, ""),               # so does an unclosed comment
    ("<a" * 200_000, "<a" * 200_000),     # never closed, so never a tag: text
], ids=["script", "comment", "tag"])
def test_html_text_unclosed_constructs(markup, visible):
    raw = b"Content-Type: text/html\r\n\r\n" + markup.encode()
    assert "script" not in parse(raw).text or markup.startswith("<a")
    assert parse(raw).text == visible  # and in linear time (the timeout)


@pytest.mark.timeout(20)
def test_many_parts_are_capped():
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + b"--x\r\n" * 200_000
    msg = parse(raw, Limits(mime_parts=1000))
    assert len(msg.root.children) == 999
    assert len(parse(raw).root.children) < 10_000


@pytest.mark.timeout(20)
def test_deep_nesting_is_capped():
    layer = b"Content-Type: multipart/mixed; boundary=%d\r\n\r\n--%d\r\n"
    raw = b"".join(layer % (i, i) for i in range(5000)) + b"leaf\r\n"
    msg = parse(raw)
    depth = 0
    part = msg.root
    while part.children:
        part = part.children[0]
        depth += 1
    assert depth == 50
    assert (part.maintype, part.subtype) == ("application", "octet-stream")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", [
    "(" * 50_000, "\"" * 50_000, "<" * 50_000, "a:" * 50_000, "@" * 50_000,
    "=?utf-8?q?" * 20_000,
], ids=["comments", "quotes", "angles", "groups", "ats", "words"])
def test_hostile_header_values(value):
    raw = f"From: {value}\r\nSubject: {value}\r\nContent-Type: a/b; x*0*={value}\r\n\r\n"
    msg = parse(raw.encode())
    assert msg.size == len(raw)
    assert msg.header_value("subject") is not None


@pytest.mark.timeout(20)
def test_header_field_budget():
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(200))
    raw = fields + b"\r\nbody\r\n"
    msg = parse(raw, Limits(mime_header_fields=50))
    assert len(msg.headers) == 50
    assert raw[msg.root.body_start:] == b"body\r\n"
    assert raw[msg.root.header_end:msg.root.body_start] == b"\r\n"
    assert len(parse(raw).headers) == 200
    huge = b"a:\r\n" * 500_000 + b"\r\nbody"
    msg = parse(huge)
    assert len(msg.headers) == Limits().mime_header_fields
    assert huge[msg.root.body_start:] == b"body"


@pytest.mark.timeout(20)
def test_many_continuation_lines():
    raw = b"Subject: x\r\n" + b" y\r\n" * 500_000 + b"\r\nbody"
    msg = parse(raw)
    ((name, start, end),) = msg.headers
    assert (name, start, raw[end:]) == ("subject", 0, b"\r\nbody")
