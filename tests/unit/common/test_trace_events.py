"""The structured trace: one `TraceEvent` per thing a session says, rendered
as the lectures' S:/C: text and as JSON lines, from the one tracer."""

import io
import json

import pytest

from mailstack.common.trace import (
    CLIENT,
    CREDENTIALS_ELIDED,
    NOTE,
    SERVER,
    SessionTrace,
    TraceEvent,
    Tracer,
)

FIELDS = ["time", "host", "session", "protocol", "direction", "peer", "summary", "detail"]


def both() -> tuple[Tracer, io.StringIO, io.StringIO]:
    text, lines = io.StringIO(), io.StringIO()
    return Tracer(enabled=True, out=text, json_out=lines, host="hamburger.edu"), text, lines


def events(lines: io.StringIO) -> list[TraceEvent]:
    return [TraceEvent.from_json(line) for line in lines.getvalue().splitlines()]


def test_json_lines_hold_every_field_and_render_as_the_text():
    tracer, text, lines = both()
    trace = tracer.session("smtp", "127.0.0.1:4321")
    trace.server(b"220 hamburger.edu ESMTP mailstack\r\n")
    trace.client(b"EHLO crepes.fr\r\n")
    trace.server(b"250-hamburger.edu\r\n250 8BITMIME\r\n")
    trace.close()
    raw = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert all(list(item) == FIELDS for item in raw)
    got = events(lines)
    assert [e.direction for e in got] == [NOTE, SERVER, CLIENT, SERVER, NOTE]
    assert {e.host for e in got} == {"hamburger.edu"}
    assert {e.session for e in got} == {"smtp 1"} and {e.protocol for e in got} == {"smtp"}
    assert {e.peer for e in got} == {"127.0.0.1:4321"}
    assert got[2].summary == "EHLO crepes.fr"
    # A multi-line reply is one event; the text shows each of its lines.
    assert got[3].summary == got[3].detail == "250-hamburger.edu\n250 8BITMIME"
    assert "".join(e.text() for e in got) == text.getvalue()
    assert text.getvalue().splitlines() == [
        "[smtp 1] -- connection from 127.0.0.1:4321",
        "[smtp 1] S: 220 hamburger.edu ESMTP mailstack",
        "[smtp 1] C: EHLO crepes.fr",
        "[smtp 1] S: 250-hamburger.edu",
        "[smtp 1] S: 250 8BITMIME",
        "[smtp 1] -- closed",
    ]
    assert got[0].time <= got[-1].time


def test_detail_goes_to_json_only():
    tracer, text, lines = both()
    trace = tracer.session("dns/udp", "127.0.0.1:53")
    trace.client("query 4660 gaia.cs.umass.edu. IN A [rd]", detail="id 4660\n;QUESTION\n...")
    (event,) = events(lines)[1:]
    assert event.summary == "query 4660 gaia.cs.umass.edu. IN A [rd]"
    assert event.detail == "id 4660\n;QUESTION\n..."
    assert ";QUESTION" not in text.getvalue()
    assert text.getvalue().endswith("[dns/udp 1] C: query 4660 gaia.cs.umass.edu. IN A [rd]\n")


def test_json_alone_prints_no_text(capsys):
    lines = io.StringIO()
    tracer = Tracer(json_out=lines)
    assert tracer.enabled
    trace = tracer.session("pop3", "127.0.0.1:1", outbound=True)
    trace.client("USER bob")
    assert capsys.readouterr().out == ""
    assert [e.summary for e in events(lines)] == ["connection to 127.0.0.1:1", "USER bob"]
    assert events(lines)[0].host == ""


def test_credentials_stay_elided_in_json():
    tracer, _, lines = both()
    trace = tracer.session("submission", "127.0.0.1:2")
    trace.client(f"AUTH PLAIN {CREDENTIALS_ELIDED}")
    assert CREDENTIALS_ELIDED in lines.getvalue()


def test_bodies_are_elided_alike_in_both_forms():
    tracer, text, lines = both()
    tracer.session("smtp", "p").body(b"".join(b"line %d\r\n" % i for i in range(20)))
    assert "line 19" not in lines.getvalue() and "line 19" not in text.getvalue()
    assert "".join(e.text() for e in events(lines)) == text.getvalue()


def test_named_traces_are_not_numbered():
    tracer, text, lines = both()
    tracer.named("tcp welcoming").note("listen(16)")
    tracer.session("tcp", "127.0.0.1:9").note("recv(2048) = 0 bytes")
    assert text.getvalue().splitlines() == [
        "[tcp welcoming] -- listen(16)",
        "[tcp 1] -- connection from 127.0.0.1:9",
        "[tcp 1] -- recv(2048) = 0 bytes",
    ]
    assert events(lines)[0].protocol == "tcp" and events(lines)[0].session == "tcp welcoming"


def test_a_session_trace_on_a_stream_alone_still_prints_the_text():
    out = io.StringIO()
    SessionTrace(out, "[t 1]").server(b"+OK\r\n")
    assert out.getvalue() == "[t 1] S: +OK\n"


def test_disabled_tracer_writes_nothing_anywhere():
    tracer = Tracer()
    assert not tracer.enabled
    trace = tracer.session("imap", "p")
    trace.client("a LOGIN x y")
    trace.close()
    assert not trace.enabled and not tracer.named("udp server").enabled


@pytest.mark.parametrize("line", ["", "not json", "[1, 2]", '{"time": 1}', '{"bogus": 1}'])
def test_a_line_that_is_no_event_is_a_clear_error(line):
    with pytest.raises(ValueError, match="not a trace event"):
        TraceEvent.from_json(line)


def test_a_dns_message_detail_is_in_digs_format():
    import dns.message

    from mailstack.dns.server import describe, message_text

    wire = dns.message.make_query("gaia.cs.umass.edu", "A", id=4660).to_wire()
    assert describe(wire).startswith("query 4660 gaia.cs.umass.edu. IN A")
    detail = message_text(wire)
    assert detail.startswith("id 4660\n") and ";QUESTION\ngaia.cs.umass.edu. IN A" in detail
    assert message_text(b"\x01") == "unparsable message (1 octets)"
