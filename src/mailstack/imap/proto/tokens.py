"""Tokenizer for one framed IMAP command (RFC 3501 §4, §9 formal syntax).

The tokens are the generic shapes of the grammar: atoms, strings (quoted or
literal), parenthesised lists, and the bracketed section atoms of FETCH
(``BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.100>``). Each command's grammar
(parser.py) then reads its arguments from the token list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailstack.errors import ImapError

__all__ = ["Atom", "Quoted", "SectionAtom", "Token", "tokenize"]

# RFC 3501 §9: atom-specials are ( ) { SP CTL list-wildcards quoted-specials
# resp-specials. We read '%', '*' and ']' as part of atoms (list patterns,
# sequence sets, astrings) and leave the command grammar to refuse them.
_STOP = frozenset(b'(){ "\x7f') | frozenset(range(0x20))


class Atom(str):
    """An atom as the client spelled it (compare with ``.upper()``)."""

    __slots__ = ()


class Quoted(bytes):
    """A quoted string; a literal stays plain ``bytes`` (never copied).

    Some grammar rules take only the quoted form: APPEND's date-time
    (RFC 3501 §9), which tells it apart from a MULTIAPPEND message literal.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class SectionAtom:
    """``NAME[inner]<partial>``: FETCH sections, or an astring that contains '['."""

    name: str
    inner: list[Token]
    partial: str | None
    raw: str


# A parenthesised list holds tokens in turn.
Token = Atom | bytes | SectionAtom | list["Token"]


def _bad(text: str) -> ImapError:
    return ImapError(text, bad=True)


class _Scanner:
    __slots__ = ("raw", "pos", "max_depth", "literals", "next_literal")

    def __init__(
        self, raw: bytes, pos: int, max_depth: int, literals: Sequence[bytes] | None
    ) -> None:
        self.raw = raw
        self.pos = pos
        self.max_depth = max_depth
        self.literals = literals
        self.next_literal = 0

    def tokens(self, depth: int, close: int | None) -> list[Token]:
        """Tokens up to ``close`` (')' or ']'), or up to the final CRLF."""
        if depth > self.max_depth:
            raise _bad("Too deeply nested")
        raw = self.raw
        out: list[Token] = []
        while True:
            if self.pos >= len(raw):
                raise _bad("Unexpected end of command")
            c = raw[c_pos := self.pos]
            if c == 0x20:
                self.pos += 1
                continue
            if close is not None and c == close:
                self.pos += 1
                return out
            if c in (0x0D, 0x0A):
                if close is not None:
                    raise _bad("Unbalanced parenthesis or bracket")
                if raw[c_pos:] not in (b"\r\n", b"\n"):
                    raise _bad("Garbage after end of line")
                self.pos = len(raw)
                return out
            if c == 0x28:  # (
                self.pos += 1
                out.append(self.tokens(depth + 1, 0x29))
            elif c == 0x29:
                raise _bad("Unexpected closing parenthesis")
            elif c == 0x22:
                out.append(self.quoted())
            elif c == 0x7B or c == 0x7E and raw[c_pos + 1 : c_pos + 2] == b"{":
                out.append(self.literal())
            else:
                out.append(self.atom(depth, close))

    def quoted(self) -> bytes:
        raw = self.raw
        i = self.pos + 1
        buf = bytearray()
        while i < len(raw):
            c = raw[i]
            if c == 0x22:
                self.pos = i + 1
                return Quoted(buf)
            if c == 0x5C:
                i += 1
                if i >= len(raw) or raw[i] not in (0x22, 0x5C):
                    raise _bad("Bad escape in quoted string")
                buf.append(raw[i])
            elif c in (0x0D, 0x0A, 0x00):
                raise _bad("Bad character in quoted string")
            else:
                buf.append(c)
            i += 1
        raise _bad("Unterminated quoted string")

    def literal(self) -> bytes:
        raw = self.raw
        start = self.pos + (2 if raw[self.pos] == 0x7E else 1)
        end = raw.find(b"}", start)
        if end < 0:
            raise _bad("Bad literal")
        digits = raw[start:end].rstrip(b"+")
        if not digits.isdigit() or len(digits) > 20:
            raise _bad("Bad literal size")
        size = int(digits)
        i = end + 1
        if raw[i : i + 2] == b"\r\n":
            i += 2
        elif raw[i : i + 1] == b"\n":
            i += 1
        else:
            raise _bad("Literal must end its line")
        if self.literals is not None:
            # The framer kept the literals apart from the lines: no copy.
            if self.next_literal >= len(self.literals):
                raise _bad("Literal missing")
            data = self.literals[self.next_literal]
            self.next_literal += 1
            if len(data) != size:
                raise _bad("Literal shorter than announced")
            self.pos = i
        else:
            if i + size > len(raw):
                raise _bad("Literal shorter than announced")
            self.pos = i + size
            data = raw[i : i + size]
        if raw[self.pos : self.pos + 1] not in (b" ", b")", b"]", b"\r", b"\n"):
            raise _bad("Missing space after literal")
        return data

    def atom(self, depth: int, close: int | None) -> Token:
        raw = self.raw
        start = i = self.pos
        n = len(raw)
        while i < n and raw[i] not in _STOP and raw[i] != 0x5B:
            if raw[i] == 0x5D and close == 0x5D:
                break
            i += 1
        if i < n and raw[i] == 0x5B:
            name = raw[start:i].decode("ascii", "replace")
            self.pos = i + 1
            resume = self.next_literal
            try:
                inner = self.tokens(depth + 1, 0x5D)
            except ImapError:
                # No closing ']': not a section but an atom that contains '['
                # (RFC 3501 §9 ATOM-CHAR allows it), as in "SELECT foo[bar".
                self.next_literal = resume
                while i < n and raw[i] not in _STOP:
                    i += 1
                self.pos = i
                return Atom(raw[start:i].decode("utf-8", "surrogateescape"))
            j = self.pos
            partial = None
            if j < n and raw[j] == 0x3C:
                k = raw.find(b">", j)
                if k < 0:
                    raise _bad("Bad partial")
                partial = raw[j + 1 : k].decode("ascii", "replace")
                j = k + 1
            # An astring may continue after the bracket: "[Gmail]/Sent".
            while j < n and raw[j] not in _STOP and raw[j] != 0x5B:
                j += 1
            self.pos = j
            text = raw[start:j].decode("utf-8", "surrogateescape")
            return SectionAtom(name, inner, partial, text)
        if i == start:
            raise _bad("Unexpected character")
        self.pos = i
        return Atom(raw[start:i].decode("utf-8", "surrogateescape"))


def tokenize(
    raw: bytes, pos: int = 0, *, max_depth: int = 32, literals: Sequence[bytes] | None = None
) -> list[Token]:
    """All tokens of ``raw[pos:]`` up to its final CRLF.

    With ``literals``, ``raw`` holds the command's lines only and each
    ``{n}`` takes the next of ``literals`` (RawCommand.lines / .literals).
    """
    return _Scanner(raw, pos, max_depth, literals).tokens(0, None)
