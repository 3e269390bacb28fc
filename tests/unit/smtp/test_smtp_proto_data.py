"""DATA: dot-unstuffing, the size limit, and SMTP smuggling (bare CR / bare LF)."""

from __future__ import annotations

import pytest
from smtp_driver import MODES, Session, run

from mailstack.limits import Limits
from mailstack.smtp.proto import MailFrom, MessageComplete, State

START = b"EHLO crepes.fr\r\nMAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\nDATA\r\n"
BARE = "554 5.6.0 Message contains bare CR or LF; lines must end with CRLF"


def messages(session: Session) -> list[bytes]:
    return [m.data for m in session.of(MessageComplete)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("body", "data"),
    [
        (b".\r\n", b""),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"...\r\n.\r\n", b"..\r\n"),
        (b"a\r\n..b\r\n..\r\n.\r\n", b"a\r\n.b\r\n.\r\n"),
        # RFC 5321 §4.5.2: a first "." is deleted even when the client did not stuff.
        (b".x\r\n.\r\n", b"x\r\n"),
        (b"a.\r\n.a\r\n.\r\n", b"a.\r\na\r\n"),
        (b"\r\n\r\n.\r\n", b"\r\n\r\n"),
        (b"8bit \xc3\xa9\x00\xff\r\n.\r\n", b"8bit \xc3\xa9\x00\xff\r\n"),
    ],
)
def test_end_of_data_and_unstuffing(mode: str, body: bytes, data: bytes) -> None:
    s = run(START + body + b"NOOP\r\n", mode)
    assert messages(s) == [data]
    assert s.replies()[-2:] == ["250 2.0.0 Message accepted for delivery", "250 2.0.0 OK"]


# SMTP smuggling: each fake end-of-data marker followed by a smuggled transaction.
FAKE_ENDS = [
    b"\n.\n",
    b"\r.\n",
    b"\n.\r\n",
    b"\r.\r\n",
    b"\r\n.\n",
    b"\r\n.\r",
    b"\n.\r",
    b"\r\n.\r\r\n",
]
SMUGGLED = (
    b"MAIL FROM:<admin@hamburger.edu>\r\n"
    b"RCPT TO:<alice@hamburger.edu>\r\n"
    b"DATA\r\n"
    b"Subject: smuggled\r\n"
    b"\r\n"
    b"smuggled\r\n"
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fake_end", FAKE_ENDS, ids=repr)
def test_smuggling_is_refused_and_the_session_stays_in_sync(mode: str, fake_end: bytes) -> None:
    data = START + b"Subject: hi\r\n\r\nhello" + fake_end + SMUGGLED + b".\r\nNOOP\r\n"
    s = run(data, mode)
    assert messages(s) == []
    assert [e.address for e in s.of(MailFrom)] == ["alice@crepes.fr"]
    assert s.replies()[-2:] == [BARE, "250 2.0.0 OK"]
    assert s.p.state is State.READY


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bare", [b"\n", b"\r", b"\r\r\n", b"\n\r"], ids=repr)
def test_any_bare_cr_or_lf_refuses_the_message(mode: str, bare: bytes) -> None:
    s = run(START + b"one" + bare + b"two\r\n.\r\nNOOP\r\n", mode)
    assert messages(s) == []
    assert s.replies()[-2:] == [BARE, "250 2.0.0 OK"]


def test_a_refused_message_allows_a_new_transaction() -> None:
    s = Session().feed(START + b"x\ny\r\n.\r\n" + START[16:] + b"ok\r\n.\r\n")
    assert messages(s) == [b"ok\r\n"]


@pytest.mark.parametrize("mode", MODES)
def test_message_at_the_size_limit_is_accepted_and_past_it_refused(mode: str) -> None:
    limits = Limits(message_size=100)
    exact = b"x" * 98 + b"\r\n"
    s = run(START + exact + b".\r\n", mode, limits=limits)
    assert messages(s) == [exact]
    s = run(START + b"x" + exact + b".\r\nNOOP\r\n", mode, limits=limits)
    assert messages(s) == []
    assert s.replies()[-2:] == [
        "552 5.3.4 Message size exceeds fixed maximum message size",
        "250 2.0.0 OK",
    ]


@pytest.mark.parametrize("piece", [1, 7, 100, 4096])
def test_an_oversized_message_is_never_buffered(piece: int) -> None:
    limits = Limits(message_size=1000)
    s = Session(limits=limits).feed(START)
    line = b"y" * 70 + b"\r\n"
    most = 0
    for _ in range(200):
        s.feed(line, step=piece)
        most = max(most, s.p.buffered)
    s.feed(b".\r\nNOOP\r\n")
    assert most <= 1000 + len(line) + 4
    assert s.replies()[-2:] == [
        "552 5.3.4 Message size exceeds fixed maximum message size",
        "250 2.0.0 OK",
    ]


def test_a_large_message_in_large_pieces() -> None:
    body = b"".join(b"line %06d .\r\n" % i for i in range(20_000))
    s = Session().feed(START)
    for i in range(0, len(body), 65536):
        s.feed(body[i : i + 65536])
    s.feed(b".\r\n")
    assert messages(s) == [body]


def test_dot_line_split_across_every_boundary() -> None:
    tail = b"a\r\n.\r\n"
    for cut in range(len(tail)):
        s = Session().feed(START + tail[:cut])
        assert messages(s) == []
        s.feed(tail[cut:])
        assert messages(s) == [b"a\r\n"], cut
