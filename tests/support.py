"""Test support shared by the suites. Import it as `from support import ...`
(never `from conftest import ...`: several conftest modules share that name)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from mailstack.app import Node
from mailstack.common.tls import make_self_signed
from mailstack.config import Config
from mailstack.store.sqlite import SqliteStore

# Argon2id with small parameters keeps the suite fast; production uses the
# library's RFC 9106 defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

_CERT_CACHE: dict[str, tuple[bytes, bytes]] = {}


def write_certificate(data_dir: Path, hostname: str = "mx.test") -> None:
    """A self-signed pair, made once per test run and copied."""
    tls = data_dir / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    if hostname not in _CERT_CACHE:
        make_self_signed(tls / "cert.pem", tls / "key.pem", hostname)
        _CERT_CACHE[hostname] = ((tls / "cert.pem").read_bytes(), (tls / "key.pem").read_bytes())
    else:
        cert, key = _CERT_CACHE[hostname]
        (tls / "cert.pem").write_bytes(cert)
        (tls / "key.pem").write_bytes(key)
        os.chmod(tls / "key.pem", 0o600)


class TestNode(Node):
    """A started node with helpers for tests."""

    __test__ = False

    async def add_user(self, address: str, password: str = "hungry") -> Any:
        assert self.store is not None
        domain = address.rpartition("@")[2]
        if not await self.store.is_local_domain(domain):
            await self.store.domain_add(domain)
        return await self.store.account_add(address, password)


def make_config(
    data_dir: Path,
    listen: tuple[str, ...],
    hostname: str = "mx.test",
    host: str = "127.0.0.1",
    table: dict[str, Any] | None = None,
) -> Config:
    write_certificate(data_dir, hostname)
    full: dict[str, Any] = {
        "node": {"hostname": hostname},
        "listen": {n: f"{host}:0" for n in listen},
    }
    if "dns" in listen:
        # Recursion from the real root hints is never wanted in a test: tests
        # that resolve set their own [dns] recursion and 127.0.0.x root hints.
        full["dns"] = {"recursion": []}
    for key, value in (table or {}).items():
        full.setdefault(key, {}).update(value)
    return Config.from_table(full, data_dir)


async def open_fast_store(config: Config) -> SqliteStore:
    return await SqliteStore.open(config.database_path, password_hasher=FAST_HASHER)
