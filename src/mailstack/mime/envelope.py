"""The RFC 3501 §7.4.2 ENVELOPE of a message, built from its header fields.

Values stay raw (unfolded, encoded words undecoded) as RFC 3501 requires;
``decode_header`` is for SEARCH and display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailstack.mime.address import Address, parse_address_list

_ADDRESS_FIELDS = ("from", "sender", "reply-to", "to", "cc", "bcc")
_STRING_FIELDS = ("date", "subject", "in-reply-to", "message-id")
ENVELOPE_FIELDS = frozenset(_ADDRESS_FIELDS + _STRING_FIELDS)
"""The header fields that ENVELOPE reads."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """ENVELOPE fields; None is NIL, an empty address list is NIL too."""

    date: str | None = None
    subject: str | None = None
    from_: list[Address] | None = None
    sender: list[Address] | None = None
    reply_to: list[Address] | None = None
    to: list[Address] | None = None
    cc: list[Address] | None = None
    bcc: list[Address] | None = None
    in_reply_to: str | None = None
    message_id: str | None = None

    @classmethod
    def from_fields(cls, fields: list[tuple[str, str]]) -> Envelope:
        """Build from ``(lowercase name, raw value)`` pairs; the first occurrence wins."""
        first: dict[str, str] = {}
        for name, value in fields:
            if name in ENVELOPE_FIELDS and name not in first:
                first[name] = value
        lists: dict[str, list[Address] | None] = {}
        for name in _ADDRESS_FIELDS:
            raw = first.get(name)
            lists[name] = (parse_address_list(raw) or None) if raw is not None else None
        # RFC 3501 §7.4.2: "If the Sender or Reply-To lines are absent in the
        # [RFC-2822] header, or are present but empty, the server sets the
        # corresponding member of the envelope to be the same value as the from
        # member".
        sender = lists["sender"] or lists["from"]
        reply_to = lists["reply-to"] or lists["from"]
        return cls(
            date=first.get("date"),
            subject=first.get("subject"),
            from_=lists["from"],
            sender=sender,
            reply_to=reply_to,
            to=lists["to"],
            cc=lists["cc"],
            bcc=lists["bcc"],
            in_reply_to=first.get("in-reply-to"),
            message_id=first.get("message-id"),
        )

    def to_list(self) -> list[Any]:
        return [
            self.date, self.subject,
            _addresses_out(self.from_), _addresses_out(self.sender),
            _addresses_out(self.reply_to), _addresses_out(self.to),
            _addresses_out(self.cc), _addresses_out(self.bcc),
            self.in_reply_to, self.message_id,
        ]

    @classmethod
    def from_list(cls, data: list[Any]) -> Envelope:
        return cls(
            data[0], data[1],
            _addresses_in(data[2]), _addresses_in(data[3]), _addresses_in(data[4]),
            _addresses_in(data[5]), _addresses_in(data[6]), _addresses_in(data[7]),
            data[8], data[9],
        )


def _addresses_out(addresses: list[Address] | None) -> list[list[str | None]] | None:
    return None if addresses is None else [list(address) for address in addresses]


def _addresses_in(data: list[list[str | None]] | None) -> list[Address] | None:
    return None if data is None else [Address(*address) for address in data]
