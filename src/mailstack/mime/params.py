"""MIME structured field values: Content-Type, Content-Disposition, parameters.

RFC 2045 §5.1 (content := type "/" subtype *(";" parameter)), RFC 2183
(Content-Disposition), RFC 2231 (parameter continuations and charsets).
Parsing is lenient: whatever cannot be understood is dropped, never raised.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from mailstack.mime.encoded_words import charset_decode

# RFC 2045 §5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_SEGMENT = re.compile(r"^(.*?)\*(\d+)(\*?)$|^(.*?)(\*)$")
_WSP = " \t\r\n"


def strip_comments(value: str) -> str:
    """Remove RFC 5322 §3.2.2 comments outside quoted strings."""
    if "(" not in value:
        return value
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\" and (quoted or depth):
            escaped = True
            if depth == 0:
                out.append(char)
            continue
        if quoted:
            out.append(char)
            if char == '"':
                quoted = False
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
            if char == '"':
                quoted = True
    return "".join(out)


def _read_value(text: str, pos: int) -> tuple[str, int]:
    """Read a parameter value (quoted-string or token) starting at *pos*."""
    length = len(text)
    while pos < length and text[pos] in _WSP:
        pos += 1
    if pos < length and text[pos] == '"':
        out: list[str] = []
        pos += 1
        while pos < length:
            char = text[pos]
            if char == "\\" and pos + 1 < length:
                out.append(text[pos + 1])
                pos += 2
                continue
            if char == '"':
                pos += 1
                break
            out.append(char)
            pos += 1
        return "".join(out), pos
    end = text.find(";", pos)
    if end < 0:
        end = length
    return text[pos:end].strip(_WSP), end


def _raw_params(text: str, pos: int) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    length = len(text)
    while pos < length:
        semi = text.find(";", pos)
        if semi < 0:
            break
        pos = semi + 1
        eq = text.find("=", pos)
        next_semi = text.find(";", pos)
        if eq < 0 or (0 <= next_semi < eq):
            continue
        name = text[pos:eq].strip(_WSP).lower()
        value, pos = _read_value(text, eq + 1)
        if name and _TOKEN.fullmatch(name):
            params.append((name, value))
    return params


def _join_continuations(raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """RFC 2231 §3, §4: join name*0, name*1*, ... and decode charset'lang'%XX."""
    order: list[str] = []
    plain: dict[str, str] = {}
    segments: dict[str, dict[int, tuple[bool, str]]] = {}
    for name, value in raw:
        match = _SEGMENT.match(name) if "*" in name else None
        if match is None:
            if name not in plain and name not in segments:
                order.append(name)
            plain.setdefault(name, value)
            continue
        if match.group(1) is not None:
            base, index, extended = match.group(1), int(match.group(2)), bool(match.group(3))
        else:
            base, index, extended = match.group(4), 0, True
        if base not in plain and base not in segments:
            order.append(base)
        segments.setdefault(base, {}).setdefault(index, (extended, value))
    result: list[tuple[str, str]] = []
    for name in order:
        if name not in segments:
            result.append((name, plain[name]))
            continue
        parts = segments[name]
        charset = ""
        data = bytearray()
        index = 0
        while index in parts:
            extended, value = parts[index]
            if extended:
                if index == 0:
                    pieces = value.split("'", 2)
                    if len(pieces) == 3:
                        charset, value = pieces[0], pieces[2]
                data += unquote_to_bytes(value)
            else:
                data += value.encode("utf-8")
            index += 1
        if index == 0:
            # A lone name*1 without name*0: keep what the sender wrote.
            if name in plain:
                result.append((name, plain[name]))
            continue
        result.append((name, charset_decode(bytes(data), charset)))
    return result


def parse_params(text: str, pos: int) -> list[tuple[str, str]]:
    """Parameters from *pos* on (a ";" is expected first), names lowercased."""
    raw = _raw_params(text, pos)
    if any("*" in name for name, _ in raw):
        return _join_continuations(raw)
    seen: set[str] = set()
    result: list[tuple[str, str]] = []
    for name, value in raw:
        if name not in seen:
            seen.add(name)
            result.append((name, value))
    return result


def parse_content_type(value: str) -> tuple[str, str, list[tuple[str, str]]] | None:
    """``(maintype, subtype, params)`` lowercased, or None when malformed.

    RFC 2045 §5.2: a malformed Content-Type is treated like a missing one.
    """
    value = strip_comments(value)
    slash = value.find("/")
    if slash < 0:
        return None
    semi = value.find(";")
    if 0 <= semi < slash:
        return None
    end = semi if semi >= 0 else len(value)
    maintype = value[:slash].strip(_WSP).lower()
    subtype = value[slash + 1 : end].strip(_WSP).lower()
    if not _TOKEN.fullmatch(maintype) or not _TOKEN.fullmatch(subtype):
        return None
    return maintype, subtype, parse_params(value, end)


def parse_disposition(value: str) -> tuple[str, list[tuple[str, str]]] | None:
    """RFC 2183 §2: ``(type, params)`` with the type lowercased, or None."""
    value = strip_comments(value)
    semi = value.find(";")
    end = semi if semi >= 0 else len(value)
    kind = value[:end].strip(_WSP).lower()
    if not _TOKEN.fullmatch(kind):
        return None
    return kind, parse_params(value, end)


def parse_language(value: str) -> list[str] | None:
    """RFC 3282 §2: a comma-separated list of language tags."""
    tags = [tag.strip(_WSP) for tag in strip_comments(value).split(",")]
    tags = [tag for tag in tags if tag]
    return tags or None
