"""DATA and BDAT read in pieces: what the machine holds stays bounded, and
the message is the same however the octets were cut, whether it keeps the
pieces or hands them up as MessageData (``stream_data``, the MX spools them).
"""

from __future__ import annotations

import random

import pytest
from smtp_driver import Session

from mailstack.limits import Limits
from mailstack.smtp import replies as R
from mailstack.smtp.proto import DATA_PIECE, MessageComplete, MessageData

ACCEPTED = "250 2.0.0 Message accepted for delivery"
TOO_BIG = R.TOO_BIG.wire.decode().strip()
ENVELOPE = b"EHLO crepes.fr\r\nMAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\n"


def _message(rng: random.Random, size: int) -> bytes:
    lines = []
    total = 0
    while total < size:
        line = rng.choice([b".", b"..", b"", b"x" * rng.randrange(200), b".dot"]) + b"\r\n"
        lines.append(line)
        total += len(line)
    return b"Subject: s\r\n\r\n" + b"".join(lines)


def _stuffed(message: bytes) -> bytes:
    return (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:]


def _received(session: Session) -> list[bytes]:
    """Each delivered message, MessageData pieces and MessageComplete joined."""
    messages, pieces = [], []
    for event in session.events:
        if isinstance(event, MessageData):
            if event.first:
                pieces = []
            pieces.append(event.data)
        elif isinstance(event, MessageComplete):
            messages.append(b"".join(pieces) + event.data)
            pieces = []
    return messages


@pytest.mark.parametrize("stream", [False, True])
def test_a_message_cut_anywhere_arrives_whole(stream):
    rng = random.Random(5321)
    for size in (10, 3 * DATA_PIECE, 5 * DATA_PIECE + 17):
        message = _message(rng, size)
        for step in (1 + rng.randrange(7), 4093, 65536, 300_000):
            if step < 10 and size > DATA_PIECE:
                continue
            s = Session(stream_data=stream)
            s.feed(ENVELOPE + b"DATA\r\n" + _stuffed(message) + b".\r\nNOOP\r\n", step=step)
            assert _received(s) == [message], (size, step)
            assert s.take().splitlines()[-2:] == [ACCEPTED, "250 2.0.0 OK"]
            data = s.of(MessageData)
            assert bool(data) == (stream and DATA_PIECE < size and step < size)
            assert [d.first for d in data] == [True, *[False] * (len(data) - 1)][: len(data)]


def test_the_machine_holds_a_bounded_amount_while_it_streams():
    s = Session(stream_data=True)
    s.feed(ENVELOPE + b"DATA\r\n")
    most = 0
    for _ in range(300):
        s.feed(b"y" * 998 + b"\r\n" * 1)
        most = max(most, s.p.buffered)
    s.feed(b".\r\n")
    assert most < DATA_PIECE + 1000
    assert len(b"".join(_received(s))) == 300 * 1000


@pytest.mark.parametrize("bad", [b"\n", b"\r", b"\n.\n", b"\r.\r\n"])
def test_a_bare_line_end_anywhere_is_refused_whole(bad):
    rng = random.Random(2)
    message = _message(rng, 2 * DATA_PIECE)
    for at in (0, 1, DATA_PIECE - 3, DATA_PIECE - 2, DATA_PIECE - 1, DATA_PIECE, len(message) // 2):
        at = message.index(b"\r\n", at) + 2  # at a line start
        broken = message[:at] + b"x" + bad + b"y\r\n" + message[at:]
        for step in (DATA_PIECE // 2 - 1, DATA_PIECE):
            s = Session(stream_data=True)
            s.feed(ENVELOPE + b"DATA\r\n" + _stuffed(broken) + b".\r\nNOOP\r\n", step=step)
            assert s.of(MessageComplete) == [], (bad, at, step)
            assert "554 5.6.0 Message contains bare CR or LF" in s.take()


def test_a_message_past_the_limit_is_refused_and_never_kept():
    limits = Limits(message_size=3 * DATA_PIECE)
    s = Session(stream_data=True, limits=limits)
    s.feed(ENVELOPE + b"DATA\r\n")
    most = 0
    for _ in range(8):
        s.feed(b"z" * (DATA_PIECE - 2) + b"\r\n", step=10_000)
        most = max(most, s.p.buffered)
    s.feed(b".\r\nNOOP\r\n")
    assert most < DATA_PIECE + 10_000
    assert s.of(MessageComplete) == []
    assert sum(len(d.data) for d in s.of(MessageData)) <= limits.message_size
    assert s.take().splitlines()[-2:] == [TOO_BIG, "250 2.0.0 OK"]


@pytest.mark.parametrize("stream", [False, True])
def test_bdat_chunks_cut_anywhere(stream):
    rng = random.Random(3030)
    message = _message(rng, 3 * DATA_PIECE)
    half = len(message) // 2 + 1  # a CRLF may be split between the chunks
    wire = (ENVELOPE + b"BDAT %d\r\n" % half + message[:half]
            + b"BDAT %d LAST\r\n" % (len(message) - half) + message[half:])
    for step in (1000, 65536):
        s = Session(stream_data=stream)
        s.feed(wire, step=step)
        assert _received(s) == [message]
        assert bool(s.of(MessageData)) == stream


def test_bdat_with_a_bare_cr_at_a_chunk_end_is_refused():
    message = b"Subject: s\r\n\r\nline\r"
    wire = ENVELOPE + b"BDAT %d\r\n" % len(message) + message + b"BDAT 3 LAST\r\nx\r\n"
    s = Session(stream_data=True)
    s.feed(wire)
    assert s.of(MessageComplete) == []
    assert "554 5.6.0 Message contains bare CR or LF" in s.take()
