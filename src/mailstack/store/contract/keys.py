"""The signing-key part of the store contract: DKIM keys per domain and selector.

A key is a private key (PKCS#8 PEM), the public key as it goes into the
selector's TXT record (the ``p=`` value, RFC 6376 §3.6.1), an algorithm
(``rsa-sha256`` or ``ed25519-sha256``, RFC 8463) and whether it signs new
mail. Rotation retires the active keys and adds new ones in one transaction;
a retired key stays (its TXT record stays published) until it is removed, so
mail signed just before the rotation still verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailstack.errors import StoreError

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    algorithm: str
    private_key: bytes
    public_key: str
    created: int = 0
    active: bool = True


class KeyStore(Protocol):
    async def dkim_key_add(self, key: DkimKey) -> DkimKey: ...
    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        """Every key (active first, newest first), of one domain or of all."""
        ...

    async def dkim_active_keys(self, domain: str) -> list[DkimKey]:
        """The keys that sign new mail from ``domain`` (none: mail goes unsigned)."""
        ...

    async def dkim_rotate(self, domain: str, keys: Sequence[DkimKey]) -> list[DkimKey]:
        """Retire the domain's active keys and add ``keys`` as active, atomically."""
        ...

    async def dkim_key_remove(self, domain: str, selector: str) -> None: ...


def canonical_key(key: DkimKey, created: int) -> DkimKey:
    """The key as a store keeps it: a known algorithm, lowercase names, a creation time."""
    if key.algorithm not in ALGORITHMS:
        raise StoreError(f"unknown DKIM algorithm {key.algorithm!r}")
    domain = key.domain.lower().rstrip(".")
    selector = key.selector.lower()
    if not domain or not selector:
        raise StoreError("a DKIM key needs a domain and a selector")
    return DkimKey(
        domain, selector, key.algorithm, key.private_key, key.public_key, created, key.active
    )
