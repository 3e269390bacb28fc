"""RFC 5321 §4.1.2 paths and mailboxes, with RFC 6531 UTF-8, and ESMTP parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailstack.smtp.address import (
    AddressError,
    Mailbox,
    parse_esmtp_params,
    parse_mailbox,
    parse_path,
    xtext_decode,
)


@pytest.mark.parametrize(
    ("text", "address", "rest"),
    [
        ("<bob@hamburger.edu>", "bob@hamburger.edu", ""),
        ("  <bob@hamburger.edu>  SIZE=10", "bob@hamburger.edu", "SIZE=10"),
        ("<@relay.fr,@gw.edu:bob@hamburger.edu>", "bob@hamburger.edu", ""),
        ('<"john doe"@hamburger.edu>', '"john doe"@hamburger.edu', ""),
        ('<"a\\"b>c"@x.y>', '"a\\"b>c"@x.y', ""),
        ("<first.last+tag@sub.hamburger.edu>", "first.last+tag@sub.hamburger.edu", ""),
        ("<bob@[127.0.0.1]>", "bob@[127.0.0.1]", ""),
        ("<bob@[IPv6:::1]>", "bob@[IPv6:::1]", ""),
        ("<bob@localhost>", "bob@localhost", ""),
        ("<zoë@crêpes.fr> SMTPUTF8", "zoë@crêpes.fr", "SMTPUTF8"),
        ("<用户@例子.广告>", "用户@例子.广告", ""),
        ("bob@hamburger.edu BODY=8BITMIME", "bob@hamburger.edu", "BODY=8BITMIME"),
    ],
)
def test_valid_paths(text: str, address: str, rest: str) -> None:
    assert parse_path(text) == (address, rest)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<>",
        "<bob>",
        "<bob@>",
        "<@hamburger.edu>",
        "<bob@hamburger.edu",
        "<bob@@hamburger.edu>",
        "<bob..x@hamburger.edu>",
        "<.bob@hamburger.edu>",
        "<bob@hamburger..edu>",
        "<bob@-hamburger.edu>",
        "<bob@hamburger.edu.>",
        "<bob smith@hamburger.edu>",
        '<"unterminated@hamburger.edu>',
        "<bob@[300.0.0.1]>",
        "<bob@[IPv6:zz]>",
        "<bob@[tag-:x]>",
        "<@relay.fr:bob@hamburger.edu",
        "<" + "a" * 300 + "@x.y>",
    ],
)
def test_invalid_paths(text: str) -> None:
    with pytest.raises(AddressError):
        parse_path(text)


def test_null_path_and_postmaster() -> None:
    assert parse_path("<> RET=HDRS", allow_null=True) == ("", "RET=HDRS")
    assert parse_path("<postMaster>", allow_postmaster=True) == ("postMaster", "")
    with pytest.raises(AddressError):
        parse_path("<admin>", allow_postmaster=True)


def test_parse_mailbox() -> None:
    assert parse_mailbox("bob@hamburger.edu") == Mailbox("bob", "hamburger.edu")
    assert str(Mailbox("bob", "hamburger.edu")) == "bob@hamburger.edu"
    with pytest.raises(AddressError):
        parse_mailbox("<bob@hamburger.edu>")


def test_esmtp_params() -> None:
    assert parse_esmtp_params("size=10 Smtputf8  BODY=8BITMIME") == {
        "SIZE": "10",
        "SMTPUTF8": None,
        "BODY": "8BITMIME",
    }
    for bad in ("=1", "SIZE=", "SIZE=1 size=2", "-X=1", "A=b=c"):
        with pytest.raises(AddressError):
            parse_esmtp_params(bad)


def test_xtext() -> None:
    assert xtext_decode("rfc822+3Bbob+2Bx@y") == "rfc822;bob+x@y"
    for bad in ("a+b", "a=b", "+2b", "a b"):
        with pytest.raises(AddressError):
            xtext_decode(bad)


ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~é"
atoms = st.text(alphabet=ATEXT, min_size=1, max_size=10)
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@given(st.lists(atoms, min_size=1, max_size=4), st.lists(labels, min_size=1, max_size=4))
def test_dot_atom_mailboxes_round_trip(local: list[str], domain: list[str]) -> None:
    address = ".".join(local) + "@" + ".".join(domain)
    assert parse_path(f"<{address}> X=1") == (address, "X=1")
