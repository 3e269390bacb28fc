"""TLS contexts, chosen by SNI, and the self-signed certificate that
`mailstack init` makes.

A node serves its default certificate (``[tls] cert``/``key``, configured or
made at init for its host name) and the certificates kept under
``tls/certs/`` (``mailstack.certs.files``). Every TLS listener (SMTP
STARTTLS, submissions, IMAPS, POP3S, HTTPS) uses the one ``server_context``:
its SNI callback hands each handshake the context of the certificate that
covers the name the client asked for (exact name first, then a wildcard),
else the default. A certificate installed, renewed or removed while the node
runs is served from the next handshake on, without a restart: the callback
re-reads the directory when its modification time changes (checked at most
once a second). Clients of ours (the queue) use `client_context()`.
"""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path

from mailstack.certs.files import CertDir, CertificateError, CertInfo, replace_pair, self_signed_pem

log = logging.getLogger(__name__)

# RFC 8737 §6.2: the ALPN protocol of TLS-ALPN-01 validation.
ACME_TLS_1 = "acme-tls/1"


def make_self_signed(cert_path: Path, key_path: Path, hostname: str, *, days: int = 825) -> None:
    """Write a self-signed ECDSA P-256 certificate for hostname (and localhost), 0600."""
    cert_pem, key_pem = self_signed_pem([hostname], days=days)
    replace_pair(cert_path, key_path, cert_pem, key_pem)


class Tls:
    """The node's TLS material: the default pair and the kept certificates."""

    RELOAD_SECONDS = 1.0

    def __init__(self, cert_path: Path, key_path: Path, certs_dir: Path | None = None) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self.certs = CertDir(certs_dir or cert_path.parent / "certs")
        # Validation certificates of pending tls-alpn-01 challenges (certs/acme.py).
        self.alpn = CertDir(self.certs.root.parent / "acme" / "tls-alpn-01")
        self._alpn: dict[str, ssl.SSLContext] = {}
        self._server: ssl.SSLContext | None = None
        self._default: ssl.SSLContext | None = None
        self._by_name: list[tuple[CertInfo, ssl.SSLContext]] = []
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0

    @property
    def available(self) -> bool:
        return self.cert_path.exists() and self.key_path.exists()

    @staticmethod
    def _context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_path, key_path)
        return ctx

    def _current_stamp(self) -> tuple[int, int]:
        try:
            default = self.cert_path.stat().st_mtime_ns
        except FileNotFoundError:
            default = 0
        return default, self.certs.stamp() ^ self.alpn.stamp()

    def _reload(self) -> None:
        """Re-read the certificates if they changed; a pair that does not
        load is skipped with a log line, and the others go on being served."""
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._default = self._context(self.cert_path, self.key_path)
        except (OSError, ssl.SSLError) as exc:
            log.error("tls: cannot load the default certificate %s: %s", self.cert_path, exc)
        loaded = []
        for cert in self.certs.list():
            try:
                loaded.append((cert, self._context(cert.cert_path, cert.key_path)))
            except (OSError, ssl.SSLError, CertificateError) as exc:
                log.error("tls: cannot load certificate %s: %s", cert.name, exc)
        # Of two certificates for a name, the one that lasts longer is served.
        loaded.sort(key=lambda pair: -pair[0].not_after.timestamp())
        self._by_name = loaded
        alpn = {}
        for cert in self.alpn.list():
            try:
                ctx = self._context(cert.cert_path, cert.key_path)
            except (OSError, ssl.SSLError) as exc:
                log.error("tls: cannot load the tls-alpn-01 certificate %s: %s", cert.name, exc)
                continue
            ctx.set_alpn_protocols([ACME_TLS_1])
            alpn[cert.name] = ctx
        self._alpn = alpn

    def context_for(self, server_name: str | None) -> ssl.SSLContext | None:
        """The context whose certificate covers server_name, else the default."""
        now = time.monotonic()
        if now - self._checked >= self.RELOAD_SECONDS:
            self._checked = now
            self._reload()
        if server_name:
            name = server_name.lower().rstrip(".")
            # RFC 8737: while a challenge for the name is pending, its
            # validation certificate answers (Python's SNI callback cannot see
            # the protocols the client offers, so every client gets it).
            if name in self._alpn:
                return self._alpn[name]
            for cert, ctx in self._by_name:
                if name in cert.names:
                    return ctx
            for cert, ctx in self._by_name:
                if cert.covers(name):
                    return ctx
        return self._default

    def _sni(
        self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        ctx = self.context_for(server_name)
        if ctx is not None and ctx is not sock.context:
            sock.context = ctx
        return None

    def server_context(self) -> ssl.SSLContext:
        """The context every TLS listener starts handshakes with."""
        if self._server is None:
            self._reload()
            self._checked = time.monotonic()
            if self._default is None:
                # As before: a node without its default pair cannot serve TLS.
                self._default = self._context(self.cert_path, self.key_path)
            ctx = self._context(self.cert_path, self.key_path)
            ctx.sni_callback = self._sni
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
