"""SearchSnippet/get (RFC 8621 §5).

The terms come from the filter's ``text``, ``subject`` and ``body``
conditions (not those under NOT), matched as Email/query matches them
(``email_query.TextQuery``: words and "quoted phrases", case-insensitive).
A snippet's ``subject`` is the whole subject and its ``preview`` up to 255
characters of body text around the first match, each HTML-escaped with the
matches in ``<mark>``; null when nothing in it matches.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from mailstack.jmap import ids, sharing
from mailstack.jmap.email_query import MAIL, Query, TextQuery, invalid, store_of
from mailstack.jmap.keywords import visible
from mailstack.jmap.method import MAX_FILTER_DEPTH, Args, Call, Method, check_objects_in_get

if TYPE_CHECKING:
    from mailstack.mime import ParsedMessage

PREVIEW_LENGTH = 255  # §5: "MUST NOT be more than 255 characters in length"


def filter_terms(spec: object, depth: int = 0) -> tuple[list[str], list[str]]:
    """The terms to highlight in the subject and in the body."""
    subject: list[str] = []
    body: list[str] = []
    if not isinstance(spec, dict) or depth > MAX_FILTER_DEPTH:
        return subject, body
    if "operator" in spec:
        if spec.get("operator") != "NOT" and isinstance(spec.get("conditions"), list):
            for condition in spec["conditions"]:
                more_subject, more_body = filter_terms(condition, depth + 1)
                subject += more_subject
                body += more_body
        return subject, body
    for name in ("text", "subject", "body"):
        value = spec.get(name)
        if isinstance(value, str):
            terms = list(TextQuery.parse(value).terms)
            if name != "body":
                subject += terms
            if name != "subject":
                body += terms
    return subject, body


def highlight(text: str, terms: list[str], limit: int | None = None) -> str | None:
    """``text`` HTML-escaped with each match of a term in ``<mark>``; None
    when none matches. With ``limit``, at most that many characters of
    text, from a little before the first match."""
    spans = TextQuery(tuple(terms)).spans(text)
    if not spans:
        return None
    if limit is not None and len(text) > limit:
        start = max(0, min(spans[0][0] - limit // 4, len(text) - limit))
        text = text[start : start + limit]
        spans = [(s - start, e - start) for s, e in spans if s >= start and e <= start + limit]
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(html.escape(text[pos:start], quote=False))
        out.append(f"<mark>{html.escape(text[start:end], quote=False)}</mark>")
        pos = end
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


async def search_snippet_get(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    spec = args.get("filter")
    if spec is not None:
        Query.from_args({"filter": spec})  # the same checks as Email/query
    email_ids = args.get("emailIds")
    if not isinstance(email_ids, list) or not all(isinstance(i, str) for i in email_ids):
        raise invalid("emailIds must be a list of ids")
    check_objects_in_get(call, len(email_ids))
    subject_terms, body_terms = filter_terms(spec)
    store = store_of(call)
    numbers = {jmap_id: ids.decode(ids.EMAIL, jmap_id) for jmap_id in dict.fromkeys(email_ids)}
    found = {n: m for n, m in (await store.emails_by_id(
        account, [n for n in numbers.values() if n is not None])).items()
        if reach.emails_visible(m.mailbox_id)}
    by_mailbox: dict[int, list[int]] = {}
    for shown in found.values():
        if visible(shown.flags):
            by_mailbox.setdefault(shown.mailbox_id, []).append(shown.uid)
    parses: dict[tuple[int, int], ParsedMessage] = {}
    if subject_terms or body_terms:
        for mailbox_id, uids in by_mailbox.items():
            for uid, stored in (await store.messages_parsed(mailbox_id, uids)).items():
                parses[mailbox_id, uid] = stored
    listed: list[Args] = []
    not_found: list[str] = []
    for jmap_id, number in numbers.items():
        meta = found.get(number) if number is not None else None
        if meta is None or not visible(meta.flags):
            not_found.append(jmap_id)
            continue
        parsed = parses.get((meta.mailbox_id, meta.uid))
        subject = preview = None
        if parsed is not None:
            subject = highlight(parsed.header_value("subject") or "", subject_terms)
            body = " ".join(parsed.text.split())
            preview = highlight(body, body_terms, PREVIEW_LENGTH)
        listed.append({"emailId": jmap_id, "subject": subject, "preview": preview})
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "list": listed,
        "notFound": not_found or None,
    }


METHODS: dict[str, Method] = {"SearchSnippet/get": Method(MAIL, search_snippet_get)}
