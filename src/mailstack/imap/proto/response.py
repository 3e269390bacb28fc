"""The response writer (RFC 3501 §7 and §9 formal syntax).

Values map to wire syntax: ``None`` is NIL, ``int`` a number, ``Atom`` goes
out as spelled, ``str`` a quoted string (or a literal when it cannot be
quoted), ``bytes`` always a literal, ``Literal8`` a ``~{n}`` literal
(RFC 3516), ``Raw`` as it is (already in wire syntax), and lists/tuples
parenthesised lists.
"""

from __future__ import annotations

from contextvars import ContextVar

from mailstack.imap.proto.tokens import Atom

__all__ = [
    "Atom",
    "Literal8",
    "Raw",
    "astring",
    "continuation",
    "encode",
    "quoted",
    "tagged",
    "untagged",
    "utf8_quoted",
]


class Literal8(bytes):
    """Binary content for FETCH BINARY (RFC 3516 §4.3: literal8)."""

    __slots__ = ()


class Raw(bytes):
    """A value already in wire syntax, such as a BODYSTRUCTURE (fetch.py)."""

    __slots__ = ()


_QUOTE_UNSAFE = frozenset(b'\r\n\x00"\\') | frozenset(range(0x80, 0x100))


# RFC 3501 §9: a quoted string holds 7-bit characters only; RFC 6855 §3 and
# RFC 9051 let a session that enabled UTF8=ACCEPT or IMAP4rev2 have UTF-8
# there. The session sets this around each command it runs.
utf8_quoted: ContextVar[bool] = ContextVar("utf8_quoted", default=False)


def astring(text: str) -> object:
    """Text as an atom when it can be one (RFC 3501 §9 ATOM-CHAR, and no
    list-wildcards or "]": as naive clients read them), else as a string."""
    if text and all(0x20 < ord(c) < 0x7F and c not in '(){ %*"\\]' for c in text):
        return Atom(text)
    return text


def quoted(text: str) -> bytes:
    """A string as a quoted string if it can be one, otherwise as a literal
    (8-bit text too, unless the session takes UTF-8 in quoted strings)."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) < 1024 and not _QUOTE_UNSAFE.intersection(data):
        return b'"' + data + b'"'
    if (
        b"\r" in data
        or b"\n" in data
        or b"\x00" in data
        or len(data) >= 1024
        or (not utf8_quoted.get() and not data.isascii())
    ):
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def encode(value: object) -> bytes:
    if value is None:
        return b"NIL"
    if isinstance(value, Atom):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, bool):
        raise TypeError("booleans have no IMAP form")
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, Raw):
        return bytes(value)
    if isinstance(value, Literal8):
        return b"~{%d}\r\n" % len(value) + value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"{%d}\r\n" % len(value) + bytes(value)
    if isinstance(value, (list, tuple)):
        return b"(" + b" ".join(encode(v) for v in value) + b")"
    raise TypeError(f"cannot encode {type(value).__name__}")


def untagged(*parts: object) -> bytes:
    """``* part part ...`` CRLF; each part encoded with ``encode``."""
    return b"* " + b" ".join(encode(p) for p in parts) + b"\r\n"


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """RFC 3501 §7.1: ``tag OK|NO|BAD [code] text``."""
    code_part = f"[{code}] " if code else ""
    return f"{tag} {status} {code_part}{text}\r\n".encode()


def continuation(text: str = "") -> bytes:
    return f"+ {text}\r\n".encode() if text else b"+ \r\n"
