"""JMAP keywords and IMAP flags are one set (RFC 8621 §4.1.1).

Four IMAP system flags appear with ``$`` in place of ``\\``: ``$draft``,
``$seen``, ``$flagged``, ``$answered``. ``\\Recent`` is not exposed, and an
email flagged ``\\Deleted`` "MUST NOT be visible via JMAP". Keywords are
case-insensitive; we hand them out lowercase.
"""

from __future__ import annotations

from collections.abc import Iterable

DELETED = "\\Deleted"
_SYSTEM = {
    "\\Draft": "$draft",
    "\\Seen": "$seen",
    "\\Flagged": "$flagged",
    "\\Answered": "$answered",
}
_FLAG_OF = {keyword: flag for flag, keyword in _SYSTEM.items()}
_HIDDEN = frozenset({"\\recent", "\\deleted"})
# RFC 8621 §4.1.1: 1-255 characters of %x21-7e, none of ( ) { ] % * " \
_FORBIDDEN = frozenset('(){]%*"\\')


def is_keyword(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 255
        and all("\x21" <= c <= "\x7e" and c not in _FORBIDDEN for c in value)
    )


def visible(flags: Iterable[str]) -> bool:
    """False for an email JMAP must not show (flagged \\Deleted)."""
    return DELETED not in flags


def keyword_of(flag: str) -> str | None:
    """The JMAP keyword of an IMAP flag; None for \\Recent and \\Deleted."""
    system = _SYSTEM.get(flag)
    if system is not None:
        return system
    if flag.lower() in _HIDDEN or flag.startswith("\\"):
        return None
    return flag.lower()


def keywords_of(flags: Iterable[str]) -> dict[str, bool]:
    """The ``keywords`` property of an email with these flags."""
    out: dict[str, bool] = {}
    for flag in flags:
        keyword = keyword_of(flag)
        if keyword is not None:
            out[keyword] = True
    return out


def flag_of(keyword: str) -> str:
    """The IMAP flag a (valid) keyword is stored as."""
    lowered = keyword.lower()
    return _FLAG_OF.get(lowered, lowered)


def has_keyword(flags: Iterable[str], keyword: str) -> bool:
    """Whether an email with these flags has the keyword (case-insensitive)."""
    wanted = keyword.lower()
    return any(keyword_of(flag) == wanted for flag in flags)
