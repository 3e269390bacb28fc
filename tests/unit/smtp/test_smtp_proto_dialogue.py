"""Whole sessions: the lecture's HELO dialogue, an EHLO session, the simple commands."""

from __future__ import annotations

import pytest
from smtp_driver import MODES, Session, run, transcript

from mailstack.limits import Limits
from mailstack.smtp.proto import ALLOWED, MessageComplete, Quit, RcptTo, State

LECTURE = """
S: 220 hamburger.edu ESMTP mailstack
C: HELO crepes.fr
S: 250 hamburger.edu Hello crepes.fr, pleased to meet you
C: MAIL FROM: <alice@crepes.fr>
S: 250 2.1.0 alice@crepes.fr... Sender ok
C: RCPT TO: <bob@hamburger.edu>
S: 250 2.1.5 bob@hamburger.edu... Recipient ok
C: DATA
S: 354 Enter mail, end with "." on a line by itself
C: Do you like ketchup?
C: How about pickles?
C: .
S: 250 2.0.0 Message accepted for delivery
C: QUIT
S: 221 2.0.0 hamburger.edu closing connection
"""


@pytest.mark.parametrize("mode", ["whole", "bytes"])
def test_lecture_dialogue(mode: str) -> None:
    session = transcript(LECTURE, mode)
    (message,) = session.of(MessageComplete)
    assert message.mail_from == "alice@crepes.fr"
    assert message.rcpt_to == ["bob@hamburger.edu"]
    assert message.data == b"Do you like ketchup?\r\nHow about pickles?\r\n"
    assert message.helo == "crepes.fr"
    assert message.esmtp is False
    assert session.of(Quit) == [Quit()]
    assert session.p.state is State.CLOSED


EHLO_SESSION = """
S: 220 hamburger.edu ESMTP mailstack
C: EHLO crepes.fr
S: 250-hamburger.edu Hello crepes.fr, pleased to meet you
S: 250-PIPELINING
S: 250-SIZE 1000000
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250-CHUNKING
S: 250-ENHANCEDSTATUSCODES
S: 250-DSN
S: 250-STARTTLS
S: 250 HELP
C: MAIL FROM:<alice@crepes.fr> SIZE=120 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1
S: 250 2.1.0 alice@crepes.fr... Sender ok
C: RCPT TO:<bob@hamburger.edu> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@hamburger.edu
S: 250 2.1.5 bob@hamburger.edu... Recipient ok
C: RCPT TO:<carol@hamburger.edu>
S: 550 5.1.1 No such user here
C: RCPT TO:<dave@umass.edu>
S: 550 5.7.1 Relaying denied
C: RCPT TO:<alice@hamburger.edu>
S: 250 2.1.5 alice@hamburger.edu... Recipient ok
C: DATA
S: 354 Enter mail, end with "." on a line by itself
C: Subject: ketchup
C:
C: ..and pickles
C: .
S: 250 2.0.0 Message accepted for delivery
C: MAIL FROM:<>
S: 250 2.1.0 <>... Sender ok
C: RCPT TO:<bob@hamburger.edu>
S: 250 2.1.5 bob@hamburger.edu... Recipient ok
C: RSET
S: 250 2.0.0 Reset state
C: NOOP
S: 250 2.0.0 OK
C: VRFY bob
S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
C: HELP
S: 214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH
S: 214 2.0.0 See RFC 5321
C: QUIT
S: 221 2.0.0 hamburger.edu closing connection
"""


@pytest.mark.parametrize("mode", ["whole", "bytes"])
def test_ehlo_session(mode: str) -> None:
    session = transcript(
        EHLO_SESSION, mode, tls_available=True, limits=Limits(message_size=1_000_000)
    )
    (message,) = session.of(MessageComplete)
    assert message.rcpt_to == ["bob@hamburger.edu", "alice@hamburger.edu"]
    assert message.rcpt_params == [
        {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;bob@hamburger.edu"},
        {},
    ]
    assert message.mail_params == {
        "SIZE": "120",
        "BODY": "8BITMIME",
        "RET": "HDRS",
        "ENVID": "QQ+2B1",
    }
    assert message.data == b"Subject: ketchup\r\n\r\n.and pickles\r\n"
    assert message.esmtp is True


SESSION = (
    b"EHLO crepes.fr\r\n"
    b"MAIL FROM:<alice@crepes.fr>\r\n"
    b"RCPT TO:<bob@hamburger.edu>\r\n"
    b"DATA\r\n"
    b".leading dot\r\n"
    b"line\r\n"
    b".\r\n"
    b"MAIL FROM:<alice@crepes.fr>\r\n"
    b"RCPT TO:<alice@hamburger.edu>\r\n"
    b"BDAT 5 LAST\r\n"
    b"hi\r\n."
    b"QUIT\r\n"
)


def test_every_mode_gives_the_same_events_and_replies() -> None:
    results = [run(SESSION, mode) for mode in MODES]
    whole = results[0]
    assert [m.data for m in whole.of(MessageComplete)] == [b"leading dot\r\nline\r\n", b"hi\r\n."]
    for other in results[1:]:
        assert other.events == whole.events
        assert other.out == whole.out


def test_ehlo_in_a_transaction_resets_it() -> None:
    s = Session().feed(
        b"EHLO a\r\nMAIL FROM:<x@y.z>\r\nRCPT TO:<bob@hamburger.edu>\r\n"
        b"EHLO b\r\nDATA\r\nRCPT TO:<bob@hamburger.edu>\r\n"
    )
    lines = s.replies()
    assert lines[-2] == "503 5.5.1 Need MAIL command first"
    assert lines[-1] == "503 5.5.1 Need MAIL command first"
    assert s.p.helo == "b"
    assert s.p.state is State.READY


def test_rset_before_helo_keeps_the_session_unintroduced() -> None:
    s = Session().feed(b"RSET\r\nMAIL FROM:<a@b.c>\r\n")
    assert s.replies()[-2:] == ["250 2.0.0 Reset state", "503 5.5.1 Send EHLO or HELO first"]


def test_commands_are_case_insensitive_and_accept_bare_lf() -> None:
    s = Session().feed(b"ehlo crepes.fr\nmail from:<a@crepes.fr>\nrcpt to:<Bob@hamburger.edu>\n")
    assert s.replies()[-1] == "250 2.1.5 Bob@hamburger.edu... Recipient ok"


def test_postmaster_without_domain_is_accepted() -> None:
    s = Session().feed(b"EHLO a\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n")
    assert s.of(RcptTo) == [RcptTo("Postmaster", {})]


def test_state_table_names_every_command_state() -> None:
    assert set(ALLOWED) == {State.INIT, State.READY, State.MAIL, State.RCPT, State.BDAT}
    assert "DATA" in ALLOWED[State.RCPT] and "DATA" not in ALLOWED[State.MAIL]


def test_eof_closes_without_a_reply() -> None:
    s = Session().feed(
        b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@hamburger.edu>\r\nDATA\r\nhalf"
    )
    s.take()
    s.eof()
    assert s.closed is not None and s.closed.reason == "connection closed by peer"
    assert s.take() == ""
    assert s.of(MessageComplete) == []


def test_pipelined_quit_is_answered_before_eof_close() -> None:
    s = Session().feed(b"NOOP\r\nQUIT\r\n").eof()
    assert s.replies()[-2:] == ["250 2.0.0 OK", "221 2.0.0 hamburger.edu closing connection"]
    assert s.of(Quit) == [Quit()]
