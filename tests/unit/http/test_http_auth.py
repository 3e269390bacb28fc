"""Reading the Authorization field (RFC 9110 §11.6.2, RFC 7617, RFC 6750)."""

from __future__ import annotations

import base64

import pytest

from mailstack.http.auth import Basic, Bearer, Malformed, challenges, parse_authorization


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_basic_in_utf_8_with_a_colon_in_the_password():
    assert parse_authorization(f"Basic {b64('bøb@example.org:pa:ss')}") == Basic(
        "bøb@example.org", "pa:ss"
    )
    assert parse_authorization(f"bAsIc   {b64('a:b')}") == Basic("a", "b")


@pytest.mark.parametrize(
    "value",
    [f"Basic {b64('nocolon')}", f"Basic {b64(':nouser')}", "Basic !!!", "Basic", "Basic /w=="],
)
def test_unusable_basic(value):
    assert parse_authorization(value) == Malformed("basic")


def test_bearer_b64token():
    assert parse_authorization("Bearer mst_a-b.c~d+e/f==") == Bearer("mst_a-b.c~d+e/f==")
    assert parse_authorization("bearer x") == Bearer("x")
    for bad in ("Bearer", "Bearer a b", "Bearer a=b", 'Bearer "x"'):
        assert parse_authorization(bad) == Malformed("bearer")


def test_other_schemes_are_malformed():
    assert parse_authorization("Digest username=x") == Malformed("digest")


def test_challenges():
    assert challenges() == 'Basic realm="mailstack", charset="UTF-8", Bearer realm="mailstack"'
    assert challenges("invalid_token").endswith('Bearer realm="mailstack", error="invalid_token"')
