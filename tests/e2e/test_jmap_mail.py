"""JMAP mail end to end with a client we did not write (jmapc, over HTTPS)
beside IMAP (imaplib): Mailbox, Thread, Email/get, Email/parse and
SearchSnippet, and state shared both ways (a flag set over IMAP shows in
Email/changes and Mailbox/changes; a keyword set over JMAP shows in IMAP
FETCH FLAGS)."""

from __future__ import annotations

import asyncio
import imaplib
import re
from pathlib import Path
from typing import Any

import jmapc
import pytest
from jmapc import Ref
from jmapc.methods import (
    EmailChanges,
    EmailGet,
    EmailQuery,
    EmailSet,
    MailboxChanges,
    MailboxGet,
    MailboxSet,
    SearchSnippetGet,
    ThreadGet,
)

USER = "bob@example.org"
PASSWORD = "hungry"

MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: Lunch on Friday\r\n"
    b"Message-ID: <lunch-1@example.com>\r\n"
    b"Date: Fri, 04 Dec 2026 09:00:00 +0100\r\n"
    b"Content-Type: multipart/mixed; boundary=B\r\n"
    b"\r\n"
    b"--B\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Shall we try the cr\xc3\xaaperie at noon?\r\n"
    b"--B\r\n"
    b"Content-Type: text/calendar; name=invite.ics\r\n"
    b"Content-Disposition: attachment; filename=invite.ics\r\n"
    b"\r\n"
    b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    b"--B--\r\n"
)
REPLY = (
    b"From: Bob <bob@example.org>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Subject: Re: Lunch on Friday\r\n"
    b"In-Reply-To: <lunch-1@example.com>\r\n"
    b"\r\n"
    b"Yes!\r\n"
)


@pytest.fixture
async def node(node_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    node = await node_factory(listen=("https", "imap"), hostname="mx.test")
    await node.add_user(USER, PASSWORD)
    # jmapc speaks HTTPS only; trust the node's own certificate (127.0.0.1 is
    # among its names).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(node.config.cert_path))
    return node


def client(node: Any) -> jmapc.Client:
    return jmapc.Client.create_with_password(f"127.0.0.1:{node.port('https')}", USER, PASSWORD)


def imap(node: Any) -> imaplib.IMAP4:
    session = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
    session.login(USER, PASSWORD)
    return session


def imap_append(node: Any, raw: bytes) -> None:
    session = imap(node)
    try:
        status, _ = session.append("INBOX", None, None, raw)
        assert status == "OK"
    finally:
        session.logout()


def imap_store(node: Any, flags: str) -> None:
    session = imap(node)
    try:
        session.select("INBOX")
        status, _ = session.store("1", "+FLAGS", flags)
        assert status == "OK"
    finally:
        session.logout()


def imap_flags(node: Any) -> str:
    session = imap(node)
    try:
        session.select("INBOX", readonly=True)
        status, data = session.fetch("1", "(FLAGS)")
        assert status == "OK"
        return data[0].decode() if isinstance(data[0], bytes) else str(data[0])
    finally:
        session.logout()


def read_inbox(jmap: jmapc.Client) -> tuple[Any, Any, Any]:
    """Mailbox/get, then Email/query + Email/get by result reference."""
    results = jmap.request([
        MailboxGet(ids=None),
        EmailQuery(filter=jmapc.EmailQueryFilterCondition(text="Lunch")),
        EmailGet(ids=Ref("/ids"), fetch_text_body_values=True,
                 properties=["subject", "from", "keywords", "mailboxIds", "threadId",
                             "preview", "textBody", "attachments", "bodyValues", "blobId",
                             "hasAttachment", "sentAt"]),
    ], raise_errors=True)
    return results[0].response, results[1].response, results[2].response


async def test_jmapc_reads_what_imap_appended(node: Any, tmp_path: Path) -> None:
    await asyncio.to_thread(imap_append, node, MESSAGE)
    await asyncio.to_thread(imap_append, node, REPLY)
    jmap = client(node)
    mailboxes, query, emails = await asyncio.to_thread(read_inbox, jmap)
    inbox = next(m for m in mailboxes.data if m.role == "inbox")
    assert inbox.name == "INBOX" and inbox.total_emails == 2 and inbox.unread_emails == 2
    assert {m.role for m in mailboxes.data} >= {"sent", "drafts", "trash", "junk", "archive"}
    assert len(query.ids) == 2
    first = next(e for e in emails.data if e.subject == "Lunch on Friday")
    assert first.mailbox_ids == {inbox.id: True}
    assert first.mail_from[0].email == "alice@example.com"
    assert first.preview.startswith("Shall we try the crêperie")
    assert first.has_attachment is True
    assert [a.name for a in first.attachments] == ["invite.ics"]
    # The attachment's part blob downloads as its decoded octets.
    saved = tmp_path / "invite.ics"
    await asyncio.to_thread(jmap.download_attachment, first.attachments[0], saved)
    assert saved.read_bytes() == b"BEGIN:VCALENDAR\r\nEND:VCALENDAR"
    (text,) = first.text_body
    assert first.body_values[text.part_id].value == "Shall we try the crêperie at noon?"
    # Both emails are one thread, the reply last.
    reply = next(e for e in emails.data if e.subject != "Lunch on Friday")
    assert reply.thread_id == first.thread_id
    thread = await asyncio.to_thread(
        lambda: jmap.request(ThreadGet(ids=[first.thread_id]), raise_errors=True))
    assert thread.data[0].email_ids == [first.id, reply.id]
    snippets = await asyncio.to_thread(lambda: jmap.request(
        SearchSnippetGet(ids=[first.id], filter=jmapc.EmailQueryFilterCondition(
            text="crêperie")), raise_errors=True))
    assert snippets.data[0].preview.startswith("Shall we try the <mark>crêperie</mark> at noon?")


async def test_state_is_shared_between_imap_and_jmap(node: Any) -> None:
    await asyncio.to_thread(imap_append, node, MESSAGE)
    jmap = client(node)
    mailboxes, _, emails = await asyncio.to_thread(read_inbox, jmap)
    inbox = next(m for m in mailboxes.data if m.role == "inbox")
    email = emails.data[0]
    assert email.keywords in ({}, None)

    # IMAP -> JMAP: \Seen set over IMAP is an Email change and a change of
    # the mailbox's counts.
    await asyncio.to_thread(imap_store, node, "(\\Seen)")
    changes = await asyncio.to_thread(lambda: jmap.request([
        EmailChanges(since_state=emails.state),
        MailboxChanges(since_state=mailboxes.state),
        MailboxGet(ids=[inbox.id], properties=["unreadEmails"]),
        EmailGet(ids=[email.id], properties=["keywords"]),
    ], raise_errors=True))
    email_changes, mailbox_changes, counts, keywords = (c.response for c in changes)
    assert email_changes.updated == [email.id]
    assert mailbox_changes.updated == [inbox.id]
    assert counts.data[0].unread_emails == 0
    assert keywords.data[0].keywords == {"$seen": True}

    # JMAP -> IMAP: $flagged set over JMAP is \Flagged in FETCH FLAGS.
    result = await asyncio.to_thread(lambda: jmap.request(
        EmailSet(update={email.id: {"keywords/$flagged": True}}), raise_errors=True))
    assert email.id in (result.updated or {})
    flags = await asyncio.to_thread(imap_flags, node)
    assert re.search(r"\\Flagged", flags) and re.search(r"\\Seen", flags)


async def test_mailbox_set_through_jmapc_is_seen_over_imap(node: Any) -> None:
    jmap = client(node)
    result = await asyncio.to_thread(lambda: jmap.request(
        MailboxSet(create={"new": jmapc.Mailbox(name="Recipes")}), raise_errors=True))
    created = result.created["new"]
    assert created is not None and created.id

    def imap_list() -> list[str]:
        session = imap(node)
        try:
            status, data = session.list()
            assert status == "OK"
            return [line.decode() for line in data if isinstance(line, bytes)]
        finally:
            session.logout()

    assert any(line.endswith('"Recipes"') or line.endswith(" Recipes")
               for line in await asyncio.to_thread(imap_list))
