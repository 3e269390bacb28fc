"""Line framing: whole, byte by byte, with trailing data, and over the limit."""

import pytest

from mailstack.common.lines import LineBuffer, LineTooLong


def lines_of(buffer: LineBuffer) -> list[bytes]:
    out = []
    while (line := buffer.next_line()) is not None:
        out.append(line)
    return out


def test_whole_and_byte_by_byte_agree():
    data = b"EHLO crepes.fr\r\nMAIL FROM:<a@b>\r\nNOOP\n"
    whole = LineBuffer(100)
    whole.feed(data)
    expected = lines_of(whole)
    assert expected == [b"EHLO crepes.fr\r\n", b"MAIL FROM:<a@b>\r\n", b"NOOP\n"]
    single = LineBuffer(100)
    got = []
    for byte in data:
        single.feed(bytes([byte]))
        got += lines_of(single)
    assert got == expected


def test_trailing_partial_line_waits():
    buffer = LineBuffer(100)
    buffer.feed(b"NOOP\r\nQU")
    assert lines_of(buffer) == [b"NOOP\r\n"]
    assert buffer.pending == 2
    buffer.feed(b"IT\r\n")
    assert lines_of(buffer) == [b"QUIT\r\n"]


def test_over_long_line_raises_before_it_ends_then_resyncs():
    buffer = LineBuffer(10)
    buffer.feed(b"x" * 10)
    with pytest.raises(LineTooLong):
        buffer.next_line()
    assert buffer.pending == 0  # nothing of it is kept
    buffer.feed(b"yyyy\r\nNOOP\r\n")
    assert lines_of(buffer) == [b"NOOP\r\n"]


def test_take_exact_octets():
    buffer = LineBuffer(10)
    buffer.feed(b"abc")
    assert buffer.take(5) is None
    buffer.feed(b"de\r\nrest")
    assert buffer.take(5) == b"abcde"
    assert buffer.next_line() == b"\r\n"
    assert buffer.clear() == b"rest"


def test_a_per_line_limit_overrides_the_buffers_own():
    buffer = LineBuffer(1000)
    buffer.feed(b"x" * 20)
    with pytest.raises(LineTooLong) as raised:
        buffer.next_line(10)
    assert raised.value.head == b"x" * 20
    assert buffer.pending == 0
    buffer.feed(b"x" * 30 + b"\r\n" + b"y" * 20 + b"\r\n")
    # The rest of the long line is skipped, reported once per 10 octets of
    # the limit it was read under; the next line has the default limit.
    for _ in range(4):
        with pytest.raises(LineTooLong):
            buffer.next_line()
    assert lines_of(buffer) == [b"y" * 20 + b"\r\n"]


def test_the_buffer_is_read_in_place_between_lines():
    buffer = LineBuffer(100)
    buffer.feed(b"DATA\r\nhello\r\n.\r\n")
    assert buffer.next_line() == b"DATA\r\n"
    raw = buffer.buffer
    assert raw.find(b"\r\n.\r\n") == 5
    del raw[:10]
    assert buffer.pending == 0


def test_an_endless_line_is_reported_again_for_each_limits_worth():
    # Issue 15 item 10: octets trickled into one line that never ends count
    # as errors, so the protocol's error limit closes the session.
    buffer = LineBuffer(10)
    buffer.feed(b"x" * 10)
    with pytest.raises(LineTooLong):
        buffer.next_line()
    reported = 0
    for _ in range(25):
        buffer.feed(b"x")
        try:
            buffer.next_line()
        except LineTooLong:
            reported += 1
    assert reported == 2
    assert buffer.pending == 0
    buffer.feed(b"\r\nNOOP\r\n")
    assert lines_of(buffer) == [b"NOOP\r\n"]


@pytest.mark.parametrize("step", [1, 7, 64, 10_000])
def test_an_over_long_line_is_reported_as_often_however_it_arrives(step):
    data = b"x" * 95 + b"\r\nNOOP\r\n"
    buffer = LineBuffer(10)
    reported, lines = 0, []
    for i in range(0, len(data), step):
        buffer.feed(data[i : i + step])
        while True:
            try:
                line = buffer.next_line()
            except LineTooLong:
                reported += 1
                continue
            if line is None:
                break
            lines.append(line)
    # 95 octets before the line's end: one report per 10 of them.
    assert (reported, lines) == (9, [b"NOOP\r\n"])
