"""ACME against Pebble (Debian's `pebble`, the test server Let's Encrypt
publishes), with this node's own DNS as the resolver Pebble validates
through: issue by each challenge, renew, revoke, a failed challenge, nonce
rejections. Nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailstack.certs.acme import AcmeError, OrderState
from mailstack.certs.config import AcmeConfig
from mailstack.certs.service import build_acme

PEBBLE = shutil.which("pebble")
pytestmark = pytest.mark.skipif(PEBBLE is None, reason="needs Debian's pebble")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it (Pebble's HTTPS)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailstack test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "pebble-cert.pem", directory / "pebble-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class Pebble:
    directory: str
    ca_file: Path
    http_port: int
    tls_port: int
    management: int

    def issuer_root(self) -> x509.Certificate:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        import urllib.request

        with urllib.request.urlopen(
            f"https://127.0.0.1:{self.management}/roots/0", context=ctx, timeout=10
        ) as reply:
            return x509.load_pem_x509_certificate(reply.read())


def start_pebble(
    tmp: Path, dns_port: int, nonce_reject: int = 0, va_sleep: bool = False
) -> Iterator[Pebble]:
    ca, cert, key = _test_ca(tmp)
    listen, management = free_port(), free_port()
    http_port, tls_port = free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{listen}",
            "managementListenAddress": f"127.0.0.1:{management}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (tmp / "pebble.json").write_text(json.dumps(config))
    env = os.environ | {
        "PEBBLE_WFE_NONCEREJECT": str(nonce_reject),
        "PEBBLE_AUTHZREUSE": "0",
    }
    if not va_sleep:
        env["PEBBLE_VA_NOSLEEP"] = "1"
    else:
        env.pop("PEBBLE_VA_NOSLEEP", None)
    assert PEBBLE is not None
    proc = subprocess.Popen(
        [PEBBLE, "-config", str(tmp / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
        env=env,
        stdout=open(tmp / "pebble.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", listen), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError((tmp / "pebble.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield Pebble(f"https://127.0.0.1:{listen}/dir", ca, http_port, tls_port, management)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def dns_port() -> int:
    return free_port()


@pytest.fixture
def pebble(tmp_path: Path, dns_port: int) -> Iterator[Pebble]:
    (tmp_path / "pebble").mkdir()
    yield from start_pebble(tmp_path / "pebble", dns_port)


@pytest.fixture
async def acme_node(tmp_path: Path, pebble: Pebble, dns_port: int) -> AsyncIterator[Any]:
    from support import TestNode, make_config, open_fast_store

    data_dir = tmp_path / "node"
    config = make_config(
        data_dir,
        (),
        table={
            # The node's own HTTP service answers http-01 on Pebble's httpPort,
            # and its HTTPS listener tls-alpn-01 on Pebble's tlsPort.
            "listen": {
                "dns": f"127.0.0.1:{dns_port}",
                "http": f"127.0.0.1:{pebble.http_port}",
                "https": f"127.0.0.1:{pebble.tls_port}",
            },
            "dns": {"recursion": []},
            "acme": {"directory": pebble.directory, "ca_file": str(pebble.ca_file)},
        },
    )
    node = TestNode(config, store_factory=open_fast_store)
    await node.start()
    store = node.store
    await store.zone_create("crepes.fr", nameservers=["ns.crepes.fr."], hostmaster="h@crepes.fr")
    for name in ("mail", "autoconfig", "mta-sts", "ns"):
        await store.record_add("crepes.fr", name, "A", "127.0.0.1", 60)
    # The DNS service reads the store about once a second.
    await asyncio.sleep(1.5)
    try:
        yield node
    finally:
        await node.stop()


def _chain_issuer(pem: bytes) -> str:
    return x509.load_pem_x509_certificates(pem)[0].issuer.rfc4514_string()


@pytest.mark.parametrize("challenge", ["dns-01", "http-01", "tls-alpn-01"])
async def test_each_challenge_issues_a_certificate_that_the_node_serves(
    acme_node: Any, pebble: Pebble, challenge: str
) -> None:
    acme = build_acme(acme_node.config, acme_node.store)
    kept = await acme.obtain(["mail.crepes.fr", "mta-sts.crepes.fr"], challenge)  # type: ignore[arg-type]
    assert kept.names == ("mail.crepes.fr", "mta-sts.crepes.fr")
    assert not kept.self_signed and "Pebble" in kept.issuer
    state = OrderState.read(kept.cert_path.parent)
    assert state is not None and state.challenge == challenge
    # The challenge's traces are gone: the TXT record, the token file, the
    # validation certificate.
    zone = await acme_node.store.zone_get("crepes.fr")
    assert not [r for r in zone.records if r.name.startswith("_acme-challenge")]
    assert not list((acme_node.config.data_dir / "tls" / "acme").glob("http-01/*"))
    assert not acme.challenges.alpn_dir("mail.crepes.fr").exists()
    # The HTTPS listener now serves it for the name, verified against Pebble's root.
    root = await asyncio.to_thread(pebble.issuer_root)
    ctx = ssl.create_default_context(cadata=root.public_bytes(serialization.Encoding.PEM).decode())
    acme_node.tls.RELOAD_SECONDS = 0.0
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", pebble.tls_port, ssl=ctx, server_hostname="mail.crepes.fr"
    )
    try:
        writer.write(b"GET /.well-known/jmap HTTP/1.1\r\nHost: mail.crepes.fr\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 ")
    finally:
        writer.close()


async def test_renewal_when_due_replaces_the_certificate_and_revoke_stops_serving_it(
    acme_node: Any,
) -> None:
    acme = build_acme(acme_node.config, acme_node.store)
    first = await acme.obtain(["mail.crepes.fr"], "dns-01")
    assert await acme.renew_due() == []  # Pebble's certificates last years: not due
    # Due: within renew_days of expiry (pretend it is almost over).
    almost_over = first.not_after.timestamp() - 86400
    assert await acme.renew_due(now=almost_over) == ["mail.crepes.fr"]
    second = acme.certs.list()[0]
    assert second.cert_path.read_bytes() != b"" and second.not_before >= first.not_before
    assert _chain_issuer(second.cert_path.read_bytes())
    await acme.revoke("mail.crepes.fr")
    assert acme.certs.list() == []


async def test_a_failed_challenge_is_a_clear_error_and_leaves_nothing(acme_node: Any) -> None:
    acme = build_acme(acme_node.config, acme_node.store)
    # nowhere.crepes.fr has no A record: http-01 cannot be reached.
    with pytest.raises(AcmeError, match="nowhere.crepes.fr"):
        await acme.obtain(["nowhere.crepes.fr"], "http-01")
    # A name in no zone served here: dns-01 says so before asking anything.
    with pytest.raises(AcmeError, match="no zone served here"):
        await acme.obtain(["mail.elsewhere.org"], "dns-01")
    assert acme.certs.list() == []


async def test_a_renewal_that_fails_is_recorded_and_retried_later(acme_node: Any) -> None:
    acme = build_acme(acme_node.config, acme_node.store)
    kept = await acme.obtain(["mail.crepes.fr"], "dns-01")
    # The zone goes away: the next renewal cannot prove the name.
    await acme_node.store.zone_remove("crepes.fr")
    now = kept.not_after.timestamp() - 86400
    assert await acme.renew_due(now=now) == []
    [(cert, state)] = acme.managed()
    assert state.failures == 1 and "no zone served here" in state.last_error
    assert state.next_attempt == pytest.approx(now + 3600)
    # Not retried before then; the old certificate is still served.
    assert await acme.renew_due(now=now + 60) == []
    assert acme.managed()[0][1].failures == 1
    assert cert.cert_path.exists()


@pytest.mark.parametrize(
    ("nonce_reject", "va_sleep"),
    [(40, False), (0, True)],
    ids=["nonce-rejections", "validation-delays"],
)
async def test_nonce_rejections_and_order_delays_are_waited_out(
    tmp_path: Path, dns_port: int, nonce_reject: int, va_sleep: bool
) -> None:
    """Pebble rejects 40% of nonces; or its validation sleeps up to 15 s
    before it answers, so the order stays pending and we poll."""
    from support import TestNode, make_config, open_fast_store

    (tmp_path / "p").mkdir()
    for pebble in start_pebble(tmp_path / "p", dns_port, nonce_reject, va_sleep):
        config = make_config(
            tmp_path / "node",
            (),
            table={
                "listen": {"dns": f"127.0.0.1:{dns_port}"},
                "dns": {"recursion": []},
                "acme": {"directory": pebble.directory, "ca_file": str(pebble.ca_file)},
            },
        )
        node = TestNode(config, store_factory=open_fast_store)
        await node.start()
        try:
            store = node.store
            await store.zone_create(
                "crepes.fr", nameservers=["ns.crepes.fr."], hostmaster="h@crepes.fr"
            )
            await asyncio.sleep(1.2)
            kept = await build_acme(config, store).obtain(["mail.crepes.fr"], "dns-01")
            assert "Pebble" in kept.issuer
        finally:
            await node.stop()


async def test_an_acme_server_that_answers_garbage_is_a_clear_error(tmp_path: Path) -> None:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>not a directory</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/dir", garbage)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        from mailstack.certs.acme import Acme

        acme = Acme(AcmeConfig(directory=f"http://127.0.0.1:{port}/dir"), tmp_path / "tls")
        with pytest.raises(AcmeError, match="cannot reach the ACME server"):
            await acme.obtain(["mail.crepes.fr"], "http-01")
    finally:
        await runner.cleanup()
