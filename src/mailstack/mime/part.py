"""One MIME entity of a parsed message, located by offsets into the raw bytes.

Slicing the raw message bytes with a Part's offsets answers RFC 3501 §6.4.5
FETCH BODY[section] without parsing again:

* ``raw[header_start:body_start]``: the entity's header including the blank
  separator line (BODY[HEADER] of a message, BODY[n.MIME] of a part);
* ``raw[header_start:header_end]``: the header fields alone;
  ``raw[header_end:body_start]`` is the blank line (empty when the header was
  not followed by one);
* ``raw[body_start:body_end]``: the body (BODY[TEXT] of a message, BODY[n]
  of a part);
* ``raw[start:end]`` for each ``(name, start, end)`` of ``headers``: one whole
  field, continuation lines and line ending included (HEADER.FIELDS).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mailstack.mime.encoded_words import decode_header
from mailstack.mime.envelope import Envelope


@dataclass(frozen=True, slots=True)
class Part:
    """One entity: a message, a body part, or an encapsulated message.

    ``headers`` lists ``(lowercase field name, start, end)``. ``maintype``,
    ``subtype``, parameter names and the disposition type are lowercased;
    parameter values (RFC 2231 continuations joined and decoded), ``id``,
    ``description``, ``encoding``, ``md5`` and ``location`` are as the
    sender wrote them, unfolded. ``lines`` is set for text/* and
    message/rfc822 (RFC 3501 body-fld-lines). A multipart has ``children``
    (never empty); a message/rfc822 or message/global part has ``message``
    (the encapsulated message's root) and ``message_envelope``.
    """

    header_start: int
    header_end: int
    body_start: int
    body_end: int
    headers: list[tuple[str, int, int]] = field(default_factory=list)
    maintype: str = "text"
    subtype: str = "plain"
    params: list[tuple[str, str]] = field(default_factory=list)
    id: str | None = None
    description: str | None = None
    encoding: str = "7BIT"
    lines: int | None = None
    md5: str | None = None
    disposition: tuple[str, list[tuple[str, str]]] | None = None
    language: list[str] | None = None
    location: str | None = None
    children: list[Part] = field(default_factory=list)
    message: Part | None = None
    message_envelope: Envelope | None = None

    @property
    def size(self) -> int:
        """Body octets (RFC 3501 body-fld-octets)."""
        return self.body_end - self.body_start

    @property
    def is_multipart(self) -> bool:
        return bool(self.children)

    def param(self, name: str) -> str | None:
        """A Content-Type parameter by (lowercase) name."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    def filename(self) -> str | None:
        """The RFC 2183 filename, else the Content-Type name parameter, decoded.

        Many senders put RFC 2047 encoded words in quoted filenames (which
        RFC 2047 §5 forbids); they are decoded here for display.
        """
        value = None
        if self.disposition is not None:
            value = next((v for k, v in self.disposition[1] if k == "filename"), None)
        if value is None:
            value = self.param("name")
        return None if value is None else decode_header(value)

    def select_fields(self, raw: bytes, names: frozenset[str] | set[str], *,
                      exclude: bool = False) -> bytes:
        """RFC 3501 §6.4.5 HEADER.FIELDS (or .NOT with *exclude*) of this header.

        *names* are lowercase field names; the result is the whole matching
        fields in their original order followed by the blank line that ends
        a header (CRLF when the header had none).
        """
        selected = [raw[start:end] for name, start, end in self.headers
                    if (name in names) != exclude]
        separator = raw[self.header_end:self.body_start]
        selected.append(separator if separator else b"\r\n")
        return b"".join(selected)

    def section(self, path: tuple[int, ...]) -> Part | None:
        """The entity that RFC 3501 §6.4.5 numbers *path*, or None.

        Call it on a message's root: ``()`` is the message itself. A
        non-multipart message's part 1 is its body (the root again); the
        subparts of a message/rfc822 part number through its encapsulated
        message, whose own HEADER and TEXT are those of ``part.message``.
        """
        node = self
        at_message = True
        for number in path:
            if not at_message and node.message is not None:
                node = node.message
                at_message = True
            if node.children:
                if not 1 <= number <= len(node.children):
                    return None
                node = node.children[number - 1]
                at_message = False
            elif at_message and number == 1:
                at_message = False
            else:
                return None
        return node

    def walk(self) -> list[Part]:
        """This part and every part below it, depth first, in order."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        if self.message is not None:
            out.extend(self.message.walk())
        return out

    def shifted(self, delta: int) -> Part:
        """A copy with every offset moved by *delta* octets."""
        return replace(
            self,
            header_start=self.header_start + delta,
            header_end=self.header_end + delta,
            body_start=self.body_start + delta,
            body_end=self.body_end + delta,
            headers=[(name, start + delta, end + delta) for name, start, end in self.headers],
            children=[child.shifted(delta) for child in self.children],
            message=None if self.message is None else self.message.shifted(delta),
        )

    def to_list(self) -> list[Any]:
        return [
            self.header_start, self.header_end, self.body_start, self.body_end,
            self.headers, self.maintype, self.subtype, self.params,
            self.id, self.description, self.encoding, self.lines, self.md5,
            self.disposition, self.language, self.location,
            [child.to_list() for child in self.children],
            None if self.message is None else self.message.to_list(),
            None if self.message_envelope is None else self.message_envelope.to_list(),
        ]

    @classmethod
    def from_list(cls, data: list[Any]) -> Part:
        disposition = data[13]
        return cls(
            data[0], data[1], data[2], data[3],
            [(name, start, end) for name, start, end in data[4]],
            data[5], data[6], [(key, value) for key, value in data[7]],
            data[8], data[9], data[10], data[11], data[12],
            None if disposition is None
            else (disposition[0], [(key, value) for key, value in disposition[1]]),
            data[14], data[15],
            [cls.from_list(child) for child in data[16]],
            None if data[17] is None else cls.from_list(data[17]),
            None if data[18] is None else Envelope.from_list(data[18]),
        )
