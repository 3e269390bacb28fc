"""Mailbox access rights as RFC 4314 letters, shared by IMAP ACL, the
``mailstack share`` command and JMAP sharing (RFC 8621 §2, RFC 9670).

The rights we grant are ``lrswipkxtea`` (RFC 4314 §2.1). ``c`` and ``d`` are
the virtual rights of RFC 2086 (§2.1.1); we take the first reading the RFC
gives, the one its own examples use: ``c`` is ``k`` and ``x``, ``d`` is ``e``
and ``t``. A ``c`` or ``d`` a client sends is expanded before anything is
stored, and a rights list we show carries ``c`` (``d``) when any member of
it is granted. No rights are tied together, and digits (site-defined rights)
are not offered, so they are unrecognized (BAD, §3.1).

An ACL identifier is an account address (as the store folds it) or
``anyone``; the owner of a mailbox has every right, implicitly (§2: an
implementation MAY always grant rights to particular identifiers).
"""

from __future__ import annotations

import stringprep
import unicodedata

__all__ = [
    "ANYONE",
    "OWNER_RIGHTS",
    "RIGHTS",
    "VIRTUAL",
    "BadRights",
    "apply_modification",
    "flag_right",
    "has",
    "normalize",
    "saslprep",
    "show",
]

# RFC 4314 §2.1, in the RFC's order.
RIGHTS = "lrswipkxtea"
OWNER_RIGHTS = RIGHTS
ANYONE = "anyone"
VIRTUAL = {"c": "kx", "d": "et"}  # §2.1.1, the "former group"


class BadRights(ValueError):
    """A rights string with a letter we do not recognize (RFC 4314 §3.1: BAD)."""


def normalize(text: str) -> str:
    """The real rights ``text`` names, c and d expanded, in canonical order
    (RFC 4314 §2.1 order); BadRights for an unknown character."""
    granted: set[str] = set()
    for ch in text:
        if ch in VIRTUAL:
            granted.update(VIRTUAL[ch])
        elif ch in RIGHTS:
            granted.add(ch)
        elif ch.isascii() and ch.isupper():
            raise BadRights("Uppercase rights are not allowed")
        else:
            raise BadRights(f"The {ch!r} right is not supported")
    return "".join(r for r in RIGHTS if r in granted)


def apply_modification(current: str, modification: str) -> str:
    """RFC 4314 §3.1 SETACL: ``+rights`` adds, ``-rights`` removes, anything
    else replaces; the resulting real rights."""
    if modification.startswith("+"):
        return normalize(current + normalize(modification[1:]))
    if modification.startswith("-"):
        gone = set(normalize(modification[1:]))
        return "".join(r for r in normalize(current) if r not in gone)
    return normalize(modification)


def show(rights: str) -> str:
    """Rights as sent in ACL and MYRIGHTS responses: the real ones plus c and d
    when any of their members is granted (RFC 4314 §2.1.1 MUST)."""
    real = normalize(rights)
    virtual = "".join(v for v, members in VIRTUAL.items() if set(members) & set(real))
    return real + virtual


def has(rights: str, needed: str) -> bool:
    return all(r in rights for r in needed)


def flag_right(flag: str) -> str:
    """The right that sets or clears a flag (RFC 4314 §4: t for \\Deleted,
    s for \\Seen, w for every other flag and keyword)."""
    return {"\\seen": "s", "\\deleted": "t"}.get(flag.lower(), "w")


def saslprep(text: str) -> str | None:
    """RFC 4013 SASLprep (stored strings), as RFC 4314 §3 asks of identifiers;
    None when the string is refused (prohibited characters, bad bidi)."""
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21,
        stringprep.in_table_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,  # unassigned code points: refused for stored strings
    )
    if any(test(ch) for ch in prepared for test in prohibited):
        return None
    # RFC 3454 §6: bidirectional text rules.
    rtl = [stringprep.in_table_d1(ch) for ch in prepared]
    if any(rtl):
        if any(stringprep.in_table_d2(ch) for ch in prepared):
            return None
        if not (rtl[0] and rtl[-1]):
            return None
    return prepared
