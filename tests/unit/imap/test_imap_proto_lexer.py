"""The command reader: framing, literals, limits; whole, byte by byte, random splits."""

from hypothesis import given, settings
from hypothesis import strategies as st

from mailstack.errors import ImapError
from mailstack.imap.proto.lexer import (
    CommandReader,
    FramingError,
    Hangup,
    NeedData,
    NeedLiteral,
    RawCommand,
)


def reader(**kw):
    return CommandReader(
        max_line=kw.get("max_line", 1000),
        max_literal=kw.get("max_literal", 100),
        max_command=kw.get("max_command", 1000),
    )


def drain(r):
    out = []
    while True:
        ev = r.next_event()
        if isinstance(ev, NeedData):
            return out
        out.append(ev)


STREAM = (
    b"a1 NOOP\r\n"
    b"a2 LOGIN {3}\r\nbob {6+}\r\nsecret\r\n"
    b"a3 APPEND INBOX (\\Seen) {5}\r\nhello\r\n"
    b"a4 LOGOUT\n"
)
EXPECTED = [
    RawCommand((b"a1 NOOP\r\n",)),
    NeedLiteral(3),
    RawCommand((b"a2 LOGIN {3}\r\n", b"bob", b" {6+}\r\n", b"secret", b"\r\n")),
    NeedLiteral(5),
    RawCommand((b"a3 APPEND INBOX (\\Seen) {5}\r\n", b"hello", b"\r\n")),
    RawCommand((b"a4 LOGOUT\n",)),
]


def test_whole_stream():
    r = reader()
    r.receive_data(STREAM)
    assert drain(r) == EXPECTED


def test_lines_and_literals():
    cmd = EXPECTED[2]
    assert cmd.raw == b"a2 LOGIN {3}\r\nbob {6+}\r\nsecret\r\n"
    assert cmd.lines == b"a2 LOGIN {3}\r\n {6+}\r\n\r\n"
    assert cmd.literals == (b"bob", b"secret")


def test_byte_by_byte():
    r = reader()
    out = []
    for b in STREAM:
        r.receive_data(bytes([b]))
        out += drain(r)
    assert out == EXPECTED
    assert r.pending == 0


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_arbitrary_splits_give_same_events(cuts):
    r = reader()
    out = []
    bounds = [0, *sorted(cuts), len(STREAM)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        if a < b:  # b"" would be the end of the stream
            r.receive_data(STREAM[a:b])
        out += drain(r)
    assert out == EXPECTED


def test_oversize_synchronizing_literal_refused_before_reading():
    r = reader(max_literal=10)
    r.receive_data(b"x1 APPEND INBOX {11}\r\n")
    ev = r.next_event()
    assert isinstance(ev, FramingError)
    assert ev.tag == "x1" and not ev.fatal and ev.error.code == "TOOBIG"
    # The client did not get '+', so what follows is a new command.
    r.receive_data(b"x2 NOOP\r\n")
    assert drain(r) == [RawCommand((b"x2 NOOP\r\n",))]


def test_oversize_nonsynchronizing_literal_is_fatal():
    r = reader(max_literal=10)
    r.receive_data(b"x1 APPEND INBOX {11+}\r\n01234567890\r\n")
    ev = r.next_event()
    assert isinstance(ev, FramingError) and ev.fatal and ev.error.bad


def test_line_too_long_is_fatal_even_without_newline():
    r = reader(max_line=20)
    r.receive_data(b"a1 " + b"x" * 30)
    ev = r.next_event()
    assert isinstance(ev, FramingError) and ev.fatal and ev.tag == "a1"


def test_command_total_bounded():
    r = reader(max_literal=100, max_command=120)
    r.receive_data(b"a1 APPEND X {100}\r\n")
    assert r.next_event() == NeedLiteral(100)
    r.receive_data(b"y" * 100 + b" {100}\r\n")
    ev = r.next_event()
    assert isinstance(ev, FramingError) and ev.tag == "a1"


def test_line_mode_for_continuations():
    r = reader(max_line=10)
    r.receive_data(b"DONE\r\nabc")
    assert r.next_line() == b"DONE\r\n"
    assert r.next_line() is None


@given(st.binary(max_size=300))
def test_random_bytes_give_only_protocol_events(data):
    r = reader(max_line=64, max_literal=32, max_command=128)
    if data:  # b"" would be the end of the stream
        r.receive_data(data)
    for _ in range(400):
        ev = r.next_event()
        assert isinstance(ev, (NeedData, NeedLiteral, RawCommand, FramingError))
        if isinstance(ev, NeedData) or (isinstance(ev, FramingError) and ev.fatal):
            break


def test_literals_outside_append_are_line_sized():
    r = reader(max_line=50, max_literal=1000)
    r.receive_data(b"a1 LOGIN {60}\r\n")
    ev = r.next_event()
    assert isinstance(ev, FramingError) and not ev.fatal
    r.receive_data(b"a2 APPEND INBOX {60}\r\n")
    assert r.next_event() == NeedLiteral(60)


def test_many_small_literals_outside_append_are_bounded():
    r = reader(max_line=50, max_literal=1000, max_command=10_000)
    r.receive_data(b"a1 SEARCH" + b" TEXT {40+}\r\n" + b"x" * 40)
    for _ in range(10):
        r.receive_data(b" TEXT {40+}\r\n" + b"x" * 40)
    events = [r.next_event() for _ in range(3)]
    assert any(isinstance(ev, FramingError) and ev.fatal for ev in events)


def test_line_mode_skips_the_rest_of_a_line_too_long():
    r = reader(max_line=10)
    r.receive_data(b"x" * 15 + b"\r\nDONE\r\n")
    try:
        r.next_line()
    except ImapError as exc:
        assert exc.code == "TOOBIG"
    else:
        raise AssertionError("no TOOBIG")
    assert r.next_line() == b"DONE\r\n"


def test_end_of_file_hangs_up_even_inside_a_literal():
    r = reader()
    r.receive_data(b"a1 NOOP\r\na2 LOGIN {3}\r\nbo")
    assert drain(r) == [RawCommand((b"a1 NOOP\r\n",)), NeedLiteral(3)]
    r.receive_data(b"")
    assert r.next_event() == Hangup(b"") and r.at_eof


def test_timed_out_is_the_autologout_bye():
    assert reader().timed_out() == Hangup(b"* BYE Autologout; idle for too long\r\n")


def test_plaintext_behind_starttls_is_dropped():
    r = reader()
    r.receive_data(b"a1 STARTTLS\r\na2 LOGIN {5+}\r\nma")
    assert drain(r) == [RawCommand((b"a1 STARTTLS\r\n",))]
    r.tls_started()
    assert r.pending == 0 and r.parts == ()
    r.receive_data(b"a3 NOOP\r\n")
    assert drain(r) == [RawCommand((b"a3 NOOP\r\n",))]
