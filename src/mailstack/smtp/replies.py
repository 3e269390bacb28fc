"""SMTP replies: the ``Reply`` value and the named replies the server sends.

A reply is a code (RFC 5321 §4.2), an enhanced status code (RFC 2034, RFC 3463)
and text. RFC 2034 §4 puts the enhanced code on every line of 2xx, 4xx and 5xx
replies, except the greeting and the replies to HELO and EHLO; 3xx replies
(354, 334) have none. The texts follow the lecture dialogue where it has one
(``354 Enter mail, end with "." on a line by itself``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstack.errors import SmtpError

__all__ = ["Reply"]


@dataclass(frozen=True, slots=True, init=False)
class Reply:
    """One SMTP reply; ``lines`` has one entry per line of a multi-line reply."""

    code: int
    enhanced: str
    lines: tuple[str, ...]
    wire: bytes = field(repr=False, compare=False)

    def __init__(self, code: int, enhanced: str = "", text: str | tuple[str, ...] = "") -> None:
        if not 200 <= code <= 599:
            raise ValueError(f"SMTP reply code out of range: {code}")
        lines = (text,) if isinstance(text, str) else tuple(text) or ("",)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "enhanced", enhanced)
        object.__setattr__(self, "lines", lines)
        # RFC 5321 §4.2.1: every line but the last has "-" after the code.
        prefix = f"{code} {enhanced} " if enhanced else f"{code} "
        more = prefix.replace(" ", "-", 1)
        out = [f"{more}{line}\r\n" for line in lines[:-1]]
        out.append(f"{prefix}{lines[-1]}\r\n")
        object.__setattr__(self, "wire", "".join(out).encode())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def is_positive(self) -> bool:
        return self.code < 400

    @classmethod
    def from_error(cls, error: SmtpError) -> Reply:
        return cls(error.code, error.enhanced, error.text)

    def to_bytes(self) -> bytes:
        return self.wire

    # Replies the server gives through respond(), in the lecture's words.
    @classmethod
    def sender_ok(cls, address: str) -> Reply:
        return cls(250, "2.1.0", f"{address or '<>'}... Sender ok")

    @classmethod
    def recipient_ok(cls, address: str) -> Reply:
        return cls(250, "2.1.5", f"{address}... Recipient ok")

    @classmethod
    def message_accepted(cls) -> Reply:
        return cls(250, "2.0.0", "Message accepted for delivery")

    @classmethod
    def auth_succeeded(cls) -> Reply:
        return cls(235, "2.7.0", "Authentication successful")


OK = Reply(250, "2.0.0", "OK")
RESET = Reply(250, "2.0.0", "Reset state")
VRFY = Reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
HELP = Reply(
    214,
    "2.0.0",
    (
        "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
        "See RFC 5321",
    ),
)
START_DATA = Reply(354, "", 'Enter mail, end with "." on a line by itself')
READY_TLS = Reply(220, "2.0.0", "Ready to start TLS")

UNKNOWN_COMMAND = Reply(500, "5.5.1", "Command unrecognized")
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
BAD_UTF8 = Reply(500, "5.5.2", "Syntax error: command is not valid UTF-8")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
SEND_HELO_FIRST = Reply(503, "5.5.1", "Send EHLO or HELO first")
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL command first")
NEED_RCPT = Reply(503, "5.5.1", "Need RCPT command first")
NESTED_MAIL = Reply(503, "5.5.1", "Sender already specified")
IN_TRANSACTION = Reply(503, "5.5.1", "Not allowed during a mail transaction")
DATA_AFTER_BDAT = Reply(503, "5.5.1", "DATA and BDAT cannot be mixed in one transaction")
RCPT_AFTER_BDAT = Reply(503, "5.5.1", "RCPT not allowed after BDAT")
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "No valid recipients")

HELO_SYNTAX = Reply(501, "5.5.4", "Syntax: EHLO hostname")
MAIL_SYNTAX = Reply(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]")
RCPT_SYNTAX = Reply(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]")
BDAT_SYNTAX = Reply(501, "5.5.4", "Syntax: BDAT size [LAST]")
BURL_SYNTAX = Reply(501, "5.5.4", "Syntax: BURL imap-url [LAST]")
NO_ARGUMENTS = Reply(501, "5.5.4", "Syntax: no arguments allowed")
VRFY_SYNTAX = Reply(501, "5.5.4", "Syntax: VRFY address")
BAD_PARAMETER = Reply(501, "5.5.4", "Syntax error in parameters")
UNKNOWN_PARAMETER = Reply(555, "5.5.4", "Parameter not recognized or not implemented")
BAD_SENDER = Reply(501, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT = Reply(501, "5.1.3", "Bad recipient address syntax")
# RFC 6531 §3.7.4.1 / RFC 6533 §3: X.6.7 "Non-ASCII addresses not permitted".
NEED_SMTPUTF8 = Reply(553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter")

# RFC 1870 §6.1 and RFC 3463 X.3.4 "Message too big for system".
TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
# RFC 5321 §4.5.3.1.10: "452 Too many recipients", RFC 3463 X.5.3.
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
# RFC 5321 §2.3.8: CR and LF only ever appear together as CRLF. A message that
# has either alone is refused whole (X.6.0: "other or undefined media error"),
# so that bare-LF "end of data" tricks (SMTP smuggling) never split a message.
BARE_CR_LF = Reply(554, "5.6.0", "Message contains bare CR or LF; lines must end with CRLF")

# The store could not be reached or could not commit: the client tries again.
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing, try again later")

TLS_NOT_AVAILABLE = Reply(454, "4.7.0", "TLS not available")
TLS_ACTIVE = Reply(503, "5.5.1", "TLS already active")

AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
AUTH_NEEDS_TLS = Reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
AUTH_UNKNOWN_MECHANISM = Reply(504, "5.5.4", "Unrecognized authentication type")
AUTH_ALREADY = Reply(503, "5.5.1", "Already authenticated")
AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
AUTH_BAD_BASE64 = Reply(501, "5.5.2", "Cannot decode base64 response")
