"""RFC 3464 delivery status notifications, read back with the stdlib email parser."""

from __future__ import annotations

import email
from email import policy

from mailstack.queue.dsn import compose, report_entry, xtext_decode
from mailstack.queue.policy import Report
from mailstack.store import QueueEntry

ORIGINAL = (
    b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: ketchup\r\n"
    b"Message-ID: <k1@crepes.fr>\r\n\r\nDo you like ketchup?\r\n"
)
T0 = 1_700_000_000.0


def entry(ret=None, envid=None) -> QueueEntry:
    return QueueEntry(3, "alice@crepes.fr", T0, T0 + 86400, envid, ret, False, None, 10, ())


def failed(address="bob@hamburger.edu", orcpt=None) -> Report:
    return Report(
        address,
        orcpt,
        "failed",
        "5.1.1",
        "550 5.1.1 User unknown",
        "550 5.1.1 User unknown",
        "mx.hamburger.edu",
        T0 + 60,
    )


def parse(data: bytes):
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF throughout
    return email.message_from_bytes(data, policy=policy.default)


def test_failure_dsn_structure():
    data = compose(entry(), ORIGINAL, [failed()], reporting_mta="crepes.fr", now=T0 + 60)
    msg = parse(data)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["To"] == "alice@crepes.fr"
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@crepes.fr"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    human, status, returned = msg.iter_parts()
    assert human.get_content_type() == "text/plain"
    assert "bob@hamburger.edu" in human.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_rcpt = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; crepes.fr"
    assert per_message["Arrival-Date"]
    assert per_rcpt["Final-Recipient"] == "rfc822; bob@hamburger.edu"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; mx.hamburger.edu"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 User unknown"
    # Without RET=FULL only the header comes back (RFC 3461 §4.3 leaves it to us).
    assert returned.get_content_type() == "text/rfc822-headers"
    text = returned.get_payload()
    assert "Subject: ketchup" in text and "Do you like ketchup" not in text


def test_ret_full_returns_the_whole_message():
    data = compose(entry(ret="FULL"), ORIGINAL, [failed()], reporting_mta="crepes.fr", now=T0)
    returned = list(parse(data).iter_parts())[2]
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_payload()[0]
    assert inner["Subject"] == "ketchup"
    assert "Do you like ketchup?" in inner.get_payload()


def test_envid_and_orcpt_come_back_decoded():
    data = compose(
        entry(envid="QQ+2B314"),
        ORIGINAL,
        [failed(orcpt="rfc822;bob+2Bsauce@hamburger.edu")],
        reporting_mta="crepes.fr",
        now=T0,
    )
    per_message, per_rcpt = list(parse(data).iter_parts())[1].get_payload()
    assert per_message["Original-Envelope-Id"] == "QQ+314"
    assert per_rcpt["Original-Recipient"] == "rfc822;bob+sauce@hamburger.edu"


def test_delay_report():
    delayed = Report(
        "bob@hamburger.edu",
        None,
        "delayed",
        "4.4.1",
        None,
        "cannot connect",
        None,
        T0,
        T0 + 86400,
    )
    msg = parse(compose(entry(), ORIGINAL, [delayed], reporting_mta="crepes.fr", now=T0))
    assert msg["Subject"].startswith("Delayed Mail")
    _, per_rcpt = list(msg.iter_parts())[1].get_payload()
    assert per_rcpt["Action"] == "delayed" and per_rcpt["Will-Retry-Until"]
    assert per_rcpt["Diagnostic-Code"] is None


def test_report_entry_goes_from_the_null_sender_to_the_sender():
    report = report_entry(
        entry(), ORIGINAL, [failed()], reporting_mta="crepes.fr", now=T0, expires=T0 + 10
    )
    assert report.mail_from == ""
    assert [r.address for r in report.recipients] == ["alice@crepes.fr"]
    assert report.recipients[0].notify == "NEVER"
    assert report.data.startswith(b"Content-Type: multipart/report")


def test_xtext_decode():
    assert xtext_decode("a+2Bb+3Dc") == "a+b=c"
    assert xtext_decode("plain") == "plain"


def test_utf8_sender_and_recipient_get_a_dsn():
    """RFC 6533: SMTPUTF8 addresses in the DSN's header and per-recipient fields."""
    sender = QueueEntry(3, "jörg@bücher.de", T0, T0 + 86400, None, None, True, None, 10, ())
    data = compose(sender, ORIGINAL, [failed("zoë@hamburger.edu")], reporting_mta="crepes.fr",
                   now=T0 + 60)
    msg = parse(data)
    assert msg["To"] == "jörg@bücher.de"
    _human, status, _returned = msg.iter_parts()
    _per_message, per_rcpt = status.get_payload()
    assert per_rcpt["Final-Recipient"] == "utf-8; zoë@hamburger.edu"
    new = report_entry(sender, ORIGINAL, [failed("zoë@hamburger.edu")],
                       reporting_mta="crepes.fr", now=T0 + 60, expires=T0 + 86400)
    assert new.smtputf8 and new.recipients[0].address == "jörg@bücher.de"


def test_a_huge_header_section_is_returned_cut_to_whole_fields():
    # Issue 15 item 6: a 5 MB header section became a 5 MB DSN.
    filler = b"X-Filler: " + b"y" * 90 + b"\r\n"
    original = filler * 50_000 + ORIGINAL
    data = compose(entry(), original, [failed()], reporting_mta="crepes.fr", now=T0,
                   returned_size=10_000)  # fmt: skip
    assert len(data) < 12_000
    returned = parse(data).get_payload()[2]
    assert returned.get_content_type() == "text/rfc822-headers"
    text = returned.get_payload()
    assert text.count("X-Filler") == 10_000 // len(filler)
    assert text.endswith("y\r\n") or text.endswith("y\n")


def test_ret_full_returns_a_big_message_as_its_header():
    body = b"z" * 100_000
    full = compose(entry(ret="FULL"), ORIGINAL + body, [failed()], reporting_mta="crepes.fr",
                   now=T0, returned_size=50_000)  # fmt: skip
    returned = parse(full).get_payload()[2]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"zzzz" not in full
    small = compose(entry(ret="FULL"), ORIGINAL, [failed()], reporting_mta="crepes.fr", now=T0)
    assert parse(small).get_payload()[2].get_content_type() == "message/rfc822"


def test_composing_never_holds_the_big_message_again():
    import tracemalloc

    original = b"X-Filler: " + b"y" * (20 * 1024 * 1024) + b"\r\n\r\nbody\r\n"
    tracemalloc.start()
    try:
        compose(entry(ret="FULL"), original, [failed()], reporting_mta="crepes.fr", now=T0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024
