"""SASL mechanisms as small state machines without I/O, shared by POP3, IMAP and SMTP.

Implements the server side of:

- PLAIN (RFC 4616): one message ``[authzid] NUL authcid NUL passwd``.
- LOGIN (draft-murchison-sasl-login-00): the server asks ``Username:`` then
  ``Password:``; each answer is a bare string.

A mechanism works on decoded octets. The protocol around it does the framing
(RFC 5034 ``+ `` lines, RFC 3501 ``+`` continuations, RFC 4954 ``334`` replies),
the base64 coding (:func:`decode_response`, :func:`encode_challenge`), the
``*`` cancellation and the credential check, usually with
``store.authenticate(authcid, password)``.

Typical use, in a server::

    mech = new_mechanism(name)            # None: not supported
    step = mech.initial(initial_response) # bytes or None (no initial response)
    while isinstance(step, Challenge):
        send(encode_challenge(step.data)); step = mech.step(decode_response(line))
    # step is Credentials; a malformed message raised SaslError
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Protocol

from mailstack.errors import MailstackError

__all__ = [
    "MECHANISMS",
    "Challenge",
    "Credentials",
    "Login",
    "Mechanism",
    "Plain",
    "SaslError",
    "decode_response",
    "encode_challenge",
    "new_mechanism",
]

# RFC 4616 §2: authcid and passwd are at most 255 octets; authzid likewise.
_MAX_FIELD = 255


class SaslError(MailstackError):
    """The client's SASL message is malformed."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """The server must send ``data`` (decoded) and wait for the client's answer."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Credentials:
    """The exchange is over: the identities and password to check.

    ``authzid`` is the identity to act as; empty means the same as ``authcid``
    (RFC 4616 §2). A server that does not support proxy authorization refuses a
    non-empty authzid that differs from authcid (see :meth:`acts_as_self`).
    """

    authzid: str
    authcid: str
    password: str

    def acts_as_self(self) -> bool:
        return self.authzid in ("", self.authcid)


Step = Challenge | Credentials


class Mechanism(Protocol):
    name: str

    def initial(self, response: bytes | None) -> Step:
        """Start the exchange; ``response`` is the client's initial response if it sent one."""
        ...

    def step(self, response: bytes) -> Step:
        """Take the client's answer to the last challenge."""
        ...


def _text(field: bytes, what: str, *, allow_empty: bool = False) -> str:
    if not field and not allow_empty:
        raise SaslError(f"empty {what}")
    if len(field) > _MAX_FIELD:
        raise SaslError(f"{what} too long")
    try:
        # RFC 4616 §2: every field is UTF-8 and contains no NUL.
        text = field.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(f"{what} is not UTF-8") from None
    if "\x00" in text:
        raise SaslError(f"NUL in {what}")
    return text


class Plain:
    """RFC 4616 PLAIN: ``message = [authzid] UTF8NUL authcid UTF8NUL passwd``."""

    name = "PLAIN"

    def __init__(self) -> None:
        self._done = False

    def initial(self, response: bytes | None) -> Step:
        if response is None:
            # RFC 4616 §2: with no initial response the server sends an empty
            # challenge and the client answers with the message.
            return Challenge(b"")
        return self.step(response)

    def step(self, response: bytes) -> Step:
        if self._done:
            raise SaslError("exchange already finished")
        self._done = True
        parts = response.split(b"\x00")
        if len(parts) != 3:
            raise SaslError("PLAIN message must have exactly two NUL separators")
        authzid, authcid, password = parts
        return Credentials(
            authzid=_text(authzid, "authorization identity", allow_empty=True),
            authcid=_text(authcid, "authentication identity"),
            password=_text(password, "password"),
        )


class Login:
    """LOGIN (draft-murchison-sasl-login): ``Username:`` then ``Password:``."""

    name = "LOGIN"

    USERNAME = b"Username:"
    PASSWORD = b"Password:"

    def __init__(self) -> None:
        self._username: str | None = None
        self._done = False

    def initial(self, response: bytes | None) -> Step:
        if response is None:
            return Challenge(self.USERNAME)
        # Some clients send the user name as the initial response
        # (draft-murchison-sasl-login §2 allows it).
        return self.step(response)

    def step(self, response: bytes) -> Step:
        if self._done:
            raise SaslError("exchange already finished")
        if self._username is None:
            self._username = _text(response, "user name")
            return Challenge(self.PASSWORD)
        self._done = True
        return Credentials(authzid="", authcid=self._username,
                           password=_text(response, "password"))


MECHANISMS: dict[str, type[Plain] | type[Login]] = {"PLAIN": Plain, "LOGIN": Login}


def new_mechanism(name: str, allowed: tuple[str, ...] = ("PLAIN", "LOGIN")) -> Mechanism | None:
    """A fresh state machine for mechanism ``name`` (case-insensitive), or None."""
    upper = name.upper()
    if upper not in allowed or upper not in MECHANISMS:
        return None
    return MECHANISMS[upper]()


def decode_response(line: bytes) -> bytes:
    """Decode a base64 client response (RFC 4648 §4 alphabet, padding required).

    ``=`` alone stands for an empty response (RFC 4954 §4, RFC 5034 §4).
    The caller handles ``*`` (cancel) before calling this.
    """
    text = line.strip()
    if text == b"=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SaslError("response is not valid base64") from None


def encode_challenge(data: bytes) -> bytes:
    """Base64 for a server challenge; an empty challenge is sent as nothing."""
    return base64.b64encode(data)
