"""Every reply the machine gives by itself for errors and limits, crossed once each."""

from __future__ import annotations

import pytest
from smtp_driver import MODES, Session, run

from mailstack.limits import Limits
from mailstack.smtp.proto import Close, MailFrom, RcptTo, State

EHLO = b"EHLO crepes.fr\r\n"
MAIL = b"MAIL FROM:<alice@crepes.fr>\r\n"
RCPT = b"RCPT TO:<bob@hamburger.edu>\r\n"


def last_reply(data: bytes, **options: object) -> str:
    return Session(**options).feed(data).replies()[-1]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "reply"),
    [
        (b"FOO\r\n", "500 5.5.1 Command unrecognized"),
        (b"\r\n", "500 5.5.1 Command unrecognized"),
        (b"NOOP \xff\r\n", "500 5.5.2 Syntax error: command is not valid UTF-8"),
        (b"EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname"),
        (b"HELO \r\n", "501 5.5.4 Syntax: EHLO hostname"),
        (b"VRFY\r\n", "501 5.5.4 Syntax: VRFY address"),
        (b"MAIL FROM:<a@b.c>\r\n", "503 5.5.1 Send EHLO or HELO first"),
        (b"STARTTLS\r\n", "503 5.5.1 Send EHLO or HELO first"),
        (EHLO + b"RCPT TO:<bob@hamburger.edu>\r\n", "503 5.5.1 Need MAIL command first"),
        (EHLO + b"DATA\r\n", "503 5.5.1 Need MAIL command first"),
        (EHLO + MAIL + MAIL, "503 5.5.1 Sender already specified"),
        (EHLO + MAIL + b"STARTTLS\r\n", "503 5.5.1 Not allowed during a mail transaction"),
        (EHLO + b"MAIL TO:<a@b.c>\r\n", "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"),
        (EHLO + b"MAIL FROM:<a@@b>\r\n", "501 5.1.7 Bad sender address syntax"),
        (EHLO + b"MAIL FROM:<a@b.c\r\n", "501 5.1.7 Bad sender address syntax"),
        (
            EHLO + MAIL + b"RCPT FROM:<a@b.c>\r\n",
            "501 5.5.4 Syntax: RCPT TO:<address> [parameters]",
        ),
        (EHLO + MAIL + b"RCPT TO:<>\r\n", "501 5.1.3 Bad recipient address syntax"),
        (EHLO + MAIL + b"RCPT TO:<bob@-x.edu>\r\n", "501 5.1.3 Bad recipient address syntax"),
        (
            EHLO + b"MAIL FROM:<a@b.c> FOO=1\r\n",
            "555 5.5.4 Parameter not recognized or not implemented",
        ),
        (
            EHLO + b"MAIL FROM:<a@b.c> BODY=BINARYMIME\r\n",
            "555 5.5.4 Parameter not recognized or not implemented",
        ),
        (EHLO + b"MAIL FROM:<a@b.c> SIZE=x\r\n", "501 5.5.4 Syntax error in parameters"),
        (EHLO + b"MAIL FROM:<a@b.c> SIZE=1 SIZE=1\r\n", "501 5.5.4 Syntax error in parameters"),
        (EHLO + b"MAIL FROM:<a@b.c> SMTPUTF8=yes\r\n", "501 5.5.4 Syntax error in parameters"),
        (EHLO + b"MAIL FROM:<a@b.c> RET=ALL\r\n", "501 5.5.4 Syntax error in parameters"),
        (EHLO + b"MAIL FROM:<a@b.c> ENVID=a+b\r\n", "501 5.5.4 Syntax error in parameters"),
        (
            EHLO + b"MAIL FROM:<a@b.c> AUTH=<>\r\n",
            "555 5.5.4 Parameter not recognized or not implemented",
        ),
        (
            EHLO + MAIL + b"RCPT TO:<bob@hamburger.edu> NOTIFY=NEVER,DELAY\r\n",
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            EHLO + MAIL + b"RCPT TO:<bob@hamburger.edu> NOTIFY=SOMETIMES\r\n",
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            EHLO + MAIL + b"RCPT TO:<bob@hamburger.edu> ORCPT=bob\r\n",
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            EHLO + MAIL + b"RCPT TO:<bob@hamburger.edu> SIZE=1\r\n",
            "555 5.5.4 Parameter not recognized or not implemented",
        ),
        (EHLO + MAIL + b"DATA\r\n", "554 5.5.1 No valid recipients"),
        (
            EHLO + MAIL + b"RCPT TO:<carol@hamburger.edu>\r\nDATA\r\n",
            "554 5.5.1 No valid recipients",
        ),
        (EHLO + MAIL + RCPT + b"DATA now\r\n", "501 5.5.4 Syntax: no arguments allowed"),
        (
            EHLO + b"MAIL FROM:<a@b.c> SIZE=1000001\r\n",
            "552 5.3.4 Message size exceeds fixed maximum message size",
        ),
        (
            EHLO + b"MAIL FROM:<z\xc3\xab@b.c>\r\n",
            "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter",
        ),
        (
            EHLO + MAIL + b"RCPT TO:<z\xc3\xab@hamburger.edu>\r\n",
            "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter",
        ),
        (EHLO + b"AUTH PLAIN\r\n", "502 5.5.1 Command not implemented"),
        (EHLO + b"STARTTLS\r\n", "454 4.7.0 TLS not available"),
    ],
)
def test_refusal(data: bytes, reply: str) -> None:
    assert last_reply(data, limits=Limits(message_size=1_000_000)) == reply


def test_refusals_do_not_move_the_state() -> None:
    s = Session().feed(EHLO + MAIL + b"RCPT TO:<>\r\n" + b"DATA\r\n")
    assert s.p.state is State.MAIL
    assert s.replies()[-1] == "554 5.5.1 No valid recipients"
    s.feed(RCPT + b"DATA\r\n")
    assert s.replies()[-1].startswith("354 ")


def test_smtputf8_addresses_with_the_parameter() -> None:
    s = Session().feed(
        EHLO + "MAIL FROM:<zoë@crêpes.fr> SMTPUTF8\r\nRCPT TO:<zoë@hamburger.edu>\r\n".encode()
    )
    assert s.replies()[-1] == "250 2.1.5 zoë@hamburger.edu... Recipient ok"
    assert s.of(MailFrom)[0] == MailFrom("zoë@crêpes.fr", {"SMTPUTF8": None})


@pytest.mark.parametrize("mode", MODES)
def test_line_too_long_is_answered_and_skipped(mode: str) -> None:
    limits = Limits(smtp_command_line=64)
    long = b"NOOP " + b"x" * 100 + b"\r\n"
    s = run(EHLO + long + b"NOOP\r\n", mode, limits=limits)
    assert s.replies()[-2:] == ["500 5.5.2 Line too long", "250 2.0.0 OK"]


def test_line_limit_counts_the_crlf() -> None:
    limits = Limits(smtp_command_line=10)
    assert last_reply(b"NOOP 1234\r\n", limits=limits) == "500 5.5.2 Line too long"
    assert last_reply(b"NOOP 123\r\n", limits=limits) == "250 2.0.0 OK"


def test_a_line_too_long_is_never_buffered_whole() -> None:
    s = Session(limits=Limits(smtp_command_line=4096))
    s.feed(b"NOOP " + b"x" * 10_000)
    assert s.p.buffered == 0
    assert s.replies()[-1] == "500 5.5.2 Line too long"
    s.feed(b"x" * 10_000 + b"\r\nNOOP\r\n")
    assert s.replies() == ["250 2.0.0 OK"]


def test_octets_of_an_endless_line_count_as_errors() -> None:
    # Issue 15 item 10: each further limit's worth of one over-long line is
    # another error, so trickling one endless line ends in 421.
    s = Session(limits=Limits(smtp_command_line=64, errors_per_session=3))
    s.feed(b"NOOP " + b"x" * 100)
    assert s.closed is None
    s.feed(b"x" * 100, step=1)
    assert s.closed is not None
    assert s.replies() == [
        "220 hamburger.edu ESMTP mailstack",
        "500 5.5.2 Line too long",
        "421 4.7.0 hamburger.edu Too many errors, closing connection",
    ]


def test_too_many_recipients() -> None:
    rcpts = b"".join(b"RCPT TO:<bob@hamburger.edu>\r\n" for _ in range(4))
    s = Session(limits=Limits(recipients=3)).feed(EHLO + MAIL + rcpts)
    assert s.replies()[-2:] == [
        "250 2.1.5 bob@hamburger.edu... Recipient ok",
        "452 4.5.3 Too many recipients",
    ]
    assert len(s.of(RcptTo)) == 3
    assert s.closed is None


def test_refused_recipients_do_not_count_toward_the_limit() -> None:
    rcpts = b"RCPT TO:<carol@hamburger.edu>\r\n" * 5 + RCPT
    s = Session(limits=Limits(recipients=1, errors_per_session=3)).feed(EHLO + MAIL + rcpts)
    assert s.replies()[-1] == "250 2.1.5 bob@hamburger.edu... Recipient ok"


@pytest.mark.parametrize("mode", MODES)
def test_too_many_errors_closes_with_421(mode: str) -> None:
    s = run(EHLO + b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n", mode, limits=Limits(errors_per_session=3))
    assert s.replies()[-2:] == [
        "500 5.5.1 Command unrecognized",
        "421 4.7.0 hamburger.edu Too many errors, closing connection",
    ]
    assert s.closed == Close("too many errors")
    assert s.p.next_event() == Close("too many errors")


def test_too_many_commands_before_mail() -> None:
    s = Session(limits=Limits(commands_before_mail=3)).feed(EHLO + b"NOOP\r\nNOOP\r\nNOOP\r\n")
    assert s.replies()[-2:] == [
        "250 2.0.0 OK",
        "421 4.7.0 hamburger.edu Too many commands, closing connection",
    ]
    assert s.closed == Close("too many commands before MAIL")


def test_an_accepted_mail_resets_the_command_count() -> None:
    s = Session(limits=Limits(commands_before_mail=3))
    s.feed(EHLO + b"NOOP\r\n" + MAIL + b"RSET\r\nNOOP\r\n" + MAIL + b"RSET\r\nNOOP\r\nNOOP\r\n")
    assert s.closed is None
    assert s.replies()[-1] == "250 2.0.0 OK"


def test_data_after_close_is_ignored() -> None:
    s = Session(limits=Limits(errors_per_session=1)).feed(b"FOO\r\n")
    assert s.closed is not None
    s.take()
    s.feed(b"NOOP\r\n")
    assert s.take() == ""


def test_dsn_off_hides_and_refuses_the_dsn_parameters() -> None:
    s = Session(dsn=False).feed(EHLO)
    assert "250-DSN" not in s.replies()
    s.feed(b"MAIL FROM:<a@b.c> RET=FULL\r\n")
    assert s.replies() == ["555 5.5.4 Parameter not recognized or not implemented"]
    s.feed(MAIL + b"RCPT TO:<bob@hamburger.edu> NOTIFY=NEVER\r\n")
    assert s.replies()[-1] == "555 5.5.4 Parameter not recognized or not implemented"


def test_size_at_the_limit_is_accepted() -> None:
    s = Session(limits=Limits(message_size=500)).feed(EHLO + b"MAIL FROM:<a@b.c> SIZE=500\r\n")
    assert s.replies()[-1] == "250 2.1.0 a@b.c... Sender ok"
    assert "250-SIZE 500" in Session(limits=Limits(message_size=500)).feed(EHLO).replies()


@pytest.mark.parametrize("orcpt", ["rfc822;bob@hamburger.edu", "utf-8;zo\\x{EB}@hamburger.edu",
                                   "x-local;bob"])
def test_orcpt_address_types_are_atoms(orcpt: str) -> None:
    """RFC 3461 §4.2: addr-type is an atom, "utf-8" among them (RFC 6533)."""
    data = EHLO + MAIL + f"RCPT TO:<bob@hamburger.edu> ORCPT={orcpt}\r\n".encode()
    assert last_reply(data).startswith("250")
