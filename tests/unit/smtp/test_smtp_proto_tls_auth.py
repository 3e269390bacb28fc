"""STARTTLS (RFC 3207) and the AUTH exchange (RFC 4954) driven with common.sasl."""

from __future__ import annotations

import base64

import pytest
from smtp_driver import Session, mx_policy

from mailstack.common import sasl
from mailstack.smtp.proto import (
    AuthRequest,
    AuthResponse,
    MailFrom,
    MessageComplete,
    Reply,
    SmtpServerProtocol,
    StartTls,
    State,
)


def test_starttls_discards_what_was_pipelined_after_it() -> None:
    s = Session(tls_available=True, start_tls=False)
    s.feed(b"EHLO a\r\nSTARTTLS\r\nMAIL FROM:<evil@crepes.fr>\r\n")
    assert s.of(StartTls) == [StartTls()]
    assert s.replies()[-1] == "220 2.0.0 Ready to start TLS"
    # Bytes that arrive in clear before the handshake are dropped too.
    s.feed(b"RCPT TO:<bob@hamburger.edu>\r\n")
    assert s.p.state is State.TLS
    s.p.tls_started()
    s.feed(b"EHLO a\r\nMAIL FROM:<alice@crepes.fr>\r\n")
    assert [e.address for e in s.of(MailFrom)] == ["alice@crepes.fr"]
    lines = s.replies()
    assert "250-STARTTLS" not in lines
    assert lines[-1] == "250 2.1.0 alice@crepes.fr... Sender ok"


def test_tls_started_forgets_the_helo() -> None:
    s = Session(tls_available=True).feed(b"EHLO a\r\nSTARTTLS\r\nMAIL FROM:<a@b.c>\r\n")
    s.feed(b"MAIL FROM:<a@b.c>\r\n")
    assert s.replies()[-1] == "503 5.5.1 Send EHLO or HELO first"
    assert s.p.tls_active
    s.feed(b"EHLO b\r\nSTARTTLS\r\n")
    assert s.replies()[-1] == "503 5.5.1 TLS already active"
    s.feed(b"MAIL FROM:<a@b.c>\r\nRCPT TO:<bob@hamburger.edu>\r\nBDAT 1 LAST\r\nx")
    (message,) = s.of(MessageComplete)
    assert message.tls and message.helo == "b"


def test_starttls_with_an_argument() -> None:
    s = Session(tls_available=True).feed(b"EHLO a\r\nSTARTTLS now\r\n")
    assert s.replies()[-1] == "501 5.5.4 Syntax: no arguments allowed"


USERS = {"bob@hamburger.edu": "ketchup"}


class SaslServer:
    """What smtp/server.py does with AuthRequest/AuthResponse."""

    def __init__(self) -> None:
        self.mechanism: sasl.Mechanism | None = None

    def __call__(self, p: SmtpServerProtocol, event: object) -> Reply | None:
        try:
            if isinstance(event, AuthRequest):
                self.mechanism = sasl.new_mechanism(event.mechanism)
                assert self.mechanism is not None
                step = self.mechanism.initial(event.initial)
            elif isinstance(event, AuthResponse):
                assert self.mechanism is not None
                step = self.mechanism.step(event.data)
            else:
                return mx_policy(p, event)
        except sasl.SaslError:
            return Reply(501, "5.5.2", "Malformed SASL message")
        if isinstance(step, sasl.Challenge):
            p.auth_challenge(step.data)
            return None
        if USERS.get(step.authcid) == step.password and step.acts_as_self():
            p.authenticated(step.authcid)
            return Reply.auth_succeeded()
        return Reply(535, "5.7.8", "Authentication credentials invalid")


def submission(**options: object) -> Session:
    options.setdefault("auth_mechanisms", ("PLAIN", "LOGIN"))
    options.setdefault("require_auth", True)
    options.setdefault("submission", True)
    return Session(SaslServer(), **options)  # type: ignore[arg-type]


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


def test_auth_is_offered_only_under_tls() -> None:
    s = submission(tls_available=True).feed(b"EHLO a\r\n")
    lines = s.replies()
    assert "250-STARTTLS" in lines and not any("AUTH" in line for line in lines)
    s.feed(b"AUTH PLAIN " + b64("\0bob@hamburger.edu\0ketchup") + b"\r\n")
    assert s.replies()[-1] == (
        "538 5.7.11 Encryption required for requested authentication mechanism"
    )
    s.feed(b"STARTTLS\r\n").feed(b"EHLO a\r\n")
    assert "250-AUTH PLAIN LOGIN" in s.replies()


def test_auth_plain_with_initial_response_then_mail() -> None:
    s = submission(tls_active=True)
    s.feed(b"EHLO a\r\nMAIL FROM:<bob@hamburger.edu>\r\n")
    assert s.replies()[-1] == "530 5.7.0 Authentication required"
    s.feed(b"AUTH PLAIN " + b64("\0bob@hamburger.edu\0ketchup") + b"\r\n")
    assert s.replies() == ["235 2.7.0 Authentication successful"]
    assert s.p.auth_identity == "bob@hamburger.edu"
    s.feed(b"MAIL FROM:<bob@hamburger.edu> AUTH=<>\r\nRCPT TO:<alice@hamburger.edu>\r\n")
    s.feed(b"DATA\r\nhi\r\n.\r\nAUTH PLAIN =\r\n")
    (message,) = s.of(MessageComplete)
    assert message.auth_identity == "bob@hamburger.edu"
    assert s.replies()[-1] == "503 5.5.1 Already authenticated"


def test_auth_login_with_challenges() -> None:
    s = submission(tls_active=True).feed(b"EHLO a\r\nAUTH LOGIN\r\n")
    assert s.replies()[-1] == "334 " + base64.b64encode(b"Username:").decode()
    s.feed(b64("bob@hamburger.edu") + b"\r\n")
    assert s.replies() == ["334 " + base64.b64encode(b"Password:").decode()]
    s.feed(b64("mustard") + b"\r\n")
    assert s.replies() == ["535 5.7.8 Authentication credentials invalid"]
    assert s.p.auth_identity is None and s.p.state is State.READY
    s.feed(b"AUTH LOGIN " + b64("bob@hamburger.edu") + b"\r\n" + b64("ketchup") + b"\r\n")
    assert s.replies()[-1] == "235 2.7.0 Authentication successful"


def test_auth_plain_with_an_empty_challenge() -> None:
    s = submission(tls_active=True).feed(b"EHLO a\r\nAUTH PLAIN\r\n")
    assert s.replies()[-1] == "334 "
    s.feed(b64("\0bob@hamburger.edu\0ketchup") + b"\r\n")
    assert s.replies() == ["235 2.7.0 Authentication successful"]


@pytest.mark.parametrize(
    ("lines", "reply"),
    [
        (b"AUTH LOGIN\r\n*\r\n", "501 5.0.0 Authentication cancelled"),
        (b"AUTH LOGIN\r\n!!!\r\n", "501 5.5.2 Cannot decode base64 response"),
        (b"AUTH PLAIN !!!\r\n", "501 5.5.2 Cannot decode base64 response"),
        (b"AUTH CRAM-MD5\r\n", "504 5.5.4 Unrecognized authentication type"),
        (b"AUTH\r\n", "501 5.5.4 Syntax error in parameters"),
        (b"AUTH PLAIN " + b64("nonul") + b"\r\n", "501 5.5.2 Malformed SASL message"),
        (b"MAIL FROM:<a@b.c>\r\n", "530 5.7.0 Authentication required"),
    ],
)
def test_auth_refusals(lines: bytes, reply: str) -> None:
    s = submission(tls_active=True).feed(b"EHLO a\r\n" + lines + b"NOOP\r\n")
    assert s.replies()[-2:] == [reply, "250 2.0.0 OK"]
    assert s.p.auth_identity is None


def test_auth_during_a_transaction_is_refused() -> None:
    s = submission(tls_active=True, require_auth=False)
    s.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nAUTH PLAIN =\r\n")
    assert s.replies()[-1] == "503 5.5.1 Not allowed during a mail transaction"


def test_auth_without_tls_when_allowed() -> None:
    s = submission(require_tls_for_auth=False).feed(b"EHLO a\r\n")
    assert "250-AUTH PLAIN LOGIN" in s.replies()
