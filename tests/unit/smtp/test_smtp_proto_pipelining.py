"""RFC 2920 PIPELINING: commands wait while a decision is pending; replies keep order."""

from __future__ import annotations

import pytest

from mailstack.errors import SmtpError
from mailstack.smtp.proto import (
    LocalProtocolError,
    MailFrom,
    MessageComplete,
    NeedData,
    Pending,
    RcptTo,
    Reply,
    SmtpServerProtocol,
)

BATCH = (
    b"MAIL FROM:<alice@crepes.fr>\r\n"
    b"RCPT TO:<bob@hamburger.edu>\r\n"
    b"RCPT TO:<nobody@hamburger.edu>\r\n"
    b"DATA\r\n"
)


def greeted() -> SmtpServerProtocol:
    p = SmtpServerProtocol(hostname="hamburger.edu")
    p.receive_data(b"EHLO crepes.fr\r\n")
    assert p.next_event() == NeedData()
    p.data_to_send()
    return p


def test_one_batch_answered_late_and_in_order() -> None:
    p = greeted()
    p.receive_data(BATCH)
    assert p.next_event() == MailFrom("alice@crepes.fr", {})
    # Until the server answers, nothing else is parsed or answered.
    assert p.next_event() == Pending()
    assert p.next_event() == Pending()
    p.receive_data(b"Subject: pipelined\r\n\r\n")
    assert p.data_to_send() == b""
    p.respond(Reply.sender_ok("alice@crepes.fr"))
    assert p.next_event() == RcptTo("bob@hamburger.edu", {})
    assert p.next_event() == Pending()
    p.receive_data(b"body\r\n.\r\n")
    p.respond(Reply.recipient_ok("bob@hamburger.edu"))
    assert p.next_event() == RcptTo("nobody@hamburger.edu", {})
    p.respond(SmtpError(550, "5.1.1", "No such user here"))
    message = p.next_event()
    assert isinstance(message, MessageComplete)
    assert message.rcpt_to == ["bob@hamburger.edu"]
    assert message.data == b"Subject: pipelined\r\n\r\nbody\r\n"
    assert p.next_event() == Pending()
    assert p.data_to_send().decode().splitlines() == [
        "250 2.1.0 alice@crepes.fr... Sender ok",
        "250 2.1.5 bob@hamburger.edu... Recipient ok",
        "550 5.1.1 No such user here",
        '354 Enter mail, end with "." on a line by itself',
    ]
    p.receive_data(b"MAIL FROM:<>\r\n")
    p.respond(Reply.message_accepted())
    assert p.next_event() == MailFrom("", {})
    assert p.data_to_send() == b"250 2.0.0 Message accepted for delivery\r\n"


def test_refused_sender_leaves_the_pipelined_rcpts_out_of_sequence() -> None:
    p = greeted()
    p.receive_data(BATCH)
    assert isinstance(p.next_event(), MailFrom)
    p.respond(Reply(550, "5.7.1", "Sender refused"))
    assert p.next_event() == NeedData()
    assert p.data_to_send().decode().splitlines() == [
        "550 5.7.1 Sender refused",
        "503 5.5.1 Need MAIL command first",
        "503 5.5.1 Need MAIL command first",
        "503 5.5.1 Need MAIL command first",
    ]


def test_respond_without_a_pending_event_is_a_caller_error() -> None:
    p = greeted()
    with pytest.raises(LocalProtocolError):
        p.respond(Reply(250, "2.0.0", "OK"))
    with pytest.raises(LocalProtocolError):
        p.tls_started()
    with pytest.raises(LocalProtocolError):
        p.auth_challenge(b"")


def test_reply_codes_are_checked() -> None:
    with pytest.raises(ValueError):
        Reply(199, "2.0.0", "no")
    assert Reply(250, "", ("a", "b")).to_bytes() == b"250-a\r\n250 b\r\n"
    assert Reply(550, "5.1.1", ("a", "b")).to_bytes() == b"550-5.1.1 a\r\n550 5.1.1 b\r\n"
