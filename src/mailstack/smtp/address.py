"""SMTP paths and mailboxes: RFC 5321 §4.1.2 with the RFC 6531 (SMTPUTF8) extensions.

``parse_path`` reads the ``<...>`` of ``MAIL FROM:`` and ``RCPT TO:`` and returns the
mailbox as text plus whatever follows (the ESMTP parameters). Source routes
(``<@relay1,@relay2:bob@hamburger.edu>``) are parsed and ignored, as RFC 5321 §3.6.1
requires: "SMTP servers MAY ... ignore the route information and simply send to the
final destination". Quoted local parts keep their quotes, so the text is the mailbox
exactly as the peer wrote it. ``parse_esmtp_params`` and ``xtext_decode`` handle the
parameters (RFC 5321 §4.1.2 ``Mail-parameters``, RFC 3461 §4 ``xtext``).

Non-ASCII is accepted by the grammar; whether it is allowed (the SMTPUTF8 parameter,
RFC 6531 §3.4) is the state machine's decision.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = [
    "AddressError",
    "Mailbox",
    "parse_path",
    "parse_mailbox",
    "parse_esmtp_params",
    "is_xtext",
    "xtext_decode",
]

# RFC 5321 §4.1.2 and RFC 6531 §3.3: atext, qtextSMTP and sub-domain also admit
# UTF8-non-ascii (any code point past U+007F).
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"'
_LET_DIG = r"[A-Za-z0-9\u0080-\U0010ffff]"
_SUB_DOMAIN = rf"{_LET_DIG}(?:[A-Za-z0-9\-\u0080-\U0010ffff]*{_LET_DIG})?"
_DOMAIN = rf"{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*"
_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_MAILBOX = rf"(?P<local>{_DOT_STRING}|{_QUOTED})@(?P<domain>{_DOMAIN}|{_LITERAL})"
_ADL = rf"@{_DOMAIN}(?:,@{_DOMAIN})*"

_PATH_RE = re.compile(rf"<(?:{_ADL}:)?{_MAILBOX}>")
_MAILBOX_RE = re.compile(_MAILBOX)
_POSTMASTER_RE = re.compile(r"<(postmaster)>", re.IGNORECASE)
_KEYWORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")
# esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under RFC 6531 §3.3.
_VALUE_RE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")
_XTEXT_RE = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_XTEXT_HEX_RE = re.compile(r"\+([0-9A-F]{2})")
_GENERAL_TAG_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?")

# RFC 5321 §4.5.3.1.3: the maximum total length of a reverse-path or forward-path
# is 256 octets, including the punctuation.
MAX_PATH_OCTETS = 256


class AddressError(ValueError):
    """The text is not a valid RFC 5321 path or mailbox."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A mailbox as RFC 5321 writes it: ``local_part@domain``."""

    local_part: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local_part}@{self.domain}"


def _check_literal(literal: str) -> None:
    """RFC 5321 §4.1.3: IPv4, ``IPv6:`` or ``tag:content`` between brackets."""
    inner = literal[1:-1]
    try:
        if inner[:5].upper() == "IPV6:":
            ipaddress.IPv6Address(inner[5:])
            return
        if ":" not in inner:
            ipaddress.IPv4Address(inner)
            return
    except ValueError:
        raise AddressError(f"bad address literal {literal!r}") from None
    tag = inner.split(":", 1)[0]
    if not _GENERAL_TAG_RE.fullmatch(tag):
        raise AddressError(f"bad address literal {literal!r}")


def _mailbox_from_match(match: re.Match[str]) -> Mailbox:
    domain = match["domain"]
    if domain.startswith("["):
        _check_literal(domain)
    return Mailbox(match["local"], domain)


def parse_mailbox(text: str) -> Mailbox:
    """Parse ``local-part@domain`` (no angle brackets)."""
    match = _MAILBOX_RE.fullmatch(text)
    if match is None:
        raise AddressError(f"bad mailbox {text!r}")
    return _mailbox_from_match(match)


def parse_path(
    text: str, *, allow_null: bool = False, allow_postmaster: bool = False
) -> tuple[str, str]:
    """Parse a path at the start of ``text``; return ``(mailbox, rest)``.

    ``allow_null`` admits the null reverse-path ``<>`` (returned as ``""``);
    ``allow_postmaster`` admits ``<Postmaster>`` without a domain (RFC 5321 §4.1.1.3),
    returned as written. ``rest`` is the text after the path, leading blanks removed.
    A path without angle brackets is accepted leniently when it is a bare mailbox.
    """
    text = text.lstrip(" ")
    if text.startswith("<"):
        if allow_null and text.startswith("<>"):
            return "", text[2:].lstrip(" ")
        match = _PATH_RE.match(text)
        if match is not None:
            mailbox = _mailbox_from_match(match)
            if len(text[: match.end()].encode()) > MAX_PATH_OCTETS:
                raise AddressError("path too long")
            return str(mailbox), text[match.end() :].lstrip(" ")
        if allow_postmaster:
            match = _POSTMASTER_RE.match(text)
            if match is not None:
                return match[1], text[match.end() :].lstrip(" ")
        raise AddressError(f"bad path {text!r}")
    word, _, rest = text.partition(" ")
    match = _MAILBOX_RE.fullmatch(word)
    if match is None:
        raise AddressError(f"bad path {text!r}")
    return str(_mailbox_from_match(match)), rest.lstrip(" ")


def parse_esmtp_params(text: str) -> dict[str, str | None]:
    """Parse ``KEY=VALUE KEY ...`` (RFC 5321 §4.1.2); keys are upper-cased.

    A repeated keyword is an error (RFC 1869 §6 forbids it for every extension).
    """
    params: dict[str, str | None] = {}
    for word in text.split():
        keyword, eq, value = word.partition("=")
        if not _KEYWORD_RE.fullmatch(keyword):
            raise AddressError(f"bad parameter keyword {keyword!r}")
        if eq and not _VALUE_RE.fullmatch(value):
            raise AddressError(f"bad parameter value for {keyword}")
        keyword = keyword.upper()
        if keyword in params:
            raise AddressError(f"duplicate parameter {keyword}")
        params[keyword] = value if eq else None
    return params


def is_xtext(text: str) -> bool:
    """True when ``text`` is RFC 3461 §4 xtext (``+XX`` escapes, no bare ``+``/``=``)."""
    return _XTEXT_RE.fullmatch(text) is not None


def xtext_decode(text: str) -> str:
    """Decode RFC 3461 §4 xtext: ``+2B`` becomes ``+``."""
    if not is_xtext(text):
        raise AddressError("bad xtext")
    return _XTEXT_HEX_RE.sub(lambda m: chr(int(m[1], 16)), text)
