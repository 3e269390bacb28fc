"""Parse a message once, at delivery: envelope, body structure, searchable text.

Whoever delivers or appends a message parses it once (``parse_for_store``)
and hands the store the result; the store keeps it through ``PARSE_CODEC``
(``stored.py``), and IMAP FETCH/SEARCH, POP3 and webmail read it back and
answer by slicing the raw bytes at the stored offsets, never parsing again.

Implements the reading side of:

* RFC 5322 Internet Message Format (header fields, folding, address lists,
  group syntax, the obsolete syntax of §4);
* RFC 2045 MIME part one (Content-Type, Content-Transfer-Encoding, defaults),
  RFC 2046 part two (multipart boundaries, digest, message/rfc822),
  RFC 2047 encoded words (``decode_header``), RFC 2183 Content-Disposition,
  RFC 2231 parameter continuations and charsets, RFC 3282 Content-Language,
  RFC 2557 Content-Location, RFC 1864 Content-MD5;
* RFC 6532 UTF-8 header fields and RFC 6532 §3.7 message/global;
* RFC 3501 §7.4.2 ENVELOPE and BODYSTRUCTURE fields, §6.4.5 section numbers.
"""

from mailstack.mime.address import Address, parse_address_list
from mailstack.mime.encoded_words import decode_header
from mailstack.mime.envelope import Envelope
from mailstack.mime.message import ParsedMessage, count_lines, parse
from mailstack.mime.part import Part
from mailstack.mime.stored import PARSE_CODEC, parse_for_store
from mailstack.mime.text import html_text, part_text, transfer_decode

__all__ = [
    "PARSE_CODEC",
    "Address",
    "Envelope",
    "ParsedMessage",
    "Part",
    "count_lines",
    "decode_header",
    "html_text",
    "parse",
    "parse_address_list",
    "parse_for_store",
    "part_text",
    "transfer_decode",
]
