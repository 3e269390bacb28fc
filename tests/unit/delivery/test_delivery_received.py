"""The Received: trace field and the count of them that detects loops (RFC 5321 §4.4, §6.3)."""

import re

import pytest

from mailstack.delivery.received import count_received, received_header


@pytest.mark.parametrize(("data", "count"), [
    (b"Received: a\r\nreceived: b\r\nRECEIVED:c\r\n\r\nbody\r\n", 3),
    (b"Subject: x\r\nReceived: a\r\n\r\nReceived: in the body\r\n", 1),
    (b"X-Received: a\r\nSubject: Received: no\r\n\r\n", 0),
    (b"Received: no empty line, all header\r\nReceived: b\r\n", 2),
    (b"\r\nReceived: body only\r\n", 0),
])
def test_count_received_counts_header_fields_only(data, count):
    assert count_received(data) == count


def test_received_header_names_the_one_recipient_and_the_protocol():
    header = received_header(
        helo="crepes.fr", peer_ip="127.0.0.2", by="mail.hamburger.edu",
        protocol="ESMTPS", session_id="ABC123", rcpt=["bob@hamburger.edu"],
    )  # fmt: skip
    assert header.startswith(
        b"Received: from crepes.fr ([127.0.0.2])\r\n"
        b"\tby mail.hamburger.edu (mailstack) with ESMTPS id ABC123\r\n"
        b"\tfor <bob@hamburger.edu>;\r\n\t"
    )
    when = header.split(b";\r\n")[1]
    assert re.fullmatch(rb"\t\w{3}, \d{2} \w{3} \d{4} [\d:]{8} [+-]\d{4}\r\n", when)
    assert count_received(header + b"\r\nbody\r\n") == 1


def test_received_header_without_helo_or_with_several_recipients():
    header = received_header(
        helo="", peer_ip="::1", by="mx", protocol="SMTP", session_id="1", rcpt=["a@x", "b@x"]
    )
    assert header.startswith(
        b"Received: from unknown ([::1])\r\n\tby mx (mailstack) with SMTP id 1;\r\n"
    )


def test_received_header_says_how_tls_protected_the_hop():
    header = received_header(
        helo="crepes.fr", peer_ip="127.0.0.2", by="mail.hamburger.edu", protocol="ESMTPS",
        session_id="ABC123", rcpt=[], tls="TLSv1.3 with cipher TLS_AES_256_GCM_SHA384",
    )  # fmt: skip
    assert header.startswith(
        b"Received: from crepes.fr ([127.0.0.2])\r\n"
        b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
        b"\tby mail.hamburger.edu (mailstack) with ESMTPS id ABC123;\r\n"
    )
