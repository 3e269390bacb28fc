"""SNI picks the right certificate on every TLS listener, checked with a
client we did not write (`openssl s_client -servername`), and a certificate
installed while the node runs is served from the next handshake on."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailstack.certs.files import CertDir, self_signed_pem

from support import mailstack_cli

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _subject(port: int, server_name: str | None, starttls: str | None = None) -> str:
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief"]
    if server_name:
        cmd += ["-servername", server_name]
    else:
        cmd += ["-noservername"]
    if starttls:
        cmd += ["-starttls", starttls]
    done = subprocess.run(cmd, input=b"", capture_output=True, timeout=20)
    text = done.stderr.decode() + done.stdout.decode()
    for line in text.splitlines():
        if line.startswith("Peer certificate:"):
            return line.split(":", 1)[1].replace(" ", "")
    raise AssertionError(f"no peer certificate in: {text}")


@pytest.mark.parametrize(
    ("listener", "starttls"),
    [
        ("imaps", None),
        ("pop3s", None),
        ("submissions", None),
        ("https", None),
        ("smtp", "smtp"),
        ("submission", "smtp"),
        ("imap", "imap"),
        ("pop3", "pop3"),
    ],
)
async def test_each_listener_serves_the_certificate_for_the_name_asked(
    node_factory, listener: str, starttls: str | None
) -> None:
    node = await node_factory(listen=(listener,))
    port = node.port(listener)
    node.tls.certs.install(*self_signed_pem(["mail.crepes.fr"]))
    node.tls.certs.install(*self_signed_pem(["*.hamburger.edu"]))
    node.tls.RELOAD_SECONDS = 0.0
    run = asyncio.to_thread
    assert "CN=mail.crepes.fr" in await run(_subject, port, "mail.crepes.fr", starttls)
    assert "CN=*.hamburger.edu" in await run(_subject, port, "imap.hamburger.edu", starttls)
    assert "CN=mx.test" in await run(_subject, port, "unknown.example", starttls)
    assert "CN=mx.test" in await run(_subject, port, None, starttls)


async def test_a_certificate_imported_while_running_is_served_without_restart(
    node_factory,
) -> None:
    node = await node_factory(listen=("imaps",))
    port = node.port("imaps")
    node.tls.RELOAD_SECONDS = 0.0
    assert "CN=mx.test" in await asyncio.to_thread(_subject, port, "mail.crepes.fr")
    # Another process (`mailstack cert import`) writes the directory.
    certs = CertDir(node.config.data_dir / "tls" / "certs")
    await asyncio.to_thread(certs.install, *self_signed_pem(["mail.crepes.fr"]))
    assert "CN=mail.crepes.fr" in await asyncio.to_thread(_subject, port, "mail.crepes.fr")
    await asyncio.to_thread(certs.remove, "mail.crepes.fr")
    assert "CN=mx.test" in await asyncio.to_thread(_subject, port, "mail.crepes.fr")


def test_cert_cli_lists_refuses_bad_input_and_makes_self_signed(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    mailstack_cli(data_dir, "init", "--hostname", "mx.crepes.fr")
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mailstack.cli", *args, "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    cert_a, _ = self_signed_pem(["a.example"])
    _, key_b = self_signed_pem(["b.example"])
    (tmp_path / "a.pem").write_bytes(cert_a)
    (tmp_path / "b.key").write_bytes(key_b)
    (tmp_path / "junk.pem").write_text("not a certificate")
    bad = run("cert", "import", str(tmp_path / "a.pem"), str(tmp_path / "b.key"))
    assert bad.returncode == 1 and "does not match" in bad.stderr
    assert "Traceback" not in bad.stderr
    junk = run("cert", "import", str(tmp_path / "junk.pem"), str(tmp_path / "b.key"))
    assert junk.returncode == 1 and "not a PEM certificate" in junk.stderr
    made = run("cert", "self-signed", "mail.crepes.fr", "mta-sts.crepes.fr")
    assert made.returncode == 0, made.stderr
    listed = run("cert", "list")
    assert "default: mx.crepes.fr" in listed.stdout
    assert "mail.crepes.fr: mail.crepes.fr, mta-sts.crepes.fr" in listed.stdout
    assert "used by smtp" in listed.stdout
    gone = run("cert", "remove", "nothing.here")
    assert gone.returncode == 1 and "no certificate named" in gone.stderr
