"""DKIM key pairs: generation, the selector TXT record, rotation.

Each domain gets two keys (RFC 8463 §4 recommends signing with both while
verifiers learn Ed25519): RSA-2048 (RFC 8301 §3.2: at least 1024 bits,
2048 recommended) and Ed25519. Their selectors are ``<name>-rsa`` and
``<name>-ed25519``, ``<name>`` being chosen by the administrator or the
date by default, so a rotation publishes new selectors beside the old ones.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailstack.errors import MailstackError
from mailstack.store import DkimKey

RSA_BITS = 2048
_PEM = serialization.Encoding.PEM
_PKCS8 = serialization.PrivateFormat.PKCS8
_NO_PASSWORD = serialization.NoEncryption()


def default_selector(today: datetime.date | None = None) -> str:
    return "ms" + (today or datetime.datetime.now(datetime.UTC).date()).strftime("%Y%m%d")


def check_selector(selector: str) -> str:
    """RFC 6376 §3.1: a selector is one or more DNS labels (we keep them to LDH)."""
    labels = selector.lower().split(".")
    for label in labels:
        ok = 0 < len(label) <= 54 and label.replace("-", "").isalnum() and label.isascii()
        if not ok or label.startswith("-") or label.endswith("-"):
            raise MailstackError(f"bad DKIM selector {selector!r}: letters, digits, hyphens")
    return ".".join(labels)


def generate_rsa(domain: str, selector: str, bits: int = RSA_BITS) -> DkimKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    # RFC 6376 §3.6.1: p= is the base64 of the DER SubjectPublicKeyInfo.
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = private.private_bytes(_PEM, _PKCS8, _NO_PASSWORD)
    return DkimKey(domain, selector, "rsa-sha256", pem, base64.b64encode(public).decode())


def generate_ed25519(domain: str, selector: str) -> DkimKey:
    private = ed25519.Ed25519PrivateKey.generate()
    # RFC 8463 §4.2: p= is the base64 of the raw 32-octet public key.
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    pem = private.private_bytes(_PEM, _PKCS8, _NO_PASSWORD)
    return DkimKey(domain, selector, "ed25519-sha256", pem, base64.b64encode(public).decode())


def new_keys(domain: str, selector: str | None = None) -> list[DkimKey]:
    name = check_selector(selector or default_selector())
    domain = domain.lower().rstrip(".")
    return [generate_rsa(domain, f"{name}-rsa"), generate_ed25519(domain, f"{name}-ed25519")]


def txt_value(key: DkimKey) -> str:
    """The selector record's text (RFC 6376 §3.6.1, RFC 8463 §4.2)."""
    kind = "rsa" if key.algorithm == "rsa-sha256" else "ed25519"
    return f"v=DKIM1; k={kind}; p={key.public_key}"


def txt_owner(key: DkimKey) -> str:
    return f"{key.selector}._domainkey.{key.domain}."


async def free_selector(store: Any, domain: str, selector: str | None) -> str:
    """The given selector, or the date's, suffixed b, c... when that day's is taken."""
    if selector:
        return selector
    taken = {key.selector for key in await store.dkim_keys(domain)}
    base = default_selector()
    for suffix in ["", *"bcdefghijklmnopqrstuvwxyz"]:
        if f"{base}{suffix}-rsa" not in taken and f"{base}{suffix}-ed25519" not in taken:
            return base + suffix
    raise MailstackError("no free DKIM selector today; give one with --selector")


async def create(store: Any, domain: str, selector: str | None = None) -> list[DkimKey]:
    """New active keys for a domain that has none."""
    name = await free_selector(store, domain, selector)
    return [await store.dkim_key_add(key) for key in new_keys(domain, name)]


async def rotate(store: Any, domain: str, selector: str | None = None) -> list[DkimKey]:
    """New active keys; the old ones stop signing but stay published until removed."""
    name = await free_selector(store, domain, selector)
    stored: Sequence[DkimKey] = await store.dkim_rotate(domain, new_keys(domain, name))
    return list(stored)
