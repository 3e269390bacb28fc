"""The IMAP URL parser (RFC 5092, with RFC 4467's URLAUTH parts)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailstack.imap.proto.imapurl import MAX_URL, BadUrl, parse


def test_rfc_4467_example():
    url = parse("imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred")
    assert (url.host, url.user, url.mailbox, url.uid, url.section) == (
        "example.com",
        "joe",
        "INBOX",
        20,
        "1.2",
    )
    assert (url.access, url.access_user, url.mechanism, url.token) == (
        "submit",
        "fred",
        None,
        None,
    )
    assert url.rump == "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"


def test_full_url():
    text = (
        "imap://joe%40ex.com;AUTH=*@[::1]:143/Lists%2Fm%C3%BCll;UIDVALIDITY=9/;UID=3"
        "/;PARTIAL=5.10;EXPIRE=2026-12-07T12:00:00Z;URLAUTH=anonymous:INTERNAL:" + "AB" * 16
    )
    url = parse(text)
    assert url.host == "::1" and url.user == "joe@ex.com"
    assert url.mailbox == "Lists/müll" and url.uidvalidity == 9
    assert url.partial == (5, 10) and url.section is None
    assert url.expire == datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert url.access == "anonymous" and url.mechanism == "INTERNAL"
    assert url.token == "ab" * 16
    assert url.rump == text.rsplit(":", 2)[0]


def test_relative_forms():
    assert parse(";UID=3/;SECTION=1").mailbox is None
    assert parse("/inbox/;UID=3").mailbox == "INBOX"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "imap://host",
        "imap://host/INBOX",  # a mailbox, not a message
        "imap://host/INBOX/;UID=0",
        "imap://host/INBOX/;UID=x",
        "imap://host/INBOX;UIDVALIDITY=0/;UID=1",
        "imap://host/INBOX/;UID=1/;SECTION=1/;SECTION=2",
        "imap://host/INBOX/;UID=1/;FOO=1",
        "imap://host/INBOX/;UID=1/;PARTIAL=x",
        "imap://host:x/INBOX/;UID=1",
        "imap://host/INBOX/;UID=1;URLAUTH=",
        "imap://host/INBOX/;UID=1;URLAUTH=user+",
        "imap://host/INBOX/;UID=1;URLAUTH=nobody",
        "imap://host/INBOX/;UID=1;URLAUTH=anonymous:internal",
        "imap://host/INBOX/;UID=1;URLAUTH=anonymous:internal:abc",
        "imap://host/INBOX/;UID=1;URLAUTH=anonymous:in ternal:" + "0" * 32,
        "imap://host/INBOX/;UID=1;EXPIRE=tomorrow;URLAUTH=anonymous",
        "imap://host/INBOX/;UID=1;EXPIRE=2026-12-07T12:00:00;URLAUTH=anonymous",
        "imap://host/%FF/;UID=1",
        "imap://host/INBOX/;UID=1 x",
        "imap://host/INBOX/;UID=1/;PARTIAL=" + "9" * 5000,
        "imap://host/" + "a" * MAX_URL + "/;UID=1",
        "http://host/INBOX/;UID=1",
    ],
)
def test_bad_urls(text):
    with pytest.raises(BadUrl):
        parse(text)


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused(text):
    try:
        parse(text)
    except BadUrl:
        pass
