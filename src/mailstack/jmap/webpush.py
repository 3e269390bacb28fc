"""Sending to a push URL (RFC 8620 §7.2): where we may connect, and the
message encryption of RFC 8291 (Web Push, ``aes128gcm`` of RFC 8188).

No SSRF: a push URL must be ``https``; its host's addresses (an address
literal, or what the node's resolver answers, never the system's) must be
public, or inside ``[jmap] push_allow``; private, loopback, link-local and
other special addresses are refused. The connection goes to the address
that was checked (no second lookup for a rebinding name to change), and
redirects are not followed. TLS is verified against the system's CA
bundle (``SSL_CERT_FILE`` honoured, as OpenSSL does).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import socket
import ssl
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mailstack.common import fetch

if TYPE_CHECKING:
    from mailstack.app import Node

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """A push URL we will not send to; the text says why (safe to show)."""


def check_url(url: str) -> tuple[str, int]:
    """The host and port of an acceptable push URL (https, a host, no
    credentials); Refused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise Refused("the url is not a URL") from None
    if parts.scheme != "https":
        raise Refused("the url must be https")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise Refused("the url needs a host and no credentials")
    return parts.hostname, port


def allowed(address: IPAddress, allow: Sequence[IPNetwork]) -> bool:
    """Public (globally routable, RFC 6890), or in a network configured
    (the rule of every fetch the node makes: ``common/fetch.py``)."""
    return fetch.allowed(str(address), allow)


def networks(node: Node) -> list[IPNetwork]:
    return fetch.networks(node.config.jmap.push_allow)


async def addresses(node: Node, host: str) -> list[str]:
    """The addresses of ``host`` we may connect to; Refused when none."""
    try:
        return await fetch.usable_addresses(host, node.resolver.addresses, networks(node))
    except fetch.Refused as exc:
        raise Refused(f"the url's host: {exc}") from None


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for push: only the addresses ``addresses`` allows."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            found = await addresses(self.node, host)
        except Refused as exc:
            raise OSError(str(exc)) from None
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in found
        ]

    async def close(self) -> None:
        return None


def client_context() -> ssl.SSLContext:
    """Verified TLS with the system's CA bundle (SSL_CERT_FILE and
    SSL_CERT_DIR honoured by OpenSSL's default paths)."""
    return ssl.create_default_context()


# --- RFC 8291 message encryption ----------------------------------------

RECORD_SIZE = 4096


def _b64url(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_keys(keys: Any) -> tuple[bytes, bytes]:
    """The client's P-256 public key and auth secret from a PushSubscription's
    ``keys`` (RFC 8620 §7.2: base64url ``p256dh`` and ``auth``); ValueError
    when they are not usable (RFC 8291 §3: a 65-octet uncompressed point,
    a 16-octet secret)."""
    if not isinstance(keys, dict) or set(keys) != {"p256dh", "auth"}:
        raise ValueError("keys must have p256dh and auth")
    public = _b64url(keys["p256dh"])
    auth = _b64url(keys["auth"])
    if len(public) != 65 or public[0] != 4 or len(auth) != 16:
        raise ValueError("p256dh must be an uncompressed P-256 point, auth 16 octets")
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    return public, auth


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def encrypt(plaintext: bytes, ua_public: bytes, auth_secret: bytes) -> bytes:
    """An ``aes128gcm`` body (RFC 8188 §2) for the user agent's key (RFC 8291
    §3.4), in one record, from a fresh application-server key pair."""
    private = ec.generate_private_key(ec.SECP256R1())
    as_public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    ecdh_secret = private.exchange(ec.ECDH(), peer)
    # RFC 8291 §3.3: the IKM from the auth secret and both public keys.
    key_info = b"WebPush: info\x00" + ua_public + as_public
    ikm = _hkdf(auth_secret, ecdh_secret, key_info, 32)
    salt = os.urandom(16)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    # RFC 8188 §2: the last record's padding delimiter is 0x02.
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    size = max(RECORD_SIZE, len(record))
    header = salt + struct.pack("!IB", size, len(as_public)) + as_public
    return header + record
