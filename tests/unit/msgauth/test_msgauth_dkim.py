"""DKIM signing with stored keys and verification through a fake resolver."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgauth_fakes import FakeResolver

from mailstack.msgauth import dkim, keys

MESSAGE = (
    b"From: Alice <alice@crepes.fr>\r\n"
    b"To: bob@hamburger.edu\r\n"
    b"Subject: crepes\r\n"
    b"Date: Sat, 21 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <1@crepes.fr>\r\n"
    b"\r\n"
    b"Bonjour Bob,\r\n\r\nune crepe?\r\n"
)


@pytest.fixture(scope="module")
def pair() -> list:
    return keys.new_keys("crepes.fr", "t1")


def published(pair: list) -> FakeResolver:
    resolver = FakeResolver()
    for key in pair:
        resolver.add(keys.txt_owner(key), "TXT", keys.txt_value(key))
    return resolver


def test_new_keys_are_rsa2048_and_ed25519(pair: list) -> None:
    assert [(k.selector, k.algorithm) for k in pair] == [
        ("t1-rsa", "rsa-sha256"),
        ("t1-ed25519", "ed25519-sha256"),
    ]
    assert keys.txt_value(pair[0]).startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # 2048-bit SPKI
    assert len(keys.txt_value(pair[1])) == len("v=DKIM1; k=ed25519; p=") + 44
    assert keys.txt_owner(pair[0]) == "t1-rsa._domainkey.crepes.fr."


@pytest.mark.parametrize("selector", ["", "a..b", "-x", "é", "a_b"])
def test_bad_selectors_refused(selector: str) -> None:
    from mailstack.errors import MailstackError

    with pytest.raises(MailstackError):
        keys.check_selector(selector)


async def test_sign_and_verify_both(pair: list) -> None:
    signed = dkim.sign_with(MESSAGE, pair) + MESSAGE
    assert signed.count(b"DKIM-Signature:") == 2
    results = await dkim.verify(signed, published(pair))
    assert [(r.result, r.selector) for r in results] == [("pass", "t1-rsa"), ("pass", "t1-ed25519")]


async def test_changed_body_fails(pair: list) -> None:
    signed = dkim.sign_with(MESSAGE, pair) + MESSAGE.replace(b"une crepe", b"un burger")
    results = await dkim.verify(signed, published(pair))
    assert [r.result for r in results] == ["fail", "fail"]


async def test_added_from_breaks_signature(pair: list) -> None:
    signed = dkim.sign_with(MESSAGE, pair[:1]) + b"From: mallory@evil.example\r\n" + MESSAGE
    assert [r.result for r in await dkim.verify(signed, published(pair))] == ["fail"]


async def test_missing_key_and_dns_failure(pair: list) -> None:
    signed = dkim.sign_with(MESSAGE, pair[:1]) + MESSAGE
    assert [r.result for r in await dkim.verify(signed, FakeResolver())] == ["permerror"]
    failing = FakeResolver(failing={"t1-rsa._domainkey.crepes.fr"})
    assert [r.result for r in await dkim.verify(signed, failing)] == ["temperror"]


async def test_unsigned_and_garbled() -> None:
    assert await dkim.verify(MESSAGE, FakeResolver()) == []
    garbled = b"DKIM-Signature: this is not a tag list\r\n" + MESSAGE
    assert [r.result for r in await dkim.verify(garbled, FakeResolver())] == ["neutral"]


async def test_sign_uses_the_stores_active_keys(store, pair: list) -> None:
    assert await dkim.sign(MESSAGE, "crepes.fr", store) == b""
    await store.dkim_key_add(pair[1])
    header = await dkim.sign(MESSAGE, "CREPES.FR", store)
    assert header.startswith(b"DKIM-Signature:") and b"a=ed25519-sha256" in header
    assert [r.result for r in await dkim.verify(header + MESSAGE, published(pair))] == ["pass"]


async def test_rotation_signs_with_new_selectors(store) -> None:
    await keys.create(store, "crepes.fr", "old")
    fresh = await keys.rotate(store, "crepes.fr", "new")
    header = await dkim.sign(MESSAGE, "crepes.fr", store)
    assert b"s=new-rsa" in header and b"s=new-ed25519" in header and b"s=old" not in header
    assert len(await store.dkim_keys("crepes.fr")) == 4
    assert all(k.active for k in fresh)


LINES = st.sampled_from(
    [b"", b" ", b"\t", b"a  b ", b"x\t\ty", b"trailing   ", b".", b"\xc3\xa9t\xc3\xa9", b"--"]
)
FIELDS = st.sampled_from(
    [
        b"Subject: a  folded\r\n\t subject ",
        b"To: bob@hamburger.edu",
        b"to: second@hamburger.edu",
        b"Cc:   x@y.example  ",
        b"X-Unsigned: 1",
        b"Received: from x",
    ]
)  # (not "From : x": RFC 5322 §4.5 obsolete syntax, which dkimpy does not parse)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(FIELDS, max_size=5),
    st.lists(LINES, max_size=6),
    st.sampled_from([b"\r\n", b"\n"]),
    st.booleans(),
)
async def test_our_signatures_verify_with_dkimpy(
    pair: list, fields: list, lines: list, newline: bytes, final_newline: bool
) -> None:
    head = b"From: Alice <alice@crepes.fr>" + newline + b"".join(f + newline for f in fields)
    body = newline.join(lines) + (newline if final_newline and lines else b"")
    message = head + newline + body
    # What arrives over SMTP: CRLF line ends, and the body ends with CRLF.
    wire = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if body and not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    signed = dkim.sign_with(message, pair) + wire
    results = await dkim.verify(signed, published(pair))
    assert [r.result for r in results] == ["pass", "pass"], results


async def test_rsa_sha1_is_not_acceptable(pair: list) -> None:
    header = dkim.sign_with(MESSAGE, pair[:1]).replace(b"a=rsa-sha256", b"a=rsa-sha1")
    [result] = await dkim.verify(header + MESSAGE, published(pair))
    assert (result.result, result.algorithm) == ("policy", "rsa-sha1")
