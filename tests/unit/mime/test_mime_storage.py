"""to_bytes/from_bytes round trips and prepend() without re-parsing."""

from __future__ import annotations

import json
import zlib

import pytest
from mime_samples import ALL, FORWARDED

from mailstack.mime import ParsedMessage, parse
from mailstack.mime.message import COMPRESS_FROM

PREFIX = b"Return-Path: <bounce@example.com>\r\nDelivered-To: mary@x.test\r\n"


@pytest.mark.parametrize("name", sorted(ALL))
def test_round_trip(name):
    msg = parse(ALL[name])
    data = msg.to_bytes()
    back = ParsedMessage.from_bytes(data)
    assert back == msg
    # marshal's back-references follow object identity, so the octets may
    # differ; what they hold may not.
    assert ParsedMessage.from_bytes(back.to_bytes()) == msg


@pytest.mark.parametrize("name", sorted(set(ALL) - {"body_only"}))
def test_prepend_equals_parse_of_prefixed_message(name):
    raw = ALL[name]
    msg = parse(raw)
    assert msg.prepend(PREFIX) == parse(PREFIX + raw)
    # The original is untouched: one parse serves every recipient.
    assert msg == parse(raw)


def test_prepend_to_headerless_message():
    raw = ALL["body_only"]
    prefixed = parse(raw).prepend(PREFIX)
    assert prefixed == parse(PREFIX + raw)
    assert prefixed.header_value("delivered-to") == "mary@x.test"


def test_prepend_shifts_nested_offsets():
    msg = parse(FORWARDED).prepend(PREFIX)
    raw = PREFIX + FORWARDED
    inner = msg.section((2, 1))
    assert raw[inner.body_start:inner.body_end] == b"inner plain"
    assert msg.size == len(raw)
    assert msg.header_values("return-path") == ["<bounce@example.com>"]
    assert raw[:msg.root.body_start].startswith(PREFIX)


def test_prepend_round_trips_through_storage():
    msg = parse(FORWARDED).prepend(PREFIX)
    assert ParsedMessage.from_bytes(msg.to_bytes()) == msg


def test_prepend_date_and_envelope_follow_first_occurrence():
    msg = parse(b"Subject: old\r\n\r\nbody\r\n").prepend(
        b"Date: Sat, 1 Jan 2000 00:00:00 +0000\r\nSubject: new\r\n")
    assert msg.envelope.subject == "new"
    assert msg.sent_date is not None and msg.sent_date.year == 2000


@pytest.mark.parametrize("bad", [
    b"Return-Path: <a@b>",            # no line ending
    b"Return-Path: <a@b>\r\n\r\n",    # a blank line is not a header field
    b"not a field\r\n",
    b"Content-Type: text/html\r\n",   # would change the structure
])
def test_prepend_refuses_what_it_cannot_shift(bad):
    with pytest.raises(ValueError):
        parse(ALL["plain"]).prepend(bad)


def test_prepend_nothing():
    msg = parse(ALL["plain"])
    assert msg.prepend(b"") is msg


def _format_1(msg: ParsedMessage, version: int = 1) -> bytes:
    """The zlib'd JSON that stores written before format 2 hold."""
    return zlib.compress(json.dumps([
        version, msg.size, msg.root.to_list(), msg.envelope.to_list(), msg.fields, msg.text,
        None if msg.sent_date is None else msg.sent_date.isoformat(),
    ]).encode())


@pytest.mark.parametrize("name", sorted(ALL))
def test_format_1_is_still_read(name):
    msg = parse(ALL[name])
    assert ParsedMessage.from_bytes(_format_1(msg)) == msg


def test_unknown_format_is_refused():
    msg = parse(ALL["plain"])
    with pytest.raises(ValueError):
        ParsedMessage.from_bytes(_format_1(msg, version=99))
    with pytest.raises(ValueError):
        ParsedMessage.from_bytes(zlib.compress(b"\x03" + msg.encode()[1:]))
    with pytest.raises(ValueError):
        ParsedMessage.from_bytes(b"\x03" + msg.encode()[1:])
    with pytest.raises(ValueError):
        ParsedMessage.from_bytes(msg.encode()[:20])
    with pytest.raises(ValueError):
        ParsedMessage.from_bytes(b"not stored")


def test_small_stored_forms_stay_plain_large_ones_are_compressed():
    small = parse(ALL["plain"])
    assert small.to_bytes() == small.encode()
    large = parse(ALL["plain"] + b"ketchup and pickles\r\n" * 1000)
    assert len(large.encode()) > COMPRESS_FROM
    assert len(large.to_bytes()) < len(large.encode()) / 4
    assert ParsedMessage.from_bytes(large.to_bytes()) == large


def test_stored_form_is_compact():
    raw = ALL["plain"] * 40
    assert len(parse(raw).to_bytes()) < len(raw) / 2
