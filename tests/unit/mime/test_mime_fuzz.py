"""Any input parses; offsets stay in bounds and ordered; storage round-trips."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from mime_samples import ALL

from mailstack.mime import ParsedMessage, Part, parse

# Fragments that steer random input towards MIME structure.
FRAGMENTS = [
    b"\r\n", b"\n", b"\r", b" ", b":", b"--b", b"--b--", b"--c", b"\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/digest; boundary=c\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset*0*=utf-8''%E2; charset*1=x\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename=\"a;b\"\r\n",
    b"From: A Group: a@b, \"x\" <c@d>;\r\n", b"To: (c) <@r:a@b> ,,\r\n",
    b"Subject: =?utf-8?b?4oI=?= =?x?q?=FF?=\r\n", b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n",
    b"\xff\xfe", b"=?", b"?=", b"(", b")", b"\"", b"<", b">", b"\\",
]

messages = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=8)), max_size=40)
    .map(b"".join),
    st.sampled_from(sorted(ALL.values())).flatmap(
        lambda raw: st.integers(0, len(raw)).map(lambda cut: raw[:cut])),
)


def check_part(part: Part, start: int, end: int) -> None:
    assert start <= part.header_start <= part.header_end <= part.body_start
    assert part.body_start <= part.body_end <= end
    previous = part.header_start
    for _, field_start, field_end in part.headers:
        assert previous <= field_start < field_end <= part.header_end
        previous = field_end
    assert part.maintype and part.subtype
    if part.maintype == "multipart":
        assert part.children
    if part.maintype == "message" and part.subtype in ("rfc822", "global"):
        assert part.message is not None and part.message_envelope is not None
    low = part.body_start
    for child in part.children:
        check_part(child, low, part.body_end)
        low = child.body_end
    if part.message is not None:
        assert (part.message.header_start, part.message.body_end) == (
            part.body_start, part.body_end)
        check_part(part.message, part.body_start, part.body_end)


@settings(max_examples=400, deadline=None)
@given(messages)
def test_random_input_never_raises_and_stays_in_bounds(raw):
    msg = parse(raw)
    assert msg.size == len(raw)
    check_part(msg.root, 0, len(raw))
    assert msg.root.body_end == len(raw)
    assert ParsedMessage.from_bytes(msg.to_bytes()) == msg


@settings(max_examples=200, deadline=None)
@given(messages)
def test_prepend_matches_reparse(raw):
    prefix = b"Delivered-To: x@y\r\n"
    if raw[:1] in (b" ", b"\t"):
        # Documented limit: a leading continuation line would fold into the prefix.
        raw = b"X" + raw
    assert parse(raw).prepend(prefix) == parse(prefix + raw)
