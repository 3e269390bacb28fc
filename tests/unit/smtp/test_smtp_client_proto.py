"""The client's protocol pieces: replies fed whole, byte by byte and with
trailing data; EHLO keywords; commands; dot stuffing and BDAT framing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailstack.smtp.client_proto import (
    MAX_REPLY_LINE,
    MAX_REPLY_LINES,
    ClientReply,
    ReplyError,
    ReplyReader,
    bdat,
    dot_stuff,
    extensions,
    mail_command,
    rcpt_command,
)

EHLO = (
    b"250-hamburger.edu Hello crepes.fr, pleased to meet you\r\n"
    b"250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-chunking\r\n"
    b"250-DSN\r\n250 STARTTLS\r\n"
)


def replies(reader: ReplyReader) -> list[ClientReply]:
    out = []
    while (reply := reader.next_reply()) is not None:
        out.append(reply)
    return out


def test_multiline_reply_whole():
    reader = ReplyReader()
    reader.feed(EHLO)
    [reply] = replies(reader)
    assert reply.code == 250 and len(reply.lines) == 7
    assert reply.lines[0] == "hamburger.edu Hello crepes.fr, pleased to meet you"
    assert extensions(reply) == {
        "PIPELINING": "",
        "SIZE": "52428800",
        "8BITMIME": "",
        "CHUNKING": "",
        "DSN": "",
        "STARTTLS": "",
    }


def test_byte_by_byte_and_trailing_data():
    reader = ReplyReader()
    stream = b"220 hamburger.edu ESMTP\r\n250 2.1.0 Sender ok\r\n550 5.1.1 User unknown\r\n354"
    got = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        got += replies(reader)
    assert [(r.code, r.text) for r in got] == [
        (220, "hamburger.edu ESMTP"),
        (250, "2.1.0 Sender ok"),
        (550, "5.1.1 User unknown"),
    ]
    reader.feed(b" go ahead\r\n")
    assert [r.code for r in replies(reader)] == [354]


def test_code_alone_and_bare_lf():
    reader = ReplyReader()
    reader.feed(b"250\n221-bye\n221 closing\n")
    assert [(r.code, r.lines) for r in replies(reader)] == [
        (250, ("",)),
        (221, ("bye", "closing")),
    ]


@pytest.mark.parametrize(
    "data",
    [b"hello there\r\n", b"25O ok\r\n", b"250-one\r\n251 two\r\n", b"650 nope\r\n"],
)
def test_malformed_replies(data):
    reader = ReplyReader()
    reader.feed(data)
    with pytest.raises(ReplyError):
        replies(reader)


def test_bounds_against_a_hostile_server():
    reader = ReplyReader()
    with pytest.raises(ReplyError):
        reader.feed(b"250 " + b"x" * MAX_REPLY_LINE)
    reader = ReplyReader()
    reader.feed(b"250-x\r\n" * (MAX_REPLY_LINES + 1))
    with pytest.raises(ReplyError):
        replies(reader)


@given(st.lists(st.tuples(st.integers(200, 599), st.text("abc .-", max_size=20)), max_size=5))
def test_any_split_gives_the_same_replies(items):
    wire = b"".join(f"{code} {text}\r\n".encode() for code, text in items)
    whole = ReplyReader()
    whole.feed(wire)
    split = ReplyReader()
    got = []
    for i in range(0, len(wire), 3):
        split.feed(wire[i : i + 3])
        got += replies(split)
    assert got == replies(whole)
    assert [r.code for r in got] == [code for code, _ in items]


def test_commands():
    assert mail_command("alice@crepes.fr", ["SIZE=10", "BODY=8BITMIME"]) == (
        b"MAIL FROM:<alice@crepes.fr> SIZE=10 BODY=8BITMIME\r\n"
    )
    assert mail_command("", []) == b"MAIL FROM:<>\r\n"
    assert rcpt_command("bob@hamburger.edu", ["NOTIFY=NEVER"]) == (
        b"RCPT TO:<bob@hamburger.edu> NOTIFY=NEVER\r\n"
    )


def test_dot_stuffing():
    assert dot_stuff(b"Subject: x\r\n\r\n.hidden\r\n..two\r\nend\r\n") == (
        b"Subject: x\r\n\r\n..hidden\r\n...two\r\nend\r\n.\r\n"
    )
    assert dot_stuff(b".first") == b"..first\r\n.\r\n"


def test_bdat_frames_the_octets_unchanged():
    data = b"Subject: x\r\n\r\n.not stuffed\r\n"
    assert bdat(data) == f"BDAT {len(data)} LAST\r\n".encode() + data
