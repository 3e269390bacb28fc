"""Push URLs (no SSRF) and RFC 8291 encryption, checked against http_ece."""

from __future__ import annotations

import base64
import ipaddress
import os

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailstack.jmap.webpush import Refused, allowed, check_keys, check_url, encrypt


def test_only_https_urls_with_a_host_and_no_credentials():
    assert check_url("https://push.example.com/x?y=1") == ("push.example.com", 443)
    assert check_url("https://[2001:db8::1]:8443/") == ("2001:db8::1", 8443)
    for bad in ("http://push.example.com/", "https:///x", "https://u:p@h/", "ftp://h/",
                "https://h:99999/", "javascript:alert(1)"):
        with pytest.raises(Refused):
            check_url(bad)


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("192.0.2.1", False),  # documentation
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # shared address space
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
    ],
)
def test_by_default_only_public_addresses(address, ok):
    assert allowed(ipaddress.ip_address(address), []) is ok


def test_push_allow_opens_a_network():
    allow = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.0/8")]
    assert allowed(ipaddress.ip_address("10.9.9.9"), allow)
    assert allowed(ipaddress.ip_address("::ffff:127.0.0.1"), allow)
    assert not allowed(ipaddress.ip_address("192.168.0.1"), allow)


def client_keys():
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return private, public, os.urandom(16)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_encrypted_messages_decrypt_with_http_ece():
    private, public, auth = client_keys()
    for plaintext in (b"", b'{"@type":"StateChange"}', os.urandom(5000)):
        body = encrypt(plaintext, public, auth)
        assert http_ece.decrypt(body, private_key=private, auth_secret=auth) == plaintext
    # A fresh key and salt each time.
    assert encrypt(b"x", public, auth) != encrypt(b"x", public, auth)


def test_keys_are_checked():
    _, public, auth = client_keys()
    assert check_keys({"p256dh": b64(public), "auth": b64(auth)}) == (public, auth)
    for bad in (
        None,
        {"p256dh": b64(public)},
        {"p256dh": b64(public), "auth": b64(auth[:8])},
        {"p256dh": b64(public[:33]), "auth": b64(auth)},
        {"p256dh": b64(b"\x04" + b"\x01" * 64), "auth": b64(auth)},  # not on the curve
        {"p256dh": 5, "auth": b64(auth)},
        {"p256dh": b64(public), "auth": b64(auth), "x": 1},
    ):
        with pytest.raises(ValueError):
            check_keys(bad)
