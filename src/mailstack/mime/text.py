"""Decoded body text for RFC 3501 §6.4.4 SEARCH BODY/TEXT and webmail.

Content-Transfer-Encoding (RFC 2045 §6) is undone and the charset applied,
best effort: a wrong charset or broken base64 gives replacement characters,
never an error. HTML is reduced to its text.
"""

from __future__ import annotations

import binascii
import html
import re

from mailstack.mime.encoded_words import charset_decode
from mailstack.mime.part import Part

# Scripts, styles and comments hold no text; they are cut out first. The tag
# pattern stops at the next "<", so scanning stays linear however many
# unclosed tags the input holds.
_HTML_HIDDEN = re.compile(r"<!--|<(script|style)\b", re.IGNORECASE)
_HTML_CLOSE = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in ("script", "style")
}
_HTML_TAG = re.compile(r"<[a-z/!?][^<>]*>", re.IGNORECASE)
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]")


def transfer_decode(body: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding; unknown encodings pass through."""
    name = encoding.strip().lower()
    if name == "base64":
        # RFC 2045 §6.8: characters outside the alphabet are ignored. Padding
        # may also end each of several concatenated encodings, and may be
        # missing; every run between pads is decoded on its own.
        decoded: list[bytes] = []
        for run in _BASE64_JUNK.sub(b"", body).split(b"="):
            if len(run) % 4 == 1:
                run = run[:-1]
            if run:
                decoded.append(binascii.a2b_base64(run + b"=" * (-len(run) % 4)))
        return b"".join(decoded)
    if name == "quoted-printable":
        return binascii.a2b_qp(body)
    return body


def html_text(markup: str) -> str:
    """The text of an HTML document: tags, comments, scripts and styles removed."""
    visible: list[str] = []
    pos = 0
    while True:
        mark = _HTML_HIDDEN.search(markup, pos)
        if mark is None:
            visible.append(markup[pos:])
            break
        visible.append(markup[pos : mark.start()])
        if mark.group(1):
            close = _HTML_CLOSE[mark.group(1).lower()].search(markup, mark.end())
            end = -1 if close is None else close.end()
        else:
            end = markup.find("-->", mark.end())
            end = -1 if end < 0 else end + 3
        if end < 0:
            break
        visible.append(" ")
        pos = end
    return html.unescape(_HTML_TAG.sub(" ", "".join(visible)))


def part_text(raw: bytes, part: Part, limit: int) -> str:
    """The decoded text of one text/* leaf, at most about *limit* characters."""
    body = raw[part.body_start : part.body_end]
    if len(body) > 4 * limit + 4:
        body = body[: 4 * limit + 4]
    text = charset_decode(transfer_decode(body, part.encoding), part.param("charset") or "")
    if part.subtype == "html":
        text = html_text(text)
    return text[:limit]


def searchable_text(raw: bytes, root: Part, cap: int) -> str:
    """The text of every text/* leaf under *root*, joined, capped at *cap* chars."""
    pieces: list[str] = []
    remaining = cap
    for part in root.walk():
        if remaining <= 0:
            break
        if part.maintype != "text" or part.children or part.message is not None:
            continue
        text = part_text(raw, part, remaining)
        pieces.append(text)
        remaining -= len(text) + 1
    return "\n".join(pieces)[:cap]
