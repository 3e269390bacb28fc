"""Base subjects (RFC 5256 §2.1) and message ids, and the keys the store
threads by (StoredParse.keys)."""

from __future__ import annotations

import pytest

from mailstack.mime import PARSE_CODEC, parse
from mailstack.mime.subject import base_subject, message_ids


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Lunch", "Lunch"),
        ("Re: Lunch", "Lunch"),
        ("RE: re: Fwd: Lunch", "Lunch"),
        ("Fw: Lunch (fwd)", "Lunch"),
        ("Lunch (fwd) (FWD)  ", "Lunch"),
        ("Re[2]: Lunch", "Lunch"),  # subj-refwd may hold a blob before its ":"
        ("Re [2]: Lunch", "Lunch"),
        ("[list] Re: Lunch", "Lunch"),
        ("[list] [tag] Lunch", "Lunch"),
        ("[only blob]", "[only blob]"),  # removing it would leave nothing
        ("[Fwd: Re: Lunch]", "Lunch"),
        ("Re: [Fwd: Lunch (fwd)]", "Lunch"),
        ("  Lunch \t  at   noon ", "Lunch at noon"),
        ("=?utf-8?q?Re=3A_caf=C3=A9?=", "café"),
        ("Re:", ""),
        ("", ""),
        ("Remember: the milk", "Remember: the milk"),
    ],
)
def test_base_subject(subject, base):
    assert base_subject(subject) == base


def test_message_ids():
    assert message_ids("<a@b> <c@d>") == ["a@b", "c@d"]
    assert message_ids("phrase <a@b> (comment) <c @ d>") == ["a@b", "c@d"]
    assert message_ids("no brackets") == []
    assert message_ids("<>") == []
    assert message_ids("<" + "x" * 2000 + ">") == []


def keys_of(raw: bytes):
    return PARSE_CODEC.keys(parse(raw).encode())


def test_keys_from_the_encoded_parse_and_from_what_pack_kept():
    raw = (
        b"Subject: Re: [list] Lunch\r\nMessage-ID: <me@x>\r\n"
        b"References: <root@x> <mid@x>\r\nIn-Reply-To: <mid@x>\r\n\r\nbody\r\n"
    )
    keys = keys_of(raw)
    assert keys.message_id == "me@x"
    assert keys.references == ("root@x", "mid@x")
    assert keys.base_subject == "lunch"
    big = raw + b"x" * 20000 + b"\r\n"
    packed = PARSE_CODEC.pack(parse(big).encode())
    assert PARSE_CODEC.keys(packed) == keys
    assert keys_of(b"\r\nno header\r\n").message_id is None
    assert keys_of(b"In-Reply-To: <p@x>\r\n\r\n").references == ("p@x",)
    with pytest.raises(ValueError):
        PARSE_CODEC.keys(b"not a parse")
