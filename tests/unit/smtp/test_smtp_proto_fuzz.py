"""Hypothesis: any bytes give replies or a Close, never an exception, however split."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from smtp_driver import Session, mx_policy

from mailstack.limits import Limits
from mailstack.smtp.proto import AuthRequest, AuthResponse, Reply, SmtpServerProtocol

TOKENS = [
    b"EHLO crepes.fr\r\n",
    b"HELO x\r\n",
    b"MAIL FROM:<alice@crepes.fr>",
    b"MAIL FROM:<> SIZE=99999999 BODY=8BITMIME SMTPUTF8",
    b"RCPT TO:<bob@hamburger.edu>",
    b"RCPT TO:<zo\xc3\xab@hamburger.edu> NOTIFY=NEVER",
    b"DATA",
    b"BDAT 3",
    b"BDAT 0 LAST",
    b"BDAT 5 LAST",
    b"STARTTLS",
    b"AUTH PLAIN",
    b"AUTH LOGIN Ym9i",
    b"*",
    b"RSET",
    b"QUIT",
    b"NOOP",
    b".",
    b"..",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n.\r\n",
    b"\n.\n",
    b" ",
    b"\x00\xff",
]

sessions = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=20)), max_size=40).map(
    b"".join
)
LIMITS = Limits(smtp_command_line=64, message_size=200, recipients=2, errors_per_session=8)
OPTIONS = {
    "limits": LIMITS,
    "tls_available": True,
    "auth_mechanisms": ("PLAIN", "LOGIN"),
    "require_tls_for_auth": False,
}


def decide(p: SmtpServerProtocol, event: object) -> Reply | None:
    if isinstance(event, AuthRequest) and event.initial is None:
        p.auth_challenge(b"")
        return None
    if isinstance(event, AuthRequest | AuthResponse):
        return Reply(535, "5.7.8", "Authentication credentials invalid")
    return mx_policy(p, event)


def drive(data: bytes, cuts: list[int]) -> Session:
    # The handshake never completes here: what follows STARTTLS is dropped,
    # which keeps the outcome independent of how the bytes were split.
    s = Session(decide, start_tls=False, **OPTIONS)  # type: ignore[arg-type]
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        if cut > last:
            s.feed(data[last:cut])
            last = cut
    if last < len(data):
        s.feed(data[last:])
    return s.eof()


@example(b"EHLO a\r\nSTARTTLS\r\nNOOP\r\n", [20])
@settings(max_examples=300, deadline=None)
@given(sessions, st.lists(st.integers(min_value=0), max_size=8))
def test_any_input_gives_replies_or_close(data: bytes, cuts: list[int]) -> None:
    whole = drive(data, [])
    split = drive(data, cuts)
    assert split.events == whole.events
    assert split.out == whole.out
    assert whole.closed is not None or whole.p.state.value in ("closed", "tls")
    for line in whole.out.split(b"\r\n")[:-1]:
        assert line[:3].isdigit() and line[3:4] in (b" ", b"-")
