"""Test support shared by the suites. Import it as `from support import ...`
(never `from conftest import ...`: several conftest modules share that name)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
from argon2 import PasswordHasher

from mailstack.app import Node
from mailstack.common.tls import make_self_signed
from mailstack.config import Config
from mailstack.mime import PARSE_CODEC, parse_for_store
from mailstack.store import DeliveryTarget
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


async def open_fast_store(config: Config) -> SqliteStore[Any]:
    return await SqliteStore.open(
        config.database_path, codec=PARSE_CODEC, password_hasher=FAST_HASHER
    )


# The store's writes with the parse that real callers hand it (the store
# never parses): tests call these where they would call store.append().


async def append(
    store: Any, mailbox_id: int, raw: bytes, flags: Any = (), internaldate: Any = None
) -> int:
    return int(await store.append(mailbox_id, raw, await parse_for_store(raw), flags, internaldate))


async def deliver(store: Any, raw: bytes, targets: list[DeliveryTarget]) -> Any:
    return await store.deliver(raw, await parse_for_store(raw), targets)


async def deliver_some(store: Any, raw: bytes, targets: list[DeliveryTarget]) -> Any:
    return await store.deliver_some(raw, await parse_for_store(raw), targets)


def submission_client(port: int, user: str, password: str) -> smtplib.SMTP:
    """A submission session logged in as ``user`` after STARTTLS (the test
    node's certificate is self-signed, so it is not verified)."""
    smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="client-pc", timeout=10)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    smtp.starttls(context=context)
    smtp.login(user, password)
    return smtp


def mailstack_cli(data_dir: Path, *args: str, stdin: str | None = None) -> None:
    """Run `mailstack ARGS --data-dir DATA_DIR` as a user would; fail on error."""
    subprocess.run(
        [sys.executable, "-m", "mailstack.cli", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def start_serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    """`mailstack serve` as a child process; its ports once it listens."""
    ports = data_dir / "ports.json"
    ports.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailstack.cli", "serve", "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not ports.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError("mailstack serve did not start")
        time.sleep(0.05)
    return proc, json.loads(ports.read_text())


# The PostgreSQL server the tests use (CI starts it; trust auth for postgres).
POSTGRES_URL = os.environ.get("MAILSTACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


class PostgresDatabase:
    """A database of its own on the test PostgreSQL server, made at the first
    open and dropped by ``drop()``; ``open()`` twice gives two stores on it,
    as two nodes would."""

    def __init__(self, _tmp_path: Path | None = None) -> None:
        self.name = f"mailstack_test_{os.getpid()}_{os.urandom(4).hex()}"
        self.url = f"{POSTGRES_URL}/{self.name}"
        self.created = False

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self) -> str:
        if not self.created:
            await self._admin(f'CREATE DATABASE "{self.name}"')
            self.created = True
        return self.url

    async def open(self, **options: Any) -> Any:
        from mailstack.store.postgres import PostgresStore

        return await PostgresStore.open(
            await self.create(), codec=PARSE_CODEC, password_hasher=FAST_HASHER, **options
        )

    async def drop(self) -> None:
        if self.created:
            await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False


@contextlib.asynccontextmanager
async def postgres_nodes(
    tmp_path: Path, user: str, password: str, count: int = 2
) -> AsyncIterator[list[TestNode]]:
    """``count`` nodes with smtp and imap on one new PostgreSQL database (the
    store as `mailstack serve` opens it), ``user`` added; all stopped and
    the database dropped at the end."""
    database = PostgresDatabase()
    url = await database.create()
    started: list[TestNode] = []
    try:
        for n in range(count):
            config = make_config(
                tmp_path / f"node{n}",
                ("smtp", "imap"),
                table={"store": {"backend": "postgresql", "url": url, "pool_size": 4}},
            )
            node = TestNode(config)
            await node.start()
            started.append(node)
        await started[0].add_user(user, password)
        yield started
    finally:
        for node in started:
            await node.stop()
        await database.drop()


async def wait_served(
    port: int, name: str, rdtype: str = "TXT", address: str = "127.0.0.1"
) -> None:
    """The DNS service picks managed zones up by polling; wait until ``name``
    is answered."""
    for _ in range(100):
        query = dns.message.make_query(name, rdtype)
        try:
            answer = await dns.asyncquery.udp(query, address, port=port, timeout=1)
        except dns.exception.Timeout:
            continue
        if answer.answer:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} {rdtype} never served")


class TestCA:
    """A certificate authority for tests: its PEM bundle at ``path``, and
    certificates it issues for names (and 127.0.0.1)."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._ser, self._ec = x509, hashes, serialization, ec
        self._now = datetime.datetime.now(datetime.UTC)
        self._delta = datetime.timedelta
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailstack test CA")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - datetime.timedelta(hours=1))
            .not_valid_after(self._now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "test-ca.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, *names: str, expired: bool = False) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for names, signed by this CA."""
        import ipaddress

        x509, ser = self._x509, self._ser
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        start = self._now - self._delta(days=10 if expired else 0, hours=1)
        end = self._now - self._delta(days=1) if expired else self._now + self._delta(days=1)
        alt: list[Any] = [x509.DNSName(n) for n in names]
        alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        from cryptography.x509.oid import NameOID

        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(self.key, self._hashes.SHA256())
        )
        key_pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        return cert.public_bytes(ser.Encoding.PEM), key_pem


# The poly.edu zone of the queue tests: its MX is 127.0.0.5, where a
# SubjectRecorder listens as the remote server.
POLY_ZONE = """$ORIGIN poly.edu.
$TTL 300
@ IN SOA ns.poly.edu. hostmaster.poly.edu. 1 3600 600 86400 300
@ IN NS ns.poly.edu.
ns IN A 127.0.0.4
@ IN MX 10 mx.poly.edu.
mx IN A 127.0.0.5
"""


class SubjectRecorder:
    """An aiosmtpd handler keeping the Subject of every message it takes,
    after ``delay`` seconds each (a slow remote keeps a backlog queued)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.subjects: list[str] = []
        self.lock = threading.Lock()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        subject = envelope.original_content.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0]
        with self.lock:
            self.subjects.append(subject.decode())
        return "250 2.0.0 OK"
