"""SASL PLAIN (RFC 4616) and LOGIN state machines, without a protocol around them."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailstack.common import sasl
from mailstack.common.sasl import Challenge, Credentials, SaslError


def test_plain_with_initial_response():
    mech = sasl.new_mechanism("plain")
    assert mech is not None and mech.name == "PLAIN"
    assert mech.initial(b"\x00bob@example.org\x00hungry") == Credentials(
        "", "bob@example.org", "hungry"
    )


def test_plain_without_initial_response_sends_empty_challenge():
    mech = sasl.Plain()
    assert mech.initial(None) == Challenge(b"")
    creds = mech.step(b"admin\x00bob\x00pass word")
    assert creds == Credentials("admin", "bob", "pass word")
    assert not creds.acts_as_self()


def test_plain_authzid_equal_to_authcid_acts_as_self():
    assert sasl.Plain().initial(b"bob\x00bob\x00pw").acts_as_self()


@pytest.mark.parametrize(
    "message",
    [
        b"bob\x00pw",  # one separator
        b"\x00bob\x00pw\x00extra",  # three
        b"\x00\x00pw",  # empty authcid
        b"\x00bob\x00",  # empty password
        b"\x00\xff\xfe\x00pw",  # not UTF-8
        b"\x00" + b"a" * 256 + b"\x00pw",  # authcid over 255 octets
    ],
)
def test_plain_rejects_malformed(message):
    with pytest.raises(SaslError):
        sasl.Plain().initial(message)


def test_plain_refuses_a_second_step():
    mech = sasl.Plain()
    mech.initial(b"\x00bob\x00pw")
    with pytest.raises(SaslError):
        mech.step(b"\x00bob\x00pw")


def test_login_asks_username_then_password():
    mech = sasl.new_mechanism("LOGIN")
    assert mech is not None
    assert mech.initial(None) == Challenge(b"Username:")
    assert mech.step(b"bob") == Challenge(b"Password:")
    assert mech.step(b"hungry") == Credentials("", "bob", "hungry")
    with pytest.raises(SaslError):
        mech.step(b"again")


def test_login_with_initial_username():
    mech = sasl.Login()
    assert mech.initial(b"bob") == Challenge(b"Password:")
    assert mech.step(b"pw") == Credentials("", "bob", "pw")


def test_login_rejects_empty_password():
    mech = sasl.Login()
    mech.initial(None)
    mech.step(b"bob")
    with pytest.raises(SaslError):
        mech.step(b"")


def test_unknown_or_disallowed_mechanism():
    assert sasl.new_mechanism("CRAM-MD5") is None
    assert sasl.new_mechanism("LOGIN", allowed=("PLAIN",)) is None


def test_base64_helpers():
    assert sasl.decode_response(b"=") == b""
    assert sasl.decode_response(base64.b64encode(b"\x00a\x00b") + b"\r\n") == b"\x00a\x00b"
    assert sasl.encode_challenge(b"Username:") == b"VXNlcm5hbWU6"
    assert sasl.encode_challenge(b"") == b""
    for bad in (b"not base64!", b"abc", b"YW=Jj"):
        with pytest.raises(SaslError):
            sasl.decode_response(bad)


_field = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=40,
)


@given(authzid=st.one_of(st.just(""), _field), authcid=_field, password=_field)
def test_plain_round_trip(authzid, authcid, password):
    message = b"\x00".join(x.encode() for x in (authzid, authcid, password))
    wire = base64.b64encode(message)
    assert sasl.Plain().initial(sasl.decode_response(wire)) == Credentials(
        authzid, authcid, password
    )


@given(st.binary(max_size=300))
def test_plain_never_crashes_on_garbage(data):
    try:
        result = sasl.Plain().initial(data)
    except SaslError:
        return
    assert isinstance(result, Credentials)
