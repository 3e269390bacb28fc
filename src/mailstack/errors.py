"""The root exception and the protocol error bases.

    MailstackError                  anything mailstack raises on purpose
    ├── ConfigError                 the configuration is wrong (message says where)
    ├── StoreError                  the store refused an operation
    │   ├── NotFound
    │   ├── AlreadyExists
    │   ├── QuotaExceeded
    │   └── StoreUnavailable        the store cannot be reached now (try again)
    └── ProtocolError               carries the reply that goes on the wire
        ├── SmtpError               code + enhanced status code + text
        ├── Pop3Error               -ERR with an optional [RESP-CODE]
        ├── ImapError               NO or BAD with an optional [RESP-CODE]
        └── DnsError                an RCODE

Exception text never reaches a peer: a ProtocolError's ``reply`` is what is
sent, and anything else is logged and answered with a generic server error.
"""

from __future__ import annotations


class MailstackError(Exception):
    """Something went wrong in mailstack."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(MailstackError):
    """The configuration is invalid."""


class StoreError(MailstackError):
    """The store refused the operation."""


class NotFound(StoreError):
    """No such object in the store."""


class AlreadyExists(StoreError):
    """The object already exists in the store."""


class QuotaExceeded(StoreError):
    """The account is over its quota."""


class StoreUnavailable(StoreError):
    """The store cannot be reached now (a shared database restarting): the
    operation may succeed if tried again."""


class ProtocolError(MailstackError):
    """A peer misbehaved; the exception carries the reply to send."""


class SmtpError(ProtocolError):
    """An SMTP reply that refuses something (RFC 5321 §4.2, RFC 3463)."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(f"{code} {enhanced} {text}")
        self.code = code
        self.enhanced = enhanced
        self.text = text

    def to_bytes(self) -> bytes:
        return f"{self.code} {self.enhanced} {self.text}\r\n".encode()


class Pop3Error(ProtocolError):
    """A POP3 -ERR reply (RFC 1939), with an RFC 2449 response code if any."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code

    def to_bytes(self) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return f"-ERR {code}{self.text}\r\n".encode()


class ImapError(ProtocolError):
    """An IMAP NO or BAD (RFC 3501 §7.1), with a response code if any."""

    def __init__(self, text: str, *, bad: bool = False, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.bad = bad
        self.code = code

    def status(self) -> str:
        return "BAD" if self.bad else "NO"

    def line(self, tag: str) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {self.status()} {code}{self.text}\r\n".encode()


class DnsError(ProtocolError):
    """A DNS failure answered with an RCODE (RFC 1035 §4.1.1)."""

    def __init__(self, rcode: int, text: str = "") -> None:
        super().__init__(text or f"rcode {rcode}")
        self.rcode = rcode
