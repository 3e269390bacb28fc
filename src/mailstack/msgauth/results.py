"""The Authentication-Results header field (RFC 8601).

``header()`` writes one field, folded, with the receiving host as
authserv-id; ``strip_ours()`` removes fields that claim our authserv-id from
an incoming message, as RFC 8601 §5 requires of a border MTA, so a sender
cannot forge our verdicts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailstack.msgauth.dkim import DkimResult
from mailstack.msgauth.dmarc import DmarcResult
from mailstack.msgauth.spf import SpfResult

# RFC 2045 token characters: what a property value may be without quotes.
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~@]+\Z")
_FIELD = re.compile(rb"authentication-results[ \t]*:", re.IGNORECASE)


def _value(text: str) -> str:
    """RFC 8601 §2.2 pvalue: a token as is, anything else a quoted-string."""
    if text and _TOKEN.match(text) and text.isascii():
        return text
    cleaned = "".join(c for c in text if c.isprintable() and c.isascii())
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    cleaned = "".join(c for c in text if c.isprintable() and c.isascii() and c not in "()\\")
    return f" ({cleaned[:120]})" if cleaned else ""


def header(
    authserv_id: str,
    *,
    spf: SpfResult | None = None,
    spf_identity: str = "",
    helo: str = "",
    dkim: Sequence[DkimResult] = (),
    dmarc: DmarcResult | None = None,
) -> bytes:
    """One Authentication-Results field, CRLF-terminated; "none" when nothing ran."""
    results = []
    if spf is not None:
        # RFC 8601 §2.7.2: smtp.mailfrom names the checked identity.
        prop = f"smtp.mailfrom={_value(spf_identity)}" if spf_identity else ""
        if helo:
            prop += f" smtp.helo={_value(helo)}"
        results.append(f"spf={spf.result}{_comment(spf.problem)} {prop}".rstrip())
    for signature in dkim:
        props = []
        if signature.domain:
            props.append(f"header.d={_value(signature.domain)}")
        if signature.selector:
            props.append(f"header.s={_value(signature.selector)}")
        if signature.algorithm:
            props.append(f"header.a={_value(signature.algorithm)}")
        if signature.b:
            # RFC 6008 §4: the first 8 characters of b= tell signatures apart.
            props.append(f"header.b={_value(signature.b)}")
        problem = signature.problem if signature.result != "pass" else ""
        results.append(f"dkim={signature.result}{_comment(problem)} " + " ".join(props))
    if spf is not None and not dkim:
        results.append("dkim=none")
    if dmarc is not None:
        comment = f" (p={dmarc.policy} dis={dmarc.disposition})"
        prop = f" header.from={_value(dmarc.header_from)}" if dmarc.header_from else ""
        results.append(f"dmarc={dmarc.result}{comment}{prop}")
    if not results:
        results.append("none")
    return ("Authentication-Results: " + authserv_id + ";\r\n\t" + ";\r\n\t".join(results)).encode(
        "ascii", "replace"
    ) + b"\r\n"


def _authserv_id(value: bytes) -> bytes:
    text = re.sub(rb"\([^)]*\)", b"", value)
    return text.split(b";", 1)[0].strip().split()[0].lower() if text.strip() else b""


def strip_ours(message: bytes, authserv_id: str) -> bytes:
    """``message`` without header fields Authentication-Results claiming ``authserv_id``."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return message
    head, body = message[: end + 2], message[end + 2 :]
    ours = authserv_id.lower().encode()
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    kept = []
    for field in fields:
        match = _FIELD.match(field)
        if match and _authserv_id(field[match.end() :]) == ours:
            continue
        kept.append(field)
    if len(kept) == len(fields):
        return message
    return b"".join(kept) + body
