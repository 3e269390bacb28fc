"""BURL (RFC 4468) in the protocol machine: offered after AUTH, fetched by
the server, mixed with BDAT, refusals and limits."""

from __future__ import annotations

import pytest
from smtp_driver import MODES, Session

from mailstack.limits import Limits
from mailstack.smtp.proto import BurlFetch, LocalProtocolError, MessageComplete, Reply, State

URLS = {
    "imap://h/INBOX/;UID=1;URLAUTH=submit+u:internal:" + "0" * 32: b"Subject: hi\r\n\r\n",
    "imap://h/INBOX/;UID=2;URLAUTH=submit+u:internal:" + "1" * 32: b"body\r\n",
    "imap://h/INBOX/;UID=3;URLAUTH=submit+u:internal:" + "2" * 32: b"bare\nLF\r\n",
}
UNVERIFIED = Reply(554, "5.7.0", "IMAP URL authorization failed")
START = b"EHLO crepes.fr\r\nMAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\n"
ACCEPTED = "250 2.0.0 Message accepted for delivery"


def fetcher(p, event):
    if isinstance(event, BurlFetch):
        data = URLS.get(event.url)
        if data is None:
            return UNVERIFIED
        p.burl_fetched(data)
        return None
    from smtp_driver import mx_policy

    return mx_policy(p, event)


def session(**options) -> Session:
    s = Session(fetcher, burl=True, **options)
    s.p.authenticated("alice@crepes.fr")
    return s


def url(n: int) -> bytes:
    return list(URLS)[n].encode()


def test_offered_only_after_login():
    s = Session(fetcher, burl=True)
    assert "250-BURL imap" not in s.feed(b"EHLO a\r\n").replies()
    assert s.feed(b"BURL " + url(0) + b"\r\n").replies() == ["500 5.5.1 Command unrecognized"]
    s.p.authenticated("alice@crepes.fr")
    assert "250-BURL imap" in s.feed(b"EHLO a\r\n").replies()
    mx = Session(fetcher)
    mx.p.authenticated("alice@crepes.fr")
    assert "250-BURL imap" not in mx.feed(b"EHLO a\r\n").replies()


@pytest.mark.parametrize("mode", MODES)
def test_burl_and_bdat_mix(mode):
    s = session()
    data = (
        START + b"BURL " + url(0) + b"\r\n" + b"BDAT 4\r\nhi\r\n" + b"BURL " + url(1) + b" LAST\r\n"
    )
    if mode == "bytes":
        s.feed(data, step=1)
    else:
        s.feed(data + (b"NOOP" if mode == "trailing" else b""))
    assert [m.data for m in s.of(MessageComplete)] == [b"Subject: hi\r\n\r\nhi\r\nbody\r\n"]
    assert s.replies()[-3:] == [
        "250 2.5.0 15 octets received",
        "250 2.0.0 19 octets received",
        ACCEPTED,
    ]


def test_burl_last_alone_and_streamed():
    for stream in (False, True):
        s = session(stream_data=stream)
        s.feed(START + b"BURL " + url(0) + b"\r\nBURL " + url(1) + b" last\r\n")
        (message,) = s.of(MessageComplete)
        assert message.streamed is stream
        assert message.data == (b"body\r\n" if stream else b"Subject: hi\r\n\r\nbody\r\n")
        assert s.replies()[-1] == ACCEPTED


def test_refusal_ends_the_transaction():
    s = session()
    s.feed(START + b"BURL imap://h/INBOX/;UID=9 LAST\r\n")
    assert s.replies()[-1] == "554 5.7.0 IMAP URL authorization failed"
    assert s.p.state is State.READY
    assert s.feed(b"BDAT 1 LAST\r\nx").replies() == ["503 5.5.1 Need MAIL command first"]
    s = session()
    s.feed(START + b"BURL " + url(0) + b"\r\nBURL imap://h/x\r\nBURL " + url(1) + b" LAST\r\n")
    assert s.replies()[-2:] == [
        "554 5.7.0 IMAP URL authorization failed",
        "503 5.5.1 Need MAIL command first",
    ]
    assert s.of(MessageComplete) == []


def test_sequence_and_syntax():
    s = session()
    s.feed(b"EHLO a\r\n").take()
    assert s.feed(b"BURL " + url(0) + b"\r\n").replies() == ["503 5.5.1 Need MAIL command first"]
    s.feed(b"MAIL FROM:<alice@crepes.fr>\r\n").take()
    assert s.feed(b"BURL " + url(0) + b"\r\n").replies() == ["554 5.5.1 No valid recipients"]
    s.feed(b"RCPT TO:<bob@hamburger.edu>\r\n").take()
    for bad in (b"BURL", b"BURL a b", b"BURL a LAST x"):
        assert s.feed(bad + b"\r\n").replies() == ["501 5.5.4 Syntax: BURL imap-url [LAST]"]
    s.feed(b"BURL " + url(0) + b"\r\n").take()
    assert s.feed(b"DATA\r\n").replies() == [
        "503 5.5.1 DATA and BDAT cannot be mixed in one transaction"
    ]


def test_size_limit_and_bare_line_ends():
    s = session(limits=Limits(message_size=20))
    s.feed(START + b"BURL " + url(0) + b"\r\nBURL " + url(0) + b" LAST\r\n")
    assert s.replies()[-1] == "552 5.3.4 Message size exceeds fixed maximum message size"
    assert s.p.state is State.READY and s.of(MessageComplete) == []
    s = session()
    s.feed(START + b"BURL " + url(2) + b" LAST\r\n")
    assert s.replies()[-1].startswith("554 5.6.0 Message contains bare CR or LF")
    assert s.of(MessageComplete) == []


def test_misuse_by_the_server_is_refused():
    s = session()
    with pytest.raises(LocalProtocolError):
        s.p.burl_fetched(b"x")
    s = Session(lambda p, e: None if isinstance(e, BurlFetch) else fetcher(p, e), burl=True)
    s.p.authenticated("alice@crepes.fr")
    s.feed(START + b"BURL " + url(0) + b"\r\n")
    assert isinstance(s.p.pending_event, BurlFetch)
    with pytest.raises(LocalProtocolError):
        s.p.respond(Reply(250, "2.0.0", "OK"))
