"""What a mail domain, a host name, an account address and a password may be.

The administration commands (and, next, the web admin) check names here
before anything is created, so a bad name is one clear error and nothing
half made:

- a domain or host name is LDH labels (RFC 1035 §2.3.1, RFC 1123 §2.1) of
  1 to 63 octets, at most 253 in all (RFC 1035 §2.3.4), and not an IP address;
- a mail domain is not a public suffix (`com`, `co.uk`: adding one would take
  over a whole TLD in the node's resolver) and has more than one label, unless
  forced; a host name always has more than one label (RFC 5321 §2.3.5: a
  fully-qualified domain name);
- an account address is an RFC 5321 §4.1.2 Mailbox whose local part is a
  Dot-string of at most 64 octets (§4.5.3.1.1): no quoted local parts, so
  that the same text logs in over SMTP, POP3 and IMAP;
- a password has at least ``MIN_PASSWORD_LENGTH`` characters (NIST SP
  800-63B §5.1.1.2 asks for at least 8).
"""

from __future__ import annotations

import functools
import ipaddress
import re

from publicsuffixlist import PublicSuffixList

from mailstack.errors import MailstackError
from mailstack.smtp.address import AddressError, parse_mailbox

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "BadName",
    "check_account_address",
    "check_domain",
    "check_hostname",
    "check_password",
]

MIN_PASSWORD_LENGTH = 8
MAX_NAME_OCTETS = 253
MAX_LABEL_OCTETS = 63
MAX_LOCAL_PART_OCTETS = 64

_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_ATOM = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_DOT_STRING_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")


class BadName(MailstackError):
    """Not a valid domain, host name or address."""


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _ldh_name(text: str, what: str) -> str:
    """``text`` lowercased without its final dot, if every label is LDH."""
    name = text.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise BadName(f"{what} is empty")
    if _is_ip_address(name):
        raise BadName(f"{text!r} is an IP address, not a {what}")
    if not name.isascii():
        try:
            suggestion = name.encode("idna").decode()
        except UnicodeError:
            raise BadName(f"{text!r} is not a valid {what}") from None
        raise BadName(f"{text!r}: give the {what} in ASCII (its A-label is {suggestion})")
    if len(name) > MAX_NAME_OCTETS:
        raise BadName(f"{what} {text!r} is longer than {MAX_NAME_OCTETS} octets")
    for label in name.split("."):
        if not label:
            raise BadName(f"{what} {text!r} has an empty label")
        if len(label) > MAX_LABEL_OCTETS:
            raise BadName(f"{what} {text!r}: label {label!r} is over {MAX_LABEL_OCTETS} octets")
        if not _LABEL_RE.fullmatch(label):
            raise BadName(
                f"{what} {text!r}: label {label!r} must be letters, digits and inner hyphens"
            )
    return name


def check_domain(text: str, *, force: bool = False) -> str:
    """The mail domain ``text`` names, lowercased; refuses what is not one."""
    name = _ldh_name(text, "domain name")
    if force:
        return name
    if "." not in name:
        raise BadName(f"{name} is a single label, not a mail domain (use --force if you mean it)")
    if _public_suffixes().is_public(name):
        raise BadName(
            f"{name} is a public suffix (publicsuffix.org): mail domains are registered "
            "under one (use --force if you mean it)"
        )
    return name


def check_hostname(text: str) -> str:
    """A fully-qualified host name (RFC 5321 §2.3.5), lowercased."""
    name = _ldh_name(text, "host name")
    if "." not in name:
        raise BadName(
            f"host name {name!r} is a single label: mail needs a fully-qualified name "
            "that resolves, such as mail.example.org"
        )
    return name


def check_account_address(text: str) -> str:
    """``local@domain`` with a Dot-string local part, lowercased (the store folds case)."""
    address = text.strip()
    try:
        mailbox = parse_mailbox(address)
    except AddressError:
        raise BadName(
            f"{text!r} is not a mail address (RFC 5321 §4.1.2: local-part@domain, "
            "the local part letters, digits, dots and !#$%&'*+-/=?^_`{|}~)"
        ) from None
    if not _DOT_STRING_RE.fullmatch(mailbox.local_part):
        raise BadName(f"{text!r}: an account's local part is a dot-atom (no quotes, no UTF-8)")
    if len(mailbox.local_part.encode()) > MAX_LOCAL_PART_OCTETS:
        raise BadName(f"{text!r}: the local part is over {MAX_LOCAL_PART_OCTETS} octets")
    domain = _ldh_name(mailbox.domain, "domain name")
    return f"{mailbox.local_part}@{domain}".lower()


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise MailstackError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return password
