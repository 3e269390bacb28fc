"""An RFC 5322 message from a JMAP Email object to create (RFC 8621 §4.6).

``check`` reads the object whole and refuses what §4.6 forbids (each refusal
an ``invalidProperties`` SetError naming the properties); ``blob_ids`` lists
the blobs its parts take their content from; ``build`` writes the message
with the standard ``email`` package: header fields from the convenience
properties and ``header:{name}[:as{form}][:all]``, the body from
``bodyStructure``, or from ``textBody``/``htmlBody``/``attachments``
arranged as §4.1.4 reads them back (multipart/alternative for text and HTML,
multipart/related for inline parts the HTML refers to by cid,
multipart/mixed for attachments).
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.header import Header
from email.message import MIMEPart
from email.utils import format_datetime, formataddr
from typing import Any

from mailstack.jmap import emailview

# 7bit transfer encodings only (quoted-printable or base64 for the rest), so
# the message goes through any relay without 8BITMIME.
POLICY = policy.SMTP.clone(cte_type="7bit")
MAX_PARTS = 1000
MAX_DEPTH = 20

# Convenience properties (RFC 8621 §4.1.3): field name and form.
CONVENIENCE = {
    "messageId": ("Message-ID", emailview.MESSAGE_IDS),
    "inReplyTo": ("In-Reply-To", emailview.MESSAGE_IDS),
    "references": ("References", emailview.MESSAGE_IDS),
    "sender": ("Sender", emailview.ADDRESSES),
    "from": ("From", emailview.ADDRESSES),
    "to": ("To", emailview.ADDRESSES),
    "cc": ("Cc", emailview.ADDRESSES),
    "bcc": ("Bcc", emailview.ADDRESSES),
    "replyTo": ("Reply-To", emailview.ADDRESSES),
    "subject": ("Subject", emailview.TEXT),
    "sentAt": ("Date", emailview.DATE),
}
METADATA = frozenset({"mailboxIds", "keywords", "receivedAt"})
BODY = frozenset({"bodyStructure", "bodyValues", "textBody", "htmlBody", "attachments"})
# Part properties other than header:*, and the header field each stands for.
PART_FIELDS = {
    "type": "content-type",
    "charset": "content-type",
    "name": "content-disposition",
    "disposition": "content-disposition",
    "cid": "content-id",
    "language": "content-language",
    "location": "content-location",
}
PART_PROPERTIES = frozenset({"partId", "blobId", "size", "subParts", *PART_FIELDS})
_JMAP_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
_FOLD = "\r\n "


class Invalid(Exception):
    """An ``invalidProperties`` SetError (RFC 8620 §5.3) naming properties."""

    def __init__(self, description: str, *properties: str) -> None:
        super().__init__(description)
        self.description = description
        self.properties = list(properties)


@dataclass
class _Fields:
    """Header fields in order, by the lowercase names already given."""

    lines: list[tuple[str, str]] = field(default_factory=list)  # (name, value after colon)
    names: set[str] = field(default_factory=set)

    def claim(self, name: str, prop: str) -> None:
        lower = name.lower()
        if lower in self.names:
            # RFC 8621 §4.6: "There MUST NOT be two properties that represent
            # the same header field".
            raise Invalid(f"the {name} header field is given twice", prop)
        self.names.add(lower)


def _strings(value: object, prop: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{prop} must be a list of strings", prop)
    return value


def _no_newline(text: str, prop: str) -> str:
    if "\r" in text or "\n" in text or "\x00" in text:
        raise Invalid(f"{prop} holds a line break", prop)
    return text


def _addresses(value: object, prop: str) -> str:
    if not isinstance(value, list):
        raise Invalid(f"{prop} must be a list of EmailAddress", prop)
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("email"), str):
            raise Invalid(f"{prop}: an EmailAddress needs an email", prop)
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise Invalid(f"{prop}: an EmailAddress name is a string or null", prop)
        email = _no_newline(item["email"], prop)
        out.append(formataddr((_no_newline(name or "", prop), email), charset="utf-8"))
    return ("," + _FOLD).join(out)


def _grouped(value: object, prop: str) -> str:
    if not isinstance(value, list):
        raise Invalid(f"{prop} must be a list of EmailAddressGroup", prop)
    out = []
    for group in value:
        if not isinstance(group, dict) or "addresses" not in group:
            raise Invalid(f"{prop}: an EmailAddressGroup has addresses", prop)
        members = _addresses(group["addresses"], prop)
        name = group.get("name")
        if name is None:
            if members:
                out.append(members)
        elif isinstance(name, str):
            _no_newline(name, prop)
            if not name.isascii():
                label = Header(name, "utf-8").encode()
            elif re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+", name):
                label = name
            else:
                label = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out.append(f"{label}:{' ' + members if members else ''};")
        else:
            raise Invalid(f"{prop}: a group name is a string or null", prop)
    return ("," + _FOLD).join(out)


def _value(form: str, value: object, name: str, prop: str) -> str:
    """One field instance's value as it goes after the colon."""
    if form == emailview.RAW:
        if not isinstance(value, str):
            raise Invalid(f"{prop} must be a string", prop)
        # Only folded lines: every line break continues with white space.
        if re.search(r"\r(?!\n)|(?<!\r)\n|\r\n(?![ \t])|\x00", value):
            raise Invalid(f"{prop} is not a folded header field value", prop)
        return value
    if form == emailview.TEXT:
        if not isinstance(value, str):
            raise Invalid(f"{prop} must be a string", prop)
        text = _no_newline(value, prop)
        charset = "us-ascii" if text.isascii() else "utf-8"
        return " " + Header(text, charset, header_name=name).encode(linesep="\r\n")
    if form == emailview.ADDRESSES:
        return " " + _addresses(value, prop)
    if form == emailview.GROUPED:
        return " " + _grouped(value, prop)
    if form == emailview.MESSAGE_IDS:
        message_ids = [_no_newline(v, prop) for v in _strings(value, prop)]
        if not message_ids or any(not v or re.search(r"[\s<>]", v) for v in message_ids):
            raise Invalid(f"{prop} must hold message ids without angle brackets", prop)
        return " " + _FOLD.join(f"<{v}>" for v in message_ids)
    if form == emailview.DATE:
        if not isinstance(value, str) or not _JMAP_DATE.fullmatch(value):
            raise Invalid(f"{prop} must be a Date", prop)
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(f"{prop} must be a Date", prop) from None
        return " " + format_datetime(when)
    urls = [_no_newline(v, prop) for v in _strings(value, prop)]
    if any(re.search(r"[\s<>]", v) for v in urls):
        raise Invalid(f"{prop} must hold URLs", prop)
    return " " + ("," + _FOLD).join(f"<{v}>" for v in urls)


def _header_property(prop: str, value: object, fields: _Fields) -> None:
    parsed = emailview.header_property(prop)
    if parsed is None:
        raise Invalid(f"{prop} is not a header property allowed here", prop)
    name = prop.split(":")[1]
    if parsed.name == "content-transfer-encoding":
        # RFC 8621 §4.6: "A Content-Transfer-Encoding header field MUST NOT be given."
        raise Invalid("Content-Transfer-Encoding is the server's to choose", prop)
    fields.claim(name, prop)
    if value is None:
        return
    if parsed.all:
        if not isinstance(value, list):
            raise Invalid(f"{prop} must be a list", prop)
        values = value
    else:
        values = [value]
    for item in values:
        fields.lines.append((name, _value(parsed.form, item, name, prop)))


def _email_fields(email: Mapping[str, Any]) -> _Fields:
    fields = _Fields()
    for prop, value in email.items():
        if prop in CONVENIENCE:
            name, form = CONVENIENCE[prop]
            fields.claim(name, prop)
            if value is not None:
                fields.lines.append((name, _value(form, value, name, prop)))
        elif prop.startswith("header:"):
            if prop.split(":")[1].lower().startswith("content-"):
                # RFC 8621 §4.6: "Header fields beginning with Content- MUST
                # NOT be specified on the Email object, only on EmailBodyPart objects."
                raise Invalid("Content-* header fields belong to body parts", prop)
            _header_property(prop, value, fields)
        elif prop == "headers":
            raise Invalid("set each header field as its own property", prop)
        elif prop not in METADATA and prop not in BODY:
            raise Invalid(f"{prop} cannot be set when creating an Email", prop)
    return fields


# -- body parts ----------------------------------------------------------------


@dataclass
class _Body:
    """What building the body needs: the texts and blobs parts refer to."""

    values: dict[str, str]
    blobs: Mapping[str, bytes]
    count: int = 0


def _body_values(email: Mapping[str, Any]) -> dict[str, str]:
    spec = email.get("bodyValues", {})
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise Invalid("bodyValues must map part ids to EmailBodyValue", "bodyValues")
    values = {}
    for part_id, body_value in spec.items():
        if not isinstance(body_value, dict) or not isinstance(body_value.get("value"), str):
            raise Invalid("an EmailBodyValue has a string value", "bodyValues")
        if body_value.get("isEncodingProblem", False) or body_value.get("isTruncated", False):
            # RFC 8621 §4.6: "isEncodingProblem and isTruncated MUST be either false or omitted."
            raise Invalid("isEncodingProblem and isTruncated must be false", "bodyValues")
        values[part_id] = body_value["value"]
    return values


def _part_blobs(part: object, out: list[str]) -> None:
    if isinstance(part, dict):
        if isinstance(part.get("blobId"), str):
            out.append(part["blobId"])
        for child in part.get("subParts") or ():
            _part_blobs(child, out)


def blob_ids(email: Mapping[str, Any]) -> list[str]:
    """The blobs a (checked) Email to create takes content from, in order."""
    out: list[str] = []
    for prop in ("bodyStructure", "textBody", "htmlBody", "attachments"):
        value = email.get(prop)
        for part in value if isinstance(value, list) else [value]:
            _part_blobs(part, out)
    return list(dict.fromkeys(out))


def _type(value: object, default: str, prop: str) -> tuple[str, str]:
    if value is None:
        value = default
    if not isinstance(value, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/"
                                                      r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", value):
        raise Invalid(f"{prop}: type must be a media type", prop)
    maintype, subtype = value.lower().split("/")
    return maintype, subtype


def _leaf(spec: dict[str, Any], body: _Body, prop: str) -> MIMEPart:
    part_id, blob_id = spec.get("partId"), spec.get("blobId")
    part = MIMEPart(policy=POLICY)
    if part_id is not None and blob_id is not None:
        raise Invalid(f"{prop}: a part has a partId or a blobId, not both", prop)
    if part_id is not None:
        if not isinstance(part_id, str) or part_id not in body.values:
            raise Invalid(f"{prop}: partId {part_id!r} is not in bodyValues", prop)
        if "charset" in spec or "size" in spec:
            # RFC 8621 §4.6: charset and size "MUST be omitted if a partId is given".
            raise Invalid(f"{prop}: no charset or size with a partId", prop)
        maintype, subtype = _type(spec.get("type"), "text/plain", prop)
        if maintype != "text":
            raise Invalid(f"{prop}: a part from bodyValues is text/*", prop)
        part.set_content(body.values[part_id], subtype=subtype, charset="utf-8")
    elif isinstance(blob_id, str):
        maintype, subtype = _type(spec.get("type"), "application/octet-stream", prop)
        if maintype == "multipart":
            raise Invalid(f"{prop}: a multipart part has subParts", prop)
        content = body.blobs[blob_id]
        if maintype == "text":
            part.set_content(content, maintype, subtype, cte="base64")
        else:
            part.set_content(content, maintype, subtype)
        charset = spec.get("charset")
        if charset is not None:
            if not isinstance(charset, str) or not re.fullmatch(r"[A-Za-z0-9._:+-]+", charset):
                raise Invalid(f"{prop}: charset must be a charset name", prop)
            part.set_param("charset", charset)
    else:
        raise Invalid(f"{prop}: a part needs a partId or a blobId", prop)
    return part


def _part(spec: object, body: _Body, prop: str, depth: int = 0) -> MIMEPart:
    """A MIME part from an EmailBodyPart to create (RFC 8621 §4.6)."""
    if not isinstance(spec, dict):
        raise Invalid(f"{prop} must hold EmailBodyPart objects", prop)
    body.count += 1
    if body.count > MAX_PARTS or depth > MAX_DEPTH:
        raise Invalid(f"{prop}: too many or too deeply nested parts", prop)
    fields = _Fields()
    for key, value in spec.items():
        if key.startswith("header:"):
            name = key.split(":")[1].lower()
            if name in PART_FIELDS.values() and any(
                p in spec for p, f in PART_FIELDS.items() if f == name
            ):
                raise Invalid(f"{prop}: {key} and a property for the same field", prop)
            if name == "content-type":
                raise Invalid(f"{prop}: give the type property, not {key}", prop)
            try:
                _header_property(key, value, fields)
            except Invalid as exc:
                raise Invalid(f"{prop}: {exc.description}", prop) from None
        elif key == "headers":
            raise Invalid(f"{prop}: set each header field as its own property", prop)
        elif key not in PART_PROPERTIES:
            raise Invalid(f"{prop}: unknown part property {key}", prop)
    sub_parts = spec.get("subParts")
    if sub_parts is not None:
        maintype, subtype = _type(spec.get("type"), "multipart/mixed", prop)
        if maintype != "multipart" or not isinstance(sub_parts, list) or not sub_parts:
            raise Invalid(f"{prop}: subParts belong to a multipart type", prop)
        if "partId" in spec or "blobId" in spec:
            raise Invalid(f"{prop}: a multipart part has no partId or blobId", prop)
        part = MIMEPart(policy=POLICY)
        part["Content-Type"] = f"multipart/{subtype}"
        for child in sub_parts:
            part.attach(_part(child, body, prop, depth + 1))
    else:
        part = _leaf(spec, body, prop)
    _describe(part, spec, prop)
    for name, value in fields.lines:
        part[name] = _header_text(value)
    return part


def _header_text(value: str) -> str:
    # MIMEPart takes the value unfolded; the generator folds it again.
    return re.sub(r"\r\n([ \t])", r"\1", value).strip()


def _describe(part: MIMEPart, spec: dict[str, Any], prop: str) -> None:
    """disposition, name, cid, language and location (RFC 8621 §4.1.4)."""
    disposition, name = spec.get("disposition"), spec.get("name")
    if disposition is not None and not (
        isinstance(disposition, str) and re.fullmatch(r"[A-Za-z0-9!#$&^_.+-]+", disposition)
    ):
        raise Invalid(f"{prop}: disposition must be a token", prop)
    if name is not None:
        if not isinstance(name, str):
            raise Invalid(f"{prop}: name must be a string", prop)
        _no_newline(name, prop)
    if disposition is not None or name is not None:
        del part["Content-Disposition"]
        part["Content-Disposition"] = (disposition or "attachment").lower()
        if name is not None:
            part.set_param("filename", name, header="Content-Disposition")
            part.set_param("name", name)
    cid = spec.get("cid")
    if cid is not None:
        if not isinstance(cid, str) or re.search(r"[\s<>]", cid):
            raise Invalid(f"{prop}: cid must be a Content-ID without angle brackets", prop)
        part["Content-ID"] = f"<{cid}>"
    language = spec.get("language")
    if language is not None:
        part["Content-Language"] = ", ".join(_no_newline(v, prop) for v in _strings(language, prop))
    location = spec.get("location")
    if location is not None:
        if not isinstance(location, str) or re.search(r"\s", location):
            raise Invalid(f"{prop}: location must be a URI", prop)
        part["Content-Location"] = location


def _multipart(subtype: str, parts: list[MIMEPart]) -> MIMEPart:
    if len(parts) == 1:
        return parts[0]
    container = MIMEPart(policy=POLICY)
    container["Content-Type"] = f"multipart/{subtype}"
    for part in parts:
        container.attach(part)
    return container


def _one(email: Mapping[str, Any], prop: str, media: str) -> dict[str, Any] | None:
    value = email.get(prop)
    if value is None:
        return None
    # RFC 8621 §4.6: "If given, textBody MUST contain exactly one body part and
    # it MUST be of type text/plain" (htmlBody: text/html).
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        raise Invalid(f"{prop} must hold exactly one part", prop)
    if (value[0].get("type") or "text/plain").lower() != media:
        raise Invalid(f"{prop} must be {media}", prop)
    return value[0]


def _body(email: Mapping[str, Any], body: _Body) -> MIMEPart:
    if email.get("bodyStructure") is not None:
        if any(email.get(p) is not None for p in ("textBody", "htmlBody", "attachments")):
            raise Invalid(
                "bodyStructure excludes textBody, htmlBody and attachments", "bodyStructure"
            )
        structure = email["bodyStructure"]
        if isinstance(structure, dict):
            overlap = [
                key for key in structure
                if key.startswith("header:") and key.split(":")[1].lower() in _top_names(email)
            ]
            if overlap:
                raise Invalid("bodyStructure repeats a header field of the Email", "bodyStructure")
        return _part(structure, body, "bodyStructure")
    text_spec = _one(email, "textBody", "text/plain")
    html_spec = _one(email, "htmlBody", "text/html")
    attachments = email.get("attachments") or []
    if not isinstance(attachments, list):
        raise Invalid("attachments must be a list of EmailBodyPart", "attachments")
    text = _part(text_spec, body, "textBody") if text_spec is not None else None
    html = _part(html_spec, body, "htmlBody") if html_spec is not None else None
    inline: list[MIMEPart] = []
    mixed: list[MIMEPart] = []
    for spec in attachments:
        part = _part(spec, body, "attachments")
        related = (
            html is not None
            and isinstance(spec, dict)
            and spec.get("cid") is not None
            and (spec.get("disposition") or "inline").lower() == "inline"
        )
        (inline if related else mixed).append(part)
    if html is not None and inline:
        html = _multipart("related", [html, *inline])
    alternatives = [p for p in (text, html) if p is not None]
    if not alternatives:
        empty = MIMEPart(policy=POLICY)
        empty.set_content("", subtype="plain", charset="utf-8")
        alternatives = [empty]
    return _multipart("mixed", [_multipart("alternative", alternatives), *mixed])


def _top_names(email: Mapping[str, Any]) -> set[str]:
    names = {CONVENIENCE[p][0].lower() for p in email if p in CONVENIENCE}
    names.update(p.split(":")[1].lower() for p in email if p.startswith("header:"))
    return names


@dataclass(frozen=True, slots=True)
class Draft:
    """An Email to create, checked: its header fields and its body."""

    fields: _Fields
    values: dict[str, str]
    blob_ids: list[str]


def check(email: object) -> Draft:
    """Read an Email to create; raises Invalid for what §4.6 forbids."""
    if not isinstance(email, dict):
        raise Invalid("an Email to create is an object")
    fields = _email_fields(email)
    values = _body_values(email)
    for prop in ("textBody", "htmlBody", "attachments"):
        if email.get(prop) is not None and not isinstance(email[prop], list):
            raise Invalid(f"{prop} must be a list of EmailBodyPart", prop)
    # The whole structure is checked now, before any blob is read: a blob
    # stands in as empty until build().
    _body(email, _Body(values, defaultdict(bytes)))
    return Draft(fields, values, blob_ids(email))


def build(
    email: Mapping[str, Any], draft: Draft, blobs: Mapping[str, bytes], *, now: datetime,
    hostname: str,
) -> bytes:
    """The message's octets, CRLF line endings. Date and Message-ID are
    added when the Email does not give them (RFC 5322 §3.6: Date is
    required, Message-ID "SHOULD be present")."""
    root = _body(email, _Body(draft.values, blobs))
    lines = list(draft.fields.lines)
    if "date" not in draft.fields.names:
        lines.insert(0, ("Date", " " + format_datetime(now)))
    if "message-id" not in draft.fields.names:
        lines.append(("Message-ID", f" <{uuid.uuid4().hex}@{hostname}>"))
    head = "".join(f"{name}:{value}\r\n" for name, value in lines)
    return head.encode("utf-8") + b"MIME-Version: 1.0\r\n" + root.as_bytes(policy=POLICY)
