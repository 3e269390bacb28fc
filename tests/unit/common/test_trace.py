import io

from mailstack.common.trace import BODY_LINES_SHOWN, PARTIAL_LINE_MAX, Tracer


def test_trace_prints_the_lecture_form_with_session_ids():
    out = io.StringIO()
    tracer = Tracer(enabled=True, out=out)
    first = tracer.session("smtp", "127.0.0.1:1")
    second = tracer.session("smtp", "127.0.0.1:2")
    first.server(b"220 hamburger.edu ESMTP mailstack\r\n")
    second.client("HELO crepes.fr")
    text = out.getvalue()
    assert "[smtp 1] S: 220 hamburger.edu ESMTP mailstack\n" in text
    assert "[smtp 2] C: HELO crepes.fr\n" in text


def test_bodies_are_elided():
    out = io.StringIO()
    trace = Tracer(enabled=True, out=out).session("smtp", "peer")
    trace.body(b"".join(b"line %d\r\n" % i for i in range(50)))
    text = out.getvalue()
    assert f"line {BODY_LINES_SHOWN - 1}" in text and f"line {BODY_LINES_SHOWN}\n" not in text
    assert f"({50 - BODY_LINES_SHOWN} more lines" in text


def test_disabled_trace_prints_nothing():
    out = io.StringIO()
    trace = Tracer(enabled=False, out=out).session("smtp", "peer")
    trace.server(b"220 x\r\n")
    trace.close()
    assert out.getvalue() == ""


def test_client_lines_are_whole_however_the_bytes_were_split():
    trace = Tracer(enabled=True, out=io.StringIO()).session("smtp", "peer")
    assert trace.client_lines(b"AUTH PL") == []
    assert trace.client_lines(b"AIN abc\r\nNO") == [b"AUTH PLAIN abc\r\n"]
    assert trace.client_lines(b"OP\r\n") == [b"NOOP\r\n"]


def test_an_over_long_client_line_is_dropped_unseen():
    trace = Tracer(enabled=True, out=io.StringIO()).session("smtp", "peer")
    assert trace.client_lines(b"x" * (PARTIAL_LINE_MAX + 1)) == []
    assert trace.client_lines(b"secret-tail\r\nQUIT\r\n") == [
        b"[over-long line elided]\n",
        b"QUIT\r\n",
    ]
