"""Vacation auto-replies (RFC 3834): whom not to answer, and the reply."""

from __future__ import annotations

import datetime
import email
from email.parser import BytesHeaderParser
from email.policy import compat32

import pytest

from mailstack.delivery.vacation import Settings, addressed, compose, refuses

UTC = datetime.UTC


def header(text: str):
    return BytesHeaderParser(policy=compat32).parsebytes(text.replace("\n", "\r\n").encode())


PLAIN = (
    "From: Ann <ann@poly.edu>\nTo: bob@crepes.fr\nSubject: lunch?\nMessage-ID: <a1@poly.edu>\n\n"
)


def test_an_ordinary_message_may_be_answered():
    assert refuses(header(PLAIN), "ann@poly.edu") is None


@pytest.mark.parametrize(
    ("extra", "sender", "why"),
    [
        ("", "", "null sender"),
        ("Auto-Submitted: auto-replied\n", "ann@poly.edu", "auto-submitted"),
        ("Auto-Submitted: auto-generated (daily)\n", "ann@poly.edu", "auto-submitted"),
        ("Precedence: bulk\n", "ann@poly.edu", "bulk"),
        ("Precedence: list\n", "ann@poly.edu", "bulk"),
        ("List-Id: <cooks.poly.edu>\n", "ann@poly.edu", "list"),
        ("List-Unsubscribe: <mailto:x@poly.edu>\n", "ann@poly.edu", "list"),
        ("", "owner-cooks@poly.edu", "program"),
        ("", "cooks-request@poly.edu", "program"),
        ("", "MAILER-DAEMON@poly.edu", "program"),
        ("", "noreply@poly.edu", "program"),
        ("", "no-reply@poly.edu", "program"),
    ],
)
def test_rfc_3834_says_no(extra, sender, why):
    assert refuses(header(extra + PLAIN), sender) == why


def test_auto_submitted_no_is_answered():
    assert refuses(header("Auto-Submitted: no\n" + PLAIN), "ann@poly.edu") is None


def test_addressed_reads_to_cc_bcc_and_resent():
    found = addressed(header(
        "To: A <a@x.fr>, b@x.fr\nCc: c@x.fr\nResent-To: d@x.fr\nBcc: A@X.fr\n\n"
    ))
    assert found == ["a@x.fr", "b@x.fr", "c@x.fr", "d@x.fr"]


def test_the_window_of_the_response():
    start = datetime.datetime(2026, 7, 1, tzinfo=UTC)
    end = datetime.datetime(2026, 7, 15, tzinfo=UTC)
    response = Settings(True, start, end)
    assert not response.active(start - datetime.timedelta(seconds=1))
    assert response.active(start)
    assert not response.active(end)
    assert Settings(True).active(end)
    assert not Settings(False).active(start)


def test_the_reply_follows_rfc_3834():
    original = header(
        "From: ann@poly.edu\nTo: bob@crepes.fr\nSubject: =?utf-8?q?d=C3=A9jeuner?=\n"
        "Message-ID: <a1@poly.edu>\nReferences: <a0@poly.edu>\n\n"
    )
    raw = compose(
        Settings(True, text_body="Back on Monday."),
        original,
        sender="bob@crepes.fr",
        to="ann@poly.edu",
        hostname="mail.crepes.fr",
    )
    reply = email.message_from_bytes(raw, policy=email.policy.default)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["From"] == "bob@crepes.fr" and reply["To"] == "ann@poly.edu"
    assert reply["Subject"] == "Auto: déjeuner"
    assert reply["In-Reply-To"] == "<a1@poly.edu>"
    assert reply["References"] == "<a0@poly.edu> <a1@poly.edu>"
    assert reply["Message-ID"].endswith("@mail.crepes.fr>")
    assert reply.get_content().strip() == "Back on Monday."
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_the_reply_uses_the_subject_and_html_given():
    raw = compose(
        Settings(True, subject="Away", html_body="<p>Back <b>Monday</b></p>"),
        header("From: ann@poly.edu\n\n"),
        sender="bob@crepes.fr",
        to="ann@poly.edu",
        hostname="h",
    )
    reply = email.message_from_bytes(raw, policy=email.policy.default)
    assert reply["Subject"] == "Away" and reply["In-Reply-To"] is None
    assert reply.get_content_type() == "multipart/alternative"
    plain = reply.get_body(("plain",)).get_content()
    assert "Back" in plain and "Monday" in plain and "<b>" not in plain
    assert "<b>Monday</b>" in reply.get_body(("html",)).get_content()
