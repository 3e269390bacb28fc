"""IMAP URLs (RFC 5092) naming a message or a part of one, with the
URLAUTH components of RFC 4467 §3; no I/O.

Forms read here (keys and mechanism names are case-insensitive)::

    imap://user;AUTH=*@host:143/INBOX;UIDVALIDITY=9/;UID=3/;SECTION=1.2/;PARTIAL=0.100
        ;EXPIRE=2026-12-07T12:00:00Z;URLAUTH=submit+user:internal:<hex>
    /INBOX;UIDVALIDITY=9/;UID=3          (from the server root: CATENATE)
    ;UID=3/;SECTION=1                    (the selected mailbox: CATENATE)

``parse`` returns an ``ImapUrl`` or raises ``BadUrl``. The URLAUTH rump
(RFC 4467 §2: the URL up to and including the access identifier) is kept
exactly as sent, since the verifier is computed over it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

from mailstack.imap.proto.parser import canonical_inbox

__all__ = ["ACCESS_KINDS", "BadUrl", "ImapUrl", "MAX_URL", "parse"]

# A URL longer than this is refused before it is looked at.
MAX_URL = 8192
ACCESS_KINDS = ("anonymous", "authuser", "user", "submit")

_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)\Z")
_MECHANISM = re.compile(r"[A-Za-z0-9.-]+\Z")
_TOKEN = re.compile(r"[0-9A-Fa-f]{32,}\Z")  # RFC 4467 §9: enc-urlauth = 32*HEXDIG
# RFC 3986 characters a URL may hold; anything else (space, quote, 8-bit) is not a URL.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*\Z")


class BadUrl(ValueError):
    """Not an IMAP URL naming a message or part of one."""


@dataclass(frozen=True, slots=True)
class ImapUrl:
    host: str | None  # None: a relative URL
    user: str | None  # the mailbox owner's name (iuserinfo), decoded
    mailbox: str | None  # None: the selected mailbox
    uidvalidity: int | None
    uid: int
    section: str | None
    partial: tuple[int, int | None] | None  # offset, length
    expire: datetime | None = None
    access: str | None = None  # one of ACCESS_KINDS
    access_user: str | None = None  # the NAME of user+NAME, submit+NAME
    rump: str | None = None  # the URL through ";URLAUTH=access", as sent
    mechanism: str | None = None  # upper case
    token: str | None = None  # lower case hex


def parse(text: str) -> ImapUrl:
    if len(text) > MAX_URL or not _URL_CHARS.match(text):
        raise BadUrl
    body = text
    auth = _NO_URLAUTH
    expire = None
    cut = text.upper().rfind(";URLAUTH=")
    if cut >= 0:
        auth = _urlauth(text, cut)
        body = text[:cut]
        expire_at = body.upper().rfind(";EXPIRE=")
        if expire_at >= 0:
            expire = _date_time(body[expire_at + 8 :])
            body = body[:expire_at]
    host = user = None
    rest = body
    if rest[:7].lower() == "imap://":
        authority, slash, path = rest[7:].partition("/")
        userinfo, at, hostport = authority.rpartition("@")
        host = _host(hostport)
        if not slash or not host:
            raise BadUrl
        if at:
            # RFC 5092 §3.2: enc-user [";AUTH=" ...]; the AUTH part is a
            # hint for logging in, which a URLAUTH URL does not need.
            user = _decode(userinfo.split(";", 1)[0]) or None
        rest = "/" + path
    mailbox = None
    uidvalidity = None
    if rest.startswith("/"):
        at_uid = rest.upper().find("/;UID=")
        if at_uid < 0:
            raise BadUrl  # a mailbox, not a message: nothing to fetch
        mailbox_part, rest = rest[1:at_uid], rest[at_uid + 1 :]
        encoded, _sep, params = mailbox_part.partition(";")
        mailbox = canonical_inbox(_decode(encoded))
        if not mailbox:
            raise BadUrl
        if params:
            key, _eq, value = params.partition("=")
            if key.upper() != "UIDVALIDITY" or not _number(value):
                raise BadUrl
            uidvalidity = int(value)
    elif host is not None:
        raise BadUrl
    fields: dict[str, str] = {}
    for segment in rest.split("/"):
        key, eq, value = segment.partition("=")
        name = key[1:].upper()
        if not key.startswith(";") or not eq or name in fields:
            raise BadUrl
        fields[name] = value
    if not set(fields) <= {"UID", "SECTION", "PARTIAL"} or not _number(fields.get("UID", "")):
        raise BadUrl
    section = _decode(fields["SECTION"]) if "SECTION" in fields else None
    partial = _partial(fields["PARTIAL"]) if "PARTIAL" in fields else None
    return ImapUrl(
        host, user, mailbox, uidvalidity, int(fields["UID"]), section, partial, expire, *auth
    )


_Urlauth = tuple[str | None, str | None, str | None, str | None, str | None]
_NO_URLAUTH: _Urlauth = (None, None, None, None, None)


def _urlauth(text: str, cut: int) -> _Urlauth:
    """RFC 4467 §9: ";URLAUTH=" access [":" mechanism ":" enc-urlauth]:
    (access, access_user, rump, mechanism, token)."""
    after = text[cut + 9 :]
    access_text, colon, verifier = after.partition(":")
    rump = text[: cut + 9 + len(access_text)]
    access_user = None
    access = access_text.lower()
    if access not in ("anonymous", "authuser"):
        kind, plus, name = access_text.partition("+")
        access = kind.lower()
        if not plus or access not in ("user", "submit") or not name:
            raise BadUrl
        access_user = _decode(name)
    mechanism = token = None
    if colon:
        mechanism, colon, token = verifier.partition(":")
        if not colon or not _MECHANISM.match(mechanism) or not _TOKEN.match(token):
            raise BadUrl
        mechanism, token = mechanism.upper(), token.lower()
    return access, access_user, rump, mechanism, token


def _date_time(text: str) -> datetime:
    """RFC 4467 §9 expire: an RFC 3339 date-time with its offset."""
    if not _DATE_TIME.match(text):
        raise BadUrl
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError:
        raise BadUrl from None


def _host(hostport: str) -> str:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise BadUrl
        host, port = hostport[1:end], hostport[end + 1 :]
    else:
        host, colon, port = hostport.partition(":")
        port = colon + port
    if port and (port[0] != ":" or not port[1:].isdigit()):
        raise BadUrl
    return _decode(host)


def _decode(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise BadUrl from None


def _digits(text: str) -> bool:
    return text.isdigit() and text.isascii() and len(text) <= 10


def _number(text: str) -> bool:
    """RFC 3501 nz-number."""
    return _digits(text) and int(text) > 0


def _partial(text: str) -> tuple[int, int | None]:
    offset, dot, length = text.partition(".")
    if not _digits(offset) or (dot and not _digits(length)):
        raise BadUrl
    return int(offset), int(length) if dot else None
