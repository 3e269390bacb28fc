"""The certificates a node keeps, beside its default one (``[tls] cert`` /
``key``): one directory per certificate under ``tls/certs/`` in the data
directory, holding ``cert.pem`` (the chain, leaf first) and ``key.pem``
(0600).

A certificate is installed whole or not at all: both files are written and
fsynced in a new directory, which is then renamed over the old one (the old
one first moved aside, so a reader never sees half a pair). What does not
parse, or a key that does not match the certificate, is refused before
anything is written. Running listeners notice the change by the directory's
modification time (``common/tls.py``) and need no restart.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from mailstack.errors import MailstackError
from mailstack.store.private import create_private, private_dir

if TYPE_CHECKING:
    from mailstack.config import Config

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"


class CertificateError(MailstackError):
    """A certificate or key that cannot be used, with the reason."""


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What ``cert list`` shows of a certificate."""

    name: str  # the directory name, or "default"
    names: tuple[str, ...]  # DNS names (SAN; the CN when there is none), lowercased
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    self_signed: bool
    cert_path: Path
    key_path: Path

    def days_left(self, now: datetime.datetime | None = None) -> float:
        now = now or datetime.datetime.now(datetime.UTC)
        return (self.not_after - now).total_seconds() / 86400

    def covers(self, hostname: str) -> bool:
        """RFC 6125 §6.4.3: an exact name, or ``*.`` standing for one label."""
        hostname = hostname.lower().rstrip(".")
        for name in self.names:
            if name == hostname:
                return True
            if name.startswith("*.") and hostname.count(".") >= 2:
                if hostname.split(".", 1)[1] == name[2:]:
                    return True
        return False


def read_chain(data: bytes, what: str = "certificate") -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError(f"the {what} is not a PEM certificate") from None
    if not chain:
        raise CertificateError(f"the {what} holds no certificate")
    return chain


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def read_key(data: bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CertificateError("the key is not an unencrypted PEM private key") from None
    if not isinstance(key, PrivateKey):
        raise CertificateError(f"keys of type {type(key).__name__} are not supported")
    return key


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_pair(cert_pem: bytes, key_pem: bytes) -> list[x509.Certificate]:
    """The chain, once it parses and its leaf matches the key."""
    chain = read_chain(cert_pem)
    key = read_key(key_pem)
    if _public_bytes(chain[0].public_key()) != _public_bytes(key.public_key()):
        raise CertificateError("the key does not match the certificate")
    return chain


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        names = [str(cn.value).lower() for cn in cns]
    return tuple(names)


def info(name: str, cert_path: Path, key_path: Path) -> CertInfo:
    chain = read_chain(cert_path.read_bytes(), str(cert_path))
    leaf = chain[0]
    return CertInfo(
        name=name,
        names=dns_names(leaf),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        self_signed=leaf.issuer == leaf.subject,
        cert_path=cert_path,
        key_path=key_path,
    )


def dir_name(names: tuple[str, ...]) -> str:
    """A certificate's directory: its first name (``*.`` spelled ``_.``)."""
    first = names[0] if names else "unnamed"
    return first.replace("*", "_").replace("/", "_")


def self_signed_pem(names: list[str], *, days: int = 825) -> tuple[bytes, bytes]:
    """A self-signed ECDSA P-256 certificate for names (the first is the
    subject's CN; ``localhost`` and 127.0.0.1 are added, for local clients)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([*names, "localhost"])]
    alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_private(path: Path, data: bytes) -> None:
    """Write data to a new 0600 file and fsync it."""
    fd = create_private(path, os.O_WRONLY | os.O_TRUNC | os.O_EXCL)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_pair(cert_path: Path, key_path: Path, cert_pem: bytes, key_pem: bytes) -> None:
    """Replace a certificate and key kept as two files (the default pair):
    each written beside and renamed over, key first."""
    check_pair(cert_pem, key_pem)
    private_dir(cert_path.parent)
    private_dir(key_path.parent)
    for path, data in ((key_path, key_pem), (cert_path, cert_pem)):
        tmp = path.with_name(f".{path.name}.new")
        tmp.unlink(missing_ok=True)
        write_private(tmp, data)
        os.replace(tmp, path)
        _fsync_dir(path.parent)


class CertDir:
    """The certificates under ``root`` (``DATA_DIR/tls/certs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def list(self) -> list[CertInfo]:
        if not self.root.is_dir():
            return []
        out = []
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            try:
                out.append(info(entry.name, entry / CERT_FILE, entry / KEY_FILE))
            except (OSError, CertificateError):
                continue  # half-written or damaged: not served, shown by `cert list --all`
        return out

    def install(self, cert_pem: bytes, key_pem: bytes, name: str | None = None) -> CertInfo:
        """Keep a certificate (replacing one of the same name), all or nothing."""
        chain = check_pair(cert_pem, key_pem)
        name = name or dir_name(dns_names(chain[0]))
        if name in ("", ".", "..") or "/" in name or name.startswith("."):
            raise CertificateError(f"{name!r} is not a certificate name")
        private_dir(self.root)
        final = self.root / name
        fresh = self.root / f".{name}.new"
        old = self.root / f".{name}.old"
        for leftover in (fresh, old):
            shutil.rmtree(leftover, ignore_errors=True)
        private_dir(fresh)
        write_private(fresh / KEY_FILE, key_pem)
        write_private(fresh / CERT_FILE, cert_pem)
        _fsync_dir(fresh)
        if final.exists():
            os.rename(final, old)
        os.rename(fresh, final)
        _fsync_dir(self.root)
        shutil.rmtree(old, ignore_errors=True)
        return info(name, final / CERT_FILE, final / KEY_FILE)

    def remove(self, name: str) -> bool:
        path = self.root / name
        if name.startswith(".") or "/" in name or not path.is_dir():
            return False
        gone = self.root / f".{name}.gone"
        shutil.rmtree(gone, ignore_errors=True)
        os.rename(path, gone)
        _fsync_dir(self.root)
        shutil.rmtree(gone, ignore_errors=True)
        return True

    def stamp(self) -> int:
        """Changes whenever a certificate is installed or removed."""
        try:
            return self.root.stat().st_mtime_ns
        except FileNotFoundError:
            return 0


# The listeners that speak TLS (implicit, or by STARTTLS when it is offered).
TLS_LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "https")


def cert_dir(config: Config) -> CertDir:
    return CertDir(config.data_dir / "tls" / "certs")


def all_certificates(config: Config) -> list[CertInfo]:
    """The default certificate (when it reads) and the kept ones (what
    `mailstack cert list` and the admin pages show)."""
    out = []
    try:
        out.append(info("default", config.cert_path, config.key_path))
    except (OSError, CertificateError):
        pass
    return out + cert_dir(config).list()


def tls_listeners(config: Config) -> list[str]:
    return [name for name in TLS_LISTENERS if name in config.listen]
