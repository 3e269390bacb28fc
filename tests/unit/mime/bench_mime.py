"""Parse speed of mailstack.mime against the stdlib email parser.

Run: python tests/unit/mime/bench_mime.py
Prints microseconds per message for a 2 KiB plain message and a 100 KiB
multipart message with an attachment, plus from_bytes and prepend.
"""

from __future__ import annotations

import base64
import email
import email.policy
import os
import timeit

from mailstack.mime import ParsedMessage, parse

HEADER = (
    "Return-Path: <alice@example.com>\r\n"
    "Received: from mx.example.com (mx.example.com [192.0.2.1])\r\n"
    "\tby mail.example.org with ESMTPS id 4Xyz for <bob@example.org>;\r\n"
    "\tSat, 21 Nov 2026 12:00:00 +0000\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to:subject:date;\r\n"
    "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==\r\n"
    "From: Alice Example <alice@example.com>\r\n"
    "To: Bob <bob@example.org>, carol@example.org\r\n"
    "Cc: =?UTF-8?Q?Andr=C3=A9?= <andre@example.net>\r\n"
    "Subject: =?UTF-8?Q?Quarterly_report_=E2=80=94_draft?=\r\n"
    "Date: Sat, 21 Nov 2026 12:00:00 +0000\r\n"
    "Message-ID: <20261121120000.1234@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
)


def plain_2k() -> bytes:
    body = "".join(f"Line {i} of a short plain text message, nothing special.\r\n"
                   for i in range(24))
    return (HEADER + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()


def multipart_100k() -> bytes:
    attachment = base64.encodebytes(os.urandom(72 * 1024)).replace(b"\n", b"\r\n")
    text = "".join(f"Paragraph {i}: the figures are attached.\r\n" for i in range(60))
    html = "<html><body>" + "".join(f"<p>Paragraph {i}</p>\r\n" for i in range(60))
    return (
        HEADER
        + "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
        + "--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
        + "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text
        + "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "</body></html>\r\n"
        + "--alt--\r\n"
        + "--outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
        + "Content-Transfer-Encoding: base64\r\n"
        + "Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n"
    ).encode() + attachment + b"--outer--\r\n"


def per_call_us(func, number: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def main() -> None:
    for label, raw, number in (("2 KiB plain", plain_2k(), 2000),
                               ("100 KiB multipart", multipart_100k(), 200)):
        stored = parse(raw).to_bytes()
        ours = per_call_us(lambda raw=raw: parse(raw), number)
        store = per_call_us(lambda raw=raw: parse(raw).to_bytes(), number)
        stdlib = per_call_us(
            lambda raw=raw: email.message_from_bytes(raw, policy=email.policy.default), number)
        load = per_call_us(lambda stored=stored: ParsedMessage.from_bytes(stored), number)
        parsed = parse(raw)
        prepend = per_call_us(
            lambda parsed=parsed: parsed.prepend(b"Delivered-To: bob@example.org\r\n"), number)
        print(f"{label} ({len(raw)} B): parse {ours:.0f} µs "
              f"(stdlib email {stdlib:.0f} µs, structure only, no offsets); "
              f"parse+to_bytes {store:.0f} µs; "
              f"from_bytes {load:.0f} µs; prepend {prepend:.0f} µs; "
              f"stored {len(stored)} B")


if __name__ == "__main__":
    main()
