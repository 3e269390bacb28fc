"""TLS contexts and the self-signed certificate that `mailstack init` makes.

A node serves one certificate (configured, or generated at init for its
hostname); clients of ours (the queue) use `client_context()`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_self_signed(cert_path: Path, key_path: Path, hostname: str, *, days: int = 825) -> None:
    """Write a self-signed ECDSA P-256 certificate for hostname (and localhost)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Both 0600, as everything in the data directory (store/private.py).
    cert_bytes = cert.public_bytes(serialization.Encoding.PEM)
    for path, data in ((key_path, key_bytes), (cert_path, cert_bytes)):
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(data)


class Tls:
    """The node's TLS material; contexts are built once and shared."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self._server: ssl.SSLContext | None = None

    @property
    def available(self) -> bool:
        return self.cert_path.exists() and self.key_path.exists()

    def server_context(self) -> ssl.SSLContext:
        if self._server is None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(self.cert_path, self.key_path)
            self._server = ctx
        return self._server

    @staticmethod
    def client_context(verify: bool = False) -> ssl.SSLContext:
        """Opportunistic TLS between MTAs does not verify (RFC 7435)."""
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx
