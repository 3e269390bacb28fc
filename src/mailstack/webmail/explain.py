"""Explain this message: the path it took and what its authentication
checks found, in plain words (the webmail's "Explain this message" panel).

* ``Received:`` fields (RFC 5321 §4.4) are read newest first, as each hop
  puts its own on top, and turned into the hops oldest first: who handed the
  message to whom, when, with which protocol (RFC 3848: ``ESMTPS`` is SMTP
  over TLS, ``ESMTPA`` authenticated, ``ESMTPSA`` both; RFC 6531's
  ``UTF8SMTP*`` alike), and how long it waited since the hop before.
* ``Authentication-Results:`` (RFC 8601) fields are read for SPF (RFC 7208),
  DKIM (RFC 6376) and DMARC (RFC 7489): the result, what was checked
  (``smtp.mailfrom``, ``header.d``, ``header.from``) and a sentence saying
  what it means. Only fields written by ``trusted`` hosts count (RFC 8601
  §5: a sender can write any field it likes above its own hop).

Nothing here trusts the message: whatever does not parse is shown as what it
says, never an error.
"""

from __future__ import annotations

import dataclasses
import email.utils
import re
from dataclasses import dataclass, field
from datetime import datetime

_FROM = re.compile(r"\bfrom\s+(\S+)(?:\s+\(([^)]*)\))?", re.IGNORECASE)
_BY = re.compile(r"\bby\s+(\S+)", re.IGNORECASE)
_WITH = re.compile(r"\bwith\s+([A-Za-z0-9-]+)", re.IGNORECASE)
_ID = re.compile(r"\bid\s+(\S+?);?(?:\s|$)", re.IGNORECASE)
_FOR = re.compile(r"\bfor\s+<?([^\s>;]+)>?", re.IGNORECASE)
_IP = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_TLS_COMMENT = re.compile(r"\b(TLSv1(?:\.[0-3])?|TLS1_[0-3]|SSLv3)\b", re.IGNORECASE)

_PROTOCOLS = {
    "SMTP": ("SMTP", False, False),
    "ESMTP": ("SMTP", False, False),
    "ESMTPA": ("SMTP", False, True),
    "ESMTPS": ("SMTP", True, False),
    "ESMTPSA": ("SMTP", True, True),
    "LMTP": ("LMTP", False, False),
    "LMTPA": ("LMTP", False, True),
    "LMTPS": ("LMTP", True, False),
    "LMTPSA": ("LMTP", True, True),
    "UTF8SMTP": ("SMTP", False, False),
    "UTF8SMTPA": ("SMTP", False, True),
    "UTF8SMTPS": ("SMTP", True, False),
    "UTF8SMTPSA": ("SMTP", True, True),
    "HTTP": ("HTTP", False, False),
    "HTTPS": ("HTTP", True, False),
    "LOCAL": ("local", False, False),
}


@dataclass(frozen=True, slots=True)
class Hop:
    """One hand-over: ``by`` received the message from ``from_host``."""

    from_host: str  # the name the sender gave (HELO/EHLO), "" if none
    from_ip: str
    by: str
    protocol: str  # as written (ESMTPS, ...)
    tls: bool | None  # None: the field does not say
    authenticated: bool
    when: datetime | None
    delay: float | None  # seconds since the hop before, when both have times
    id: str
    recipient: str
    raw: str

    def sentence(self) -> str:
        sender = self.from_host or "an unnamed host"
        if self.from_ip:
            sender += f" [{self.from_ip}]"
        how = self.protocol or "an unnamed protocol"
        security = {
            True: "encrypted with TLS",
            False: "not encrypted",
            None: "encryption not recorded",
        }[self.tls]
        auth = ", the sender logged in" if self.authenticated else ""
        wait = ""
        if self.delay is not None:
            wait = f", {_duration(self.delay)} after the hop before"
        return (
            f"{self.by or 'a host'} received it from {sender} over {how} ({security}{auth}){wait}."
        )


@dataclass(frozen=True, slots=True)
class Check:
    """One authentication result."""

    method: str  # spf, dkim, dmarc
    result: str  # pass, fail, softfail, neutral, none, temperror, permerror, ...
    properties: dict[str, str]
    reason: str
    by: str  # the authserv-id that wrote it

    def sentence(self) -> str:
        return _explain(self)


@dataclass
class Explanation:
    hops: list[Hop] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    total_delay: float | None = None

    def summary(self) -> list[str]:
        lines = [hop.sentence() for hop in self.hops]
        lines += [check.sentence() for check in self.checks]
        return lines


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0)
    if seconds < 1:
        return "under a second"
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def _unfold(value: str) -> str:
    return re.sub(r"\s+", " ", value.replace("\r\n", " ").replace("\n", " ")).strip()


def _strip_comments(text: str) -> str:
    out, depth = [], 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


def parse_received(value: str) -> Hop:
    text = _unfold(value)
    clauses, _, date_text = text.rpartition(";")
    if not clauses:
        clauses, date_text = text, ""
    when = None
    try:
        when = email.utils.parsedate_to_datetime(date_text.strip()) if date_text.strip() else None
    except (TypeError, ValueError, IndexError):
        when = None
    from_match = _FROM.search(clauses)
    from_host = from_match.group(1) if from_match else ""
    comment = (from_match.group(2) or "") if from_match else ""
    ip_match = _IP.search(comment) or _IP.search(from_host)
    if from_host.startswith("["):
        from_host = ""
    bare = _strip_comments(clauses)
    by_match = _BY.search(bare)
    with_match = _WITH.search(bare)
    protocol = with_match.group(1).upper() if with_match else ""
    _kind, tls, auth = _PROTOCOLS.get(protocol, (protocol, None, False))
    if tls is False and _TLS_COMMENT.search(clauses):
        tls = True  # "with ESMTP (TLSv1.3 ...)" as some servers write it
    id_match = _ID.search(bare)
    for_match = _FOR.search(bare)
    return Hop(
        from_host=from_host,
        from_ip=ip_match.group(1) if ip_match else "",
        by=by_match.group(1) if by_match else "",
        protocol=protocol,
        tls=tls,
        authenticated=auth,
        when=when,
        delay=None,
        id=id_match.group(1) if id_match else "",
        recipient=for_match.group(1) if for_match else "",
        raw=text,
    )


def hops(received: list[str]) -> list[Hop]:
    """The hops oldest first, each with its delay since the one before."""
    parsed = [parse_received(value) for value in reversed(received)]
    out = []
    previous: datetime | None = None
    for hop in parsed:
        delay = None
        if hop.when is not None and previous is not None:
            delay = (hop.when - previous).total_seconds()
        if hop.when is not None:
            previous = hop.when
        out.append(dataclasses.replace(hop, delay=delay))
    return out


_RESULT = re.compile(r"^\s*([a-z0-9-]+)\s*=\s*([a-z]+)(.*)$", re.IGNORECASE | re.DOTALL)
_PROPERTY = re.compile(r"\b([a-z]+\.[a-z0-9-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)
_REASON = re.compile(r"\breason\s*=\s*(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)


def parse_authentication_results(value: str) -> list[Check]:
    """RFC 8601 §2.2: ``authserv-id [version]; method=result props; ...``."""
    text = _unfold(value)
    parts = _split_top(text)
    if not parts:
        return []
    by = _strip_comments(parts[0]).strip().split(" ")[0]
    checks = []
    for part in parts[1:]:
        match = _RESULT.match(part)
        if not match:
            continue
        method, result, rest = match.group(1).lower(), match.group(2).lower(), match.group(3)
        if method not in ("spf", "dkim", "dmarc", "arc", "iprev", "auth"):
            continue
        comment = ""
        comment_match = re.search(r"\(([^)]*)\)", rest)
        if comment_match:
            comment = comment_match.group(1)
        reason_match = _REASON.search(rest)
        reason = reason_match.group(1).strip('"') if reason_match else comment
        properties = {
            name.lower(): val.strip('"') for name, val in _PROPERTY.findall(_strip_comments(rest))
        }
        checks.append(Check(method, result, properties, reason, by))
    return checks


def _split_top(text: str) -> list[str]:
    """Split on ';' outside comments and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == '"' and not depth:
            quoted = not quoted
        elif char == "(" and not quoted:
            depth += 1
        elif char == ")" and depth and not quoted:
            depth -= 1
        if char == ";" and not depth and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _explain(check: Check) -> str:
    p = check.properties
    if check.method == "spf":
        domain = p.get("smtp.mailfrom", "").rpartition("@")[2] or p.get("smtp.helo", "?")
        meaning = {
            "pass": f"the sending server is one that {domain} lists as allowed to send its mail",
            "fail": f"{domain} says the sending server may NOT send its mail",
            "softfail": f"{domain} says the sending server is probably not one of its own",
            "neutral": f"{domain} does not say whether the sending server may send for it",
            "none": f"{domain} publishes no SPF record",
            "temperror": "the SPF check could not finish (a DNS error), so it proves nothing",
            "permerror": f"{domain}'s SPF record is broken, so it proves nothing",
        }.get(check.result, f"the result was {check.result}")
        return f"SPF {check.result}: {meaning}."
    if check.method == "dkim":
        domain = p.get("header.d", "?")
        meaning = {
            "pass": f"a signature by {domain} checks out: {domain} sent it, unchanged since",
            "fail": f"a signature by {domain} does not check out: changed on the way, or forged",
            "neutral": "a signature could not be checked",
            "none": "the message is not signed",
            "temperror": "the signing key could not be fetched: the signature proves nothing yet",
            "permerror": "the signature is malformed or its key is unusable",
            "policy": "the signature was not accepted by local policy",
        }.get(check.result, f"the result was {check.result}")
        return f"DKIM {check.result}: {meaning}."
    if check.method == "dmarc":
        domain = p.get("header.from", "?")
        meaning = {
            "pass": f"the From: domain {domain} is proven by SPF or DKIM for the same domain",
            "fail": (
                f"nothing proves the From: domain {domain} (neither SPF nor DKIM passed for it):"
                " the sender may be pretending"
            ),
            "none": f"{domain} publishes no DMARC policy",
            "temperror": "the DMARC check could not finish (a DNS error)",
            "permerror": f"{domain}'s DMARC record is broken",
        }.get(check.result, f"the result was {check.result}")
        return f"DMARC {check.result}: {meaning}."
    return f"{check.method.upper()} {check.result}."


def explain(
    received: list[str], authentication_results: list[str], trusted: set[str] | None = None
) -> Explanation:
    """The explanation of a message from its Received: and
    Authentication-Results: fields (each list in header order, newest first).
    ``trusted``: the authserv-ids whose results count (None: all)."""
    path = hops(received)
    checks = []
    for value in authentication_results:
        for check in parse_authentication_results(value):
            if trusted is None or check.by.lower() in trusted:
                checks.append(check)
    times = [h.when for h in path if h.when is not None]
    total = (times[-1] - times[0]).total_seconds() if len(times) >= 2 else None
    return Explanation(path, checks, total)
