"""Address lists as RFC 3501 §7.4.2 ENVELOPE address structures.

RFC 5322 §3.4 address-list (with the §4.4 obsolete forms: routes, empty list
elements, phrases with dots). Group syntax becomes the RFC 3501 markers: a
group start has ``host`` None and ``mailbox`` the group name; the group end
has both None. Display names stay raw (encoded words undecoded), as RFC 3501
requires; quoted strings lose their quotes and escapes.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Address(NamedTuple):
    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None


_TOKEN = re.compile(
    r"""
     (?P<q>"(?:[^"\\]|\\.)*"?)
    |(?P<s>[<>@,;:.])
    |(?P<a>\[(?:[^\]\\]|\\.)*\]?|[^ \t\r\n"()<>@,;:.\[\]\\]+|[^ \t\r\n])
    """,
    re.VERBOSE | re.DOTALL,
)

# A token: (kind, text, start, end). Kinds: "q" quoted, "a" atom or literal,
# or the special character itself.
_Tok = tuple[str, str, int, int]


def _blank_comments(value: str, comments: list[tuple[int, str]]) -> str:
    """Replace RFC 5322 §3.2.2 comments (they nest) by a space each.

    Each outermost comment is added to ``comments`` as (offset of its space
    in the result, its text without the outer parentheses).
    """
    out: list[str] = []
    size = 0  # characters in out
    depth = 0
    quoted = False
    index = 0
    start = 0
    length = len(value)
    while index < length:
        char = value[index]
        if char == "\\" and (quoted or depth):
            if depth == 0:
                out.append(value[index : index + 2])
                size += len(out[-1])
            index += 2
            continue
        if depth:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    comments.append((size, value[start:index].strip()))
                    out.append(" ")
                    size += 1
        elif quoted:
            out.append(char)
            size += 1
            quoted = char != '"'
        elif char == "(":
            depth = 1
            start = index + 1
        else:
            out.append(char)
            size += 1
            quoted = char == '"'
        index += 1
    if depth:
        comments.append((size, value[start:].strip()))
        out.append(" ")
    return "".join(out)


def _tokens(value: str, comments: list[tuple[int, str]]) -> list[_Tok]:
    if "(" in value:
        value = _blank_comments(value, comments)
    return [
        (kind if kind != "s" else match.group(), match.group(), match.start(), match.end())
        for match in _TOKEN.finditer(value)
        if (kind := match.lastgroup) is not None
    ]


def _unquote(text: str) -> str:
    inner = text[1:-1] if len(text) >= 2 and text.endswith('"') else text[1:]
    return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL)


def _phrase(tokens: list[_Tok]) -> str | None:
    """The display name: words with their original spacing, quotes removed."""
    if not tokens:
        return None
    out: list[str] = []
    previous_end = -1
    for kind, text, start, end in tokens:
        if out and start > previous_end:
            out.append(" ")
        out.append(_unquote(text) if kind == "q" else text)
        previous_end = end
    return "".join(out)


def _addr_spec(tokens: list[_Tok]) -> tuple[str | None, str | None, str | None]:
    """``(adl, mailbox, host)`` from the tokens of a route-addr or addr-spec."""
    adl = None
    colon = next((i for i, tok in enumerate(tokens) if tok[0] == ":"), -1)
    if colon >= 0 and tokens and tokens[0][0] in ("@", ","):
        # RFC 5322 §4.4 obs-route: "@a,@b:" before the addr-spec.
        adl = "".join(tok[1] for tok in tokens[:colon])
        tokens = tokens[colon + 1 :]
    at = max((i for i, tok in enumerate(tokens) if tok[0] == "@"), default=-1)
    local = tokens if at < 0 else tokens[:at]
    domain = [] if at < 0 else tokens[at + 1 :]
    mailbox = "".join(tok[1] for tok in local) or None
    host = "".join(tok[1] for tok in domain)
    return adl, mailbox, host


def _mailbox(
    tokens: list[_Tok], angle: list[_Tok] | None, angle_at: int, comment: str | None
) -> Address | None:
    if angle is not None:
        adl, mailbox, host = _addr_spec(angle)
        name = _phrase(tokens[:angle_at]) or None
    else:
        if not tokens:
            return None
        adl, mailbox, host = _addr_spec(tokens)
        # "user@domain (Real Name)": without a phrase, the comment is the
        # display name, as Dovecot gives it and clients show it.
        name = comment
    if mailbox is None and not host:
        return None
    return Address(name, adl, mailbox or "", host)


# The common case, a list of plain mailboxes ("a@b", "<a@b>", "Name <a@b>",
# '"Last, First" <a@b>'), matched whole by one pattern per mailbox: the
# result is what the tokenizer below gives for the same text, at a fraction
# of the cost (every delivered message's From and To go through here).
_ATOM = r'[^ \t\r\n"()<>@,;:.\[\]\\]+'
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_SIMPLE_MAILBOX = re.compile(
    rf"""[ \t]*(?:
        (?:(?P<name>{_ATOM}(?:\ {_ATOM})*|"[^"\\\r\n]*")[ \t]*)?
        <(?P<angle_local>{_DOT_ATOM})@(?P<angle_domain>{_DOT_ATOM})>
       |(?P<local>{_DOT_ATOM})@(?P<domain>{_DOT_ATOM})
    )[ \t]*(?P<sep>,|\Z)""",
    re.VERBOSE,
)


def _simple_address_list(value: str) -> list[Address] | None:
    """The mailboxes of a list made only of plain mailboxes, else None."""
    result: list[Address] = []
    pos = 0
    length = len(value)
    while pos < length:
        match = _SIMPLE_MAILBOX.match(value, pos)
        if match is None:
            return None
        local = match["local"]
        if local is None:
            name = match["name"]
            if name is not None and name.startswith('"'):
                name = name[1:-1]
            result.append(Address(name or None, None, match["angle_local"],
                                  match["angle_domain"]))
        else:
            result.append(Address(None, None, local, match["domain"]))
        pos = match.end()
        if pos == length and match["sep"]:
            return None  # a trailing empty list element: the general parser decides
    return result or None


def parse_address_list(value: str) -> list[Address]:
    """Parse an address list; never raises, skips what is not an address."""
    simple = _simple_address_list(value)
    if simple is not None:
        return simple
    return _parse_address_list(value)


def _parse_address_list(value: str) -> list[Address]:
    comments: list[tuple[int, str]] = []
    tokens = _tokens(value, comments)
    result: list[Address] = []
    in_group = False
    current: list[_Tok] = []
    angle: list[_Tok] | None = None
    angle_at = 0
    index = 0
    count = len(tokens)

    def flush() -> None:
        # The last non-empty comment between the mailbox's first token and
        # the separator that ends it.
        comment = None
        if comments and current and angle is None:
            end = tokens[index][2] if index < count else len(value) + 1
            comment = next(
                (text for at, text in reversed(comments) if current[0][2] < at < end and text),
                None,
            )
            if comment is not None:
                comment = re.sub(r"\\(.)", r"\1", comment, flags=re.DOTALL)
        address = _mailbox(current, angle, angle_at, comment)
        if address is not None:
            result.append(address)

    while index < count:
        token = tokens[index]
        kind = token[0]
        if kind == "<":
            end = index + 1
            while end < count and tokens[end][0] != ">":
                end += 1
            if angle is None:
                angle = tokens[index + 1 : end]
                angle_at = len(current)
            index = end + 1
            continue
        if kind == ",":
            flush()
            current, angle = [], None
        elif kind == ":" and not in_group and angle is None:
            result.append(Address(None, None, _phrase(current) or "", None))
            in_group = True
            current = []
        elif kind == ";" and in_group:
            flush()
            result.append(Address(None, None, None, None))
            in_group = False
            current, angle = [], None
        elif angle is None:
            current.append(token)
        index += 1
    flush()
    if in_group:
        result.append(Address(None, None, None, None))
    return result
