"""Sample messages for the mime tests, written line by line so endings are exact."""

from __future__ import annotations


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


PLAIN = crlf(
    "Return-Path: <joe@example.com>",
    "From: \"Joe Q. Public\" <joe@example.com>",
    "To: Mary Smith <mary@x.test>, jdoe@one.test",
    "Cc: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
    "Subject: Saying",
    " Hello",
    "Date: Fri, 21 Nov 1997 09:55:06 -0600",
    "Message-ID: <1234@local.machine.example>",
    "",
    "This is a message just to say hello.",
    "So, \"Hello\".",
)

ALTERNATIVE = crlf(
    "From: a@example.com",
    "To: b@example.com",
    "Subject: alternative",
    "MIME-Version: 1.0",
    "Content-Type: multipart/alternative; boundary=\"alt-1\"",
    "",
    "This is the preamble.",
    "--alt-1",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "Caf=C3=A9 au lait",
    "--alt-1",
    "Content-Type: text/html; charset=utf-8",
    "",
    "<html><body><p>Caf&eacute; <b>noir</b></p></body></html>",
    "--alt-1--",
    "This is the epilogue.",
)

MIXED = crlf(
    "From: a@example.com",
    "To: b@example.com",
    "Subject: report attached",
    "Content-Type: multipart/mixed; boundary=mix",
    "",
    "--mix",
    "",
    "See the attachment.",
    "--mix",
    "Content-Type: application/pdf; name=\"report.pdf\"",
    "Content-Transfer-Encoding: base64",
    "Content-Disposition: attachment; filename=\"report.pdf\"; size=12",
    "Content-ID: <part2@example.com>",
    "Content-Description: The report",
    "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
    "Content-Language: en, de (German)",
    "Content-Location: http://example.com/",
    " report.pdf",
    "",
    "JVBERi0xLjQKJcOkw7zDtsOfCg==",
    "--mix--",
)

FORWARDED = crlf(
    "From: fwd@example.com",
    "To: b@example.com",
    "Subject: Fwd: inner",
    "Content-Type: multipart/mixed; boundary=\"outer\"",
    "",
    "--outer",
    "Content-Type: text/plain",
    "",
    "Forwarded below.",
    "--outer",
    "Content-Type: message/rfc822",
    "Content-Disposition: inline",
    "",
    "From: Inner Sender <inner@example.org>",
    "To: undisclosed-recipients:;",
    "Subject: inner",
    "Date: Sat, 1 Jan 2000 00:00:00 +0000",
    "Content-Type: multipart/alternative; boundary=inner",
    "",
    "--inner",
    "Content-Type: text/plain; charset=us-ascii",
    "",
    "inner plain",
    "--inner",
    "Content-Type: text/html",
    "",
    "<p>inner html</p>",
    "--inner--",
    "",
    "--outer--",
)

RFC2231 = crlf(
    "From: a@example.com",
    "Content-Type: application/x-stuff;",
    " title*0*=us-ascii'en'This%20is%20even%20more%20;",
    " title*1*=%2A%2A%2Afun%2A%2A%2A%20;",
    " title*2=\"isn't it!\"",
    "Content-Disposition: attachment;",
    " filename*=UTF-8''%E2%82%AC%20rates.txt",
    "",
    "data",
)

ENCODED_SUBJECT = crlf(
    "From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.de>",
    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?Q?_aus_M=C3=BCnchen?=",
    "",
    "body",
)

GROUPS = crlf(
    "From: Pete <pete@silly.example>",
    "To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
    "Cc: Undisclosed recipients:;",
    "Bcc: <@route1,@route2:user@host.test>",
    "Reply-To:",
    "",
    "Testing.",
)

NO_HEADERS = crlf(
    "Subject: only a subject",
    "",
    "body line",
)

LF_ONLY = (
    b"From: lf@example.com\n"
    b"Subject: bare LF\n"
    b"Content-Type: multipart/mixed; boundary=b\n"
    b"\n"
    b"--b\n"
    b"Content-Type: text/plain\n"
    b"\n"
    b"one\n"
    b"--b\n"
    b"\n"
    b"two\n"
    b"--b--\n"
)

NO_BLANK_LINE = crlf(
    "From: a@example.com",
    "Subject: no separator",
    "this line is not a header so the body starts here",
    "second body line",
)

EMPTY_BODY = crlf(
    "From: a@example.com",
    "Subject: empty",
    "",
)

HEADER_ONLY = b"From: a@example.com\r\nSubject: no newline at all"

MALFORMED_BOUNDARY = crlf(
    "From: a@example.com",
    "Content-Type: multipart/mixed; boundary=\"never-used\"",
    "",
    "--something-else",
    "",
    "text",
)

UNCLOSED = crlf(
    "From: a@example.com",
    "Content-Type: multipart/mixed; boundary=u",
    "",
    "--u",
    "Content-Type: text/plain",
    "",
    "first",
    "--u",
    "",
    "second, never closed",
)

NO_BOUNDARY_PARAM = crlf(
    "From: a@example.com",
    "Content-Type: multipart/mixed",
    "",
    "text",
)

BAD_CONTENT_TYPE = crlf(
    "From: a@example.com",
    "Content-Type: garbage",
    "",
    "text",
)

DIGEST = crlf(
    "From: list@example.com",
    "Content-Type: multipart/digest; boundary=d",
    "",
    "--d",
    "",
    "From: one@example.com",
    "Subject: first",
    "",
    "first body",
    "--d",
    "Content-Type: text/plain",
    "",
    "not a message",
    "--d--",
)

ALL = {
    "plain": PLAIN,
    "alternative": ALTERNATIVE,
    "mixed": MIXED,
    "forwarded": FORWARDED,
    "rfc2231": RFC2231,
    "encoded_subject": ENCODED_SUBJECT,
    "groups": GROUPS,
    "no_headers": NO_HEADERS,
    "lf_only": LF_ONLY,
    "no_blank_line": NO_BLANK_LINE,
    "empty_body": EMPTY_BODY,
    "header_only": HEADER_ONLY,
    "malformed_boundary": MALFORMED_BOUNDARY,
    "unclosed": UNCLOSED,
    "no_boundary_param": NO_BOUNDARY_PARAM,
    "bad_content_type": BAD_CONTENT_TYPE,
    "digest": DIGEST,
    "empty": b"",
    "body_only": b"just text, no header\r\n",
}
