"""BDAT (RFC 3030 CHUNKING): exact-octet chunks, binary data, mixing and limits."""

from __future__ import annotations

import pytest
from smtp_driver import MODES, Session, run

from mailstack.limits import Limits
from mailstack.smtp.proto import Close, MessageComplete, State

START = b"EHLO crepes.fr\r\nMAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\n"
ACCEPTED = "250 2.0.0 Message accepted for delivery"


def messages(session: Session) -> list[bytes]:
    return [m.data for m in session.of(MessageComplete)]


@pytest.mark.parametrize("mode", MODES)
def test_chunks_are_joined(mode: str) -> None:
    s = run(START + b"BDAT 3\r\nabcBDAT 5\r\nd\r\n.\r" + b"BDAT 1 LAST\r\n\n", mode)
    assert messages(s) == [b"abcd\r\n.\r\n"]
    assert s.replies()[-3:] == [
        "250 2.0.0 3 octets received",
        "250 2.0.0 8 octets received",
        ACCEPTED,
    ]


@pytest.mark.parametrize("mode", MODES)
def test_binary_chunk_with_an_end_of_data_marker_inside(mode: str) -> None:
    chunk = b"x\r\n.\r\nQUIT\r\n\x00\xff\r\n"
    s = run(START + b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"NOOP\r\n", mode)
    assert messages(s) == [chunk]
    assert s.replies()[-2:] == [ACCEPTED, "250 2.0.0 OK"]
    assert s.p.state is State.READY


@pytest.mark.parametrize("mode", MODES)
def test_zero_size_last_chunk(mode: str) -> None:
    s = run(START + b"BDAT 4\r\nab\r\nBDAT 0 LAST\r\n", mode)
    assert messages(s) == [b"ab\r\n"]
    s = run(START + b"bdat 0 last\r\n", mode)
    assert messages(s) == [b""]


def test_message_complete_carries_the_transaction() -> None:
    s = Session().feed(START + b"BDAT 2 LAST\r\nhi")
    (message,) = s.of(MessageComplete)
    assert (message.mail_from, message.rcpt_to, message.esmtp) == (
        "alice@crepes.fr",
        ["bob@hamburger.edu"],
        True,
    )


@pytest.mark.parametrize("mode", MODES)
def test_data_after_bdat_is_refused(mode: str) -> None:
    s = run(START + b"BDAT 2\r\nabDATA\r\nRCPT TO:<bob@hamburger.edu>\r\nBDAT 2 LAST\r\ncd", mode)
    assert s.replies()[-3:] == [
        "503 5.5.1 DATA and BDAT cannot be mixed in one transaction",
        "503 5.5.1 RCPT not allowed after BDAT",
        ACCEPTED,
    ]
    assert messages(s) == [b"abcd"]


@pytest.mark.parametrize("mode", MODES)
def test_bdat_out_of_sequence_consumes_its_octets(mode: str) -> None:
    s = run(b"EHLO a\r\nBDAT 6\r\nNOOP\r\nNOOP\r\n", mode)
    assert s.replies()[-2:] == ["503 5.5.1 Need MAIL command first", "250 2.0.0 OK"]
    s = run(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nBDAT 6 LAST\r\nNOOP\r\nNOOP\r\n", mode)
    assert s.replies()[-2:] == ["554 5.5.1 No valid recipients", "250 2.0.0 OK"]
    assert messages(s) == []


@pytest.mark.parametrize("arg", [b"", b"x", b"-1", b"5 NOW", b"5 LAST MORE", b"\xd9\xa3"])
def test_bdat_without_a_valid_size_closes(arg: bytes) -> None:
    s = Session().feed(START + b"BDAT " + arg + b"\r\nNOOP\r\n")
    assert s.replies()[-1] == "501 5.5.4 Syntax: BDAT size [LAST]"
    assert s.closed == Close("BDAT without a valid size")


@pytest.mark.parametrize("mode", MODES)
def test_chunk_past_the_size_limit_fails_the_transaction(mode: str) -> None:
    limits = Limits(message_size=10)
    data = START + b"BDAT 6\r\nabcdefBDAT 6 LAST\r\nghijklBDAT 2 LAST\r\nxyNOOP\r\n"
    s = run(data, mode, limits=limits)
    assert s.replies()[-4:] == [
        "250 2.0.0 6 octets received",
        "552 5.3.4 Message size exceeds fixed maximum message size",
        "503 5.5.1 Need MAIL command first",
        "250 2.0.0 OK",
    ]
    assert messages(s) == []


def test_an_oversized_chunk_is_never_buffered() -> None:
    s = Session(limits=Limits(message_size=1000)).feed(START + b"BDAT 1000000 LAST\r\n")
    for _ in range(100):
        s.feed(b"z" * 10_000)
        assert s.p.buffered == 0
    assert s.replies()[-1] == "552 5.3.4 Message size exceeds fixed maximum message size"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chunk", [b"a\nb\r\n", b"a\rb\r\n", b"a\r\n.\n"], ids=repr)
def test_bare_cr_or_lf_in_bdat_refuses_the_message(mode: str, chunk: bytes) -> None:
    s = run(START + b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"NOOP\r\n", mode)
    assert messages(s) == []
    assert s.replies()[-2:] == [
        "554 5.6.0 Message contains bare CR or LF; lines must end with CRLF",
        "250 2.0.0 OK",
    ]


def test_crlf_split_across_chunks_is_not_bare() -> None:
    s = Session().feed(START + b"BDAT 2\r\na\rBDAT 1 LAST\r\n\n")
    assert messages(s) == [b"a\r\n"]
