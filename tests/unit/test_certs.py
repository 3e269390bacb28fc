"""The certificates a node keeps (certs/files.py) and SNI choosing among them
(common/tls.py), without sockets: Tls.context_for is what the SNI callback
asks."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from mailstack.certs.files import CertDir, CertificateError, check_pair, info, self_signed_pem
from mailstack.common.tls import Tls, make_self_signed


def _leaf_names(tls: Tls, server_name: str | None) -> tuple[str, ...]:
    ctx = tls.context_for(server_name)
    assert ctx is not None
    for cert, kept in tls._by_name:
        if kept is ctx:
            return cert.names
    return ("default",)


def test_install_keeps_a_pair_private_and_named_after_its_first_name(tmp_path: Path) -> None:
    certs = CertDir(tmp_path / "certs")
    kept = certs.install(*self_signed_pem(["mail.crepes.fr", "autoconfig.crepes.fr"]))
    assert kept.name == "mail.crepes.fr"
    assert "autoconfig.crepes.fr" in kept.names
    for path in (kept.cert_path, kept.key_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [c.name for c in certs.list()] == ["mail.crepes.fr"]
    # Replaced whole, under the same name; nothing half-written is left beside it.
    again = certs.install(*self_signed_pem(["mail.crepes.fr"]))
    assert again.names == ("mail.crepes.fr", "localhost")
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == ["mail.crepes.fr"]
    assert certs.remove("mail.crepes.fr")
    assert certs.list() == []
    assert not certs.remove("mail.crepes.fr")


def test_a_key_that_does_not_match_or_a_file_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    cert_a, key_a = self_signed_pem(["a.example"])
    _, key_b = self_signed_pem(["b.example"])
    certs = CertDir(tmp_path / "certs")
    with pytest.raises(CertificateError, match="does not match"):
        certs.install(cert_a, key_b)
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        check_pair(b"garbage", key_a)
    with pytest.raises(CertificateError, match="private key"):
        check_pair(cert_a, b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CertificateError, match="not a certificate name"):
        certs.install(cert_a, key_a, name="..")
    assert certs.list() == []


def test_a_wildcard_covers_exactly_one_label(tmp_path: Path) -> None:
    kept = CertDir(tmp_path).install(*self_signed_pem(["*.crepes.fr"]))
    assert kept.name == "_.crepes.fr"
    assert kept.covers("mail.crepes.fr") and kept.covers("MAIL.CREPES.FR.")
    assert not kept.covers("crepes.fr") and not kept.covers("a.mail.crepes.fr")


def test_sni_picks_the_certificate_for_the_name_and_sees_changes(tmp_path: Path) -> None:
    make_self_signed(tmp_path / "cert.pem", tmp_path / "key.pem", "mx.test")
    tls = Tls(tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "certs")
    tls.RELOAD_SECONDS = 0.0
    tls.server_context()
    certs = tls.certs
    certs.install(*self_signed_pem(["mail.crepes.fr"]))
    certs.install(*self_signed_pem(["*.hamburger.edu"]))
    time.sleep(0.01)  # a new directory mtime
    assert _leaf_names(tls, "MAIL.crepes.fr.")[0] == "mail.crepes.fr"
    assert _leaf_names(tls, "imap.hamburger.edu")[0] == "*.hamburger.edu"
    # One label only (RFC 6125 §6.4.3), and no name: the default.
    assert _leaf_names(tls, "a.b.hamburger.edu") == ("default",)
    assert _leaf_names(tls, None) == ("default",)
    certs.remove("mail.crepes.fr")
    time.sleep(0.01)
    assert _leaf_names(tls, "mail.crepes.fr") == ("default",)


def test_the_default_pair_is_replaced_atomically_and_stays_0600(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    make_self_signed(cert, key, "mx.test")
    first = info("default", cert, key)
    make_self_signed(cert, key, "mx2.test")
    second = info("default", cert, key)
    assert first.names[0] == "mx.test" and second.names[0] == "mx2.test"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["cert.pem", "key.pem"]
