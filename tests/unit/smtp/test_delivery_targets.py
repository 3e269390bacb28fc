import pytest

from mailstack.smtp.server import count_received, delivery_targets


def test_one_copy_per_mailbox_with_its_own_trace_lines():
    targets = delivery_targets(
        "alice@crepes.fr",
        [("bob@hamburger.edu", [1]), ("postmaster@hamburger.edu", [1, 2]), ("x@h.edu", [])],
        "Junk",
    )
    assert [(t.account_id, t.mailbox) for t in targets] == [(1, "Junk"), (2, "Junk")]
    assert targets[0].prefix == (
        b"Return-Path: <alice@crepes.fr>\r\nDelivered-To: bob@hamburger.edu\r\n"
    )
    assert targets[1].prefix.endswith(b"Delivered-To: postmaster@hamburger.edu\r\n")


def test_null_sender_keeps_an_empty_return_path():
    [target] = delivery_targets("", [("bob@hamburger.edu", [7])])
    assert target.prefix.startswith(b"Return-Path: <>\r\n") and target.mailbox == "INBOX"


@pytest.mark.parametrize(("data", "count"), [
    (b"Received: a\r\nreceived: b\r\nRECEIVED:c\r\n\r\nbody\r\n", 3),
    (b"Subject: x\r\nReceived: a\r\n\r\nReceived: in the body\r\n", 1),
    (b"X-Received: a\r\nSubject: Received: no\r\n\r\n", 0),
    (b"Received: no empty line, all header\r\nReceived: b\r\n", 2),
    (b"\r\nReceived: body only\r\n", 0),
])
def test_count_received_counts_header_fields_only(data, count):
    assert count_received(data) == count
