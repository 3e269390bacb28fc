"""ENVELOPE (RFC 3501 §7.4.2), addresses, encoded words and header searching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mime_samples import ALL, ENCODED_SUBJECT, GROUPS, PLAIN

from mailstack.mime import Address, decode_header, parse, parse_address_list
from mailstack.mime.address import _parse_address_list, _simple_address_list
from mailstack.mime.message import _plain_date


def test_plain_envelope():
    env = parse(PLAIN).envelope
    assert env.date == "Fri, 21 Nov 1997 09:55:06 -0600"
    assert env.subject == "Saying Hello"
    joe = [Address("Joe Q. Public", None, "joe", "example.com")]
    assert env.from_ == joe
    assert env.sender == joe and env.reply_to == joe
    assert env.to == [Address("Mary Smith", None, "mary", "x.test"),
                      Address(None, None, "jdoe", "one.test")]
    # RFC 3501: envelope strings are raw, encoded words left alone.
    assert env.cc == [Address("=?ISO-8859-1?Q?Andr=E9?= Pirard", None, "PIRARD",
                              "vm1.ulg.ac.be")]
    assert env.bcc is None
    assert env.in_reply_to is None
    assert env.message_id == "<1234@local.machine.example>"


def test_groups_routes_and_empty_reply_to():
    env = parse(GROUPS).envelope
    assert env.to == [
        Address(None, None, "A Group", None),
        Address("Ed Jones", None, "c", "a.test"),
        Address(None, None, "joe", "where.test"),
        Address("John", None, "jdoe", "one.test"),
        Address(None, None, None, None),
    ]
    assert env.cc == [Address(None, None, "Undisclosed recipients", None),
                      Address(None, None, None, None)]
    assert env.bcc == [Address(None, "@route1,@route2", "user", "host.test")]
    # Present but empty Reply-To takes the From value.
    assert env.reply_to == env.from_ == [Address("Pete", None, "pete", "silly.example")]


def test_missing_headers_are_nil():
    env = parse(ALL["body_only"]).envelope
    assert env == type(env)()
    assert parse(b"").envelope.from_ is None


def test_encoded_words_raw_in_envelope_decoded_for_search():
    msg = parse(ENCODED_SUBJECT)
    assert msg.envelope.subject == (
        "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?Q?_aus_M=C3=BCnchen?=")
    assert msg.header_value("Subject") == "Grüße aus München"
    assert msg.envelope.from_ == [Address("=?UTF-8?B?SsO8cmdlbg==?=", None, "j", "example.de")]
    assert msg.header_value("FROM") == "Jürgen <j@example.de>"
    assert msg.header_value("x-missing") is None
    assert msg.header_values("x-missing") == []


def test_header_values_in_order():
    msg = parse(b"Received: one\r\nReceived: two\r\n  folded\r\nSubject: s\r\n\r\n")
    assert msg.header_values("received") == ["one", "two  folded"]
    assert [name for name, _, _ in msg.headers] == ["received", "received", "subject"]


def test_decode_header():
    assert decode_header("plain text") == "plain text"
    assert decode_header("=?ISO-8859-1?Q?Andr=E9?= Pirard") == "André Pirard"
    assert decode_header("=?utf-8?b?4oKs?=") == "€"
    # RFC 2047 §6.2: whitespace between adjacent encoded words is dropped.
    assert decode_header("=?utf-8?q?a?= \r\n =?utf-8?q?b?=") == "ab"
    assert decode_header("x =?utf-8?q?a?= y") == "x a y"
    # A character split across two words survives.
    assert decode_header("=?utf-8?b?4oI=?= =?utf-8?b?rA==?=") == "€"
    # Unknown charsets and broken base64 never raise.
    assert decode_header("=?x-bogus?q?abc?=") == "abc"
    assert isinstance(decode_header("=?utf-8?b?###?="), str)
    assert decode_header("=?utf-8?b?###?=") == ""  # nothing decodable is left
    assert decode_header("=?utf-8*en?q?hi?=") == "hi"


def test_address_list_edge_cases():
    assert parse_address_list("") == []
    assert parse_address_list(",,, ,") == []
    assert parse_address_list("root") == [Address(None, None, "root", "")]
    assert parse_address_list('"Doe, John" <john@x.test>') == [
        Address("Doe, John", None, "john", "x.test")]
    assert parse_address_list('"a\\"b" (comment) <a@b.c> (trailing)') == [
        Address('a"b', None, "a", "b.c")]
    # Without a phrase the comment is the display name, as Dovecot gives it.
    assert parse_address_list("john@x.test (John Doe)") == [
        Address("John Doe", None, "john", "x.test")]
    assert parse_address_list("a@b.c (A (nested)), (lead) d@e.f, g@h.i (\\) x)") == [
        Address("A (nested)", None, "a", "b.c"), Address(None, None, "d", "e.f"),
        Address(") x", None, "g", "h.i")]
    assert parse_address_list('"quoted local"@x.test') == [
        Address(None, None, '"quoted local"', "x.test")]
    assert parse_address_list("a@[127.0.0.1]") == [Address(None, None, "a", "[127.0.0.1]")]
    assert parse_address_list("unterminated: a@b.c") == [
        Address(None, None, "unterminated", None),
        Address(None, None, "a", "b.c"),
        Address(None, None, None, None),
    ]
    assert parse_address_list("<a@b.c") == [Address(None, None, "a", "b.c")]


def test_sent_date():
    assert parse(PLAIN).sent_date == datetime(
        1997, 11, 21, 9, 55, 6, tzinfo=timezone(timedelta(hours=-6)))
    assert parse(b"Date: Sat, 1 Jan 2000 00:00:00 -0000\r\n\r\n").sent_date == datetime(
        2000, 1, 1, tzinfo=UTC)
    assert parse(b"Date: not a date\r\n\r\n").sent_date is None
    assert parse(b"\r\n").sent_date is None


def test_8bit_headers_read_as_utf8_else_latin1():
    msg = parse("Subject: Grüße\r\nFrom: Jörg <j@x.test>\r\n\r\n".encode())
    assert msg.envelope.subject == "Grüße"
    assert msg.envelope.from_ == [Address("Jörg", None, "j", "x.test")]
    assert parse(b"Subject: Gr\xfc\xdfe\r\n\r\n").envelope.subject == "Grüße"


# The fast paths for plain address lists and plain dates must agree with the
# general parsers wherever they answer at all.
_ADDRESS_PIECES = [
    "a", "b.c", "Bob", "Smith", "x-y", "é", "@", ".", ",", " ", "  ", "\t", "<", ">",
    '"', '"Last, First"', "\\", "(", ")", ":", ";", "[1.2.3.4]", "\r\n",
]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(_ADDRESS_PIECES), max_size=14).map("".join))
def test_simple_address_lists_agree_with_the_general_parser(value):
    simple = _simple_address_list(value)
    if simple is not None:
        assert simple == _parse_address_list(value)


@pytest.mark.parametrize("value", [
    "<alice@crepes.fr>", "a@b", "Alice Smith <a.b@c.d>", '"Smith, J" <j@x>', "a@b, c@d",
    '"" <a@b>', "a@b ,c@d ", "Bob<b@c>",
])
def test_common_address_lists_take_the_fast_path(value):
    assert _simple_address_list(value) is not None
    assert _simple_address_list(value) == _parse_address_list(value)


def _general_date(value):
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return sent if sent.tzinfo is not None else sent.replace(tzinfo=UTC)


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["", "Mon, ", "Sun, ", "Xyz, "]), st.integers(0, 40),
    st.sampled_from(["Jan", "Feb", "Jun", "Dec", "Foo"]), st.integers(0, 10000),
    st.integers(0, 25), st.integers(0, 61), st.integers(0, 61),
    st.sampled_from(["+", "-"]), st.integers(0, 2400), st.sampled_from(["", " (UTC)", " (x"]),
)
def test_plain_dates_agree_with_the_general_parser(
    weekday, day, month, year, hour, minute, second, sign, zone, comment
):
    value = (f"{weekday}{day} {month} {year:04d} {hour:02d}:{minute:02d}:{second:02d}"
             f" {sign}{zone:04d}{comment}")
    plain = _plain_date(value)
    if plain is not None:
        assert plain == _general_date(value)
        assert plain.utcoffset() == _general_date(value).utcoffset()


def test_common_dates_take_the_fast_path():
    for value in ("Sat, 21 Nov 2026 14:45:56 +0000 (UTC)", "7 Feb 1994 21:52:25 -0800",
                  "Sat, 1 Jan 2000 00:00:00 -0000"):
        assert _plain_date(value) is not None
        assert _plain_date(value) == _general_date(value)
