"""Certificates by ACME (RFC 8555), through the `acme` library (certbot's).

An order proves every name by one of three challenges:

* **dns-01**: a TXT record at ``_acme-challenge.NAME`` in the zone this node
  serves for NAME, added through the store (the DNS service serves it within
  a second) and removed once the order is done. No API keys, no port 80.
* **http-01**: the key authorization at
  ``/.well-known/acme-challenge/TOKEN`` on the node's HTTP service
  (``certs.web``), which reads it from ``tls/acme/http-01/``.
* **tls-alpn-01** (RFC 8737): a self-signed validation certificate carrying
  the ``acmeIdentifier`` extension, served on TLS handshakes for NAME that
  ask for the ``acme-tls/1`` protocol (``common/tls.py`` finds it under
  ``tls/acme/tls-alpn-01/``). The `acme` library has no class for it; the
  one here only names the challenge type for the library's parser.

The challenge files live in the data directory, so `mailstack cert request`
run beside a serving node works the same as the node's own renewals.

The account key is ``tls/acme/account.pem`` (0600). Each certificate
obtained keeps its order's settings and outcome in ``acme.json`` beside it,
which renewal and `cert list` read. Renewal starts ``renew_days`` before
expiry, or in the window the server suggests (ARI, RFC 9773); a failed
attempt is retried after 1, 2, 4 ... hours (at most a day), logged, and shown
by `cert list`. Servers that reject a nonce (``badNonce``) get the request
again, up to five times.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from mailstack.certs.config import AcmeConfig, Challenge
from mailstack.certs.files import CertDir, CertInfo, write_private
from mailstack.errors import MailstackError
from mailstack.store.private import private_dir

log = logging.getLogger("mailstack.acme")

# RFC 8737 §3: id-pe-acmeIdentifier.
ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
STATE_FILE = "acme.json"
NONCE_TRIES = 5
RETRY_FIRST = 3600.0
RETRY_MAX = 86400.0

T = TypeVar("T")


class AcmeError(MailstackError):
    """An order that failed, with what the server or the challenge said."""


class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """RFC 8737 §3: the client answers with an empty object."""

    typ = "tls-alpn-01"


@challenges.Challenge.register
class TLSALPN01(challenges.KeyAuthorizationChallenge):
    """RFC 8737's challenge, so that the library parses it; we make its
    validation certificate ourselves (``alpn_certificate``)."""

    response_cls = TLSALPN01Response
    typ = response_cls.typ

    def validation(self, account_key: jose.JWK, **unused: Any) -> str:
        return self.key_authorization(account_key)


def alpn_certificate(name: str, key_authorization: str) -> tuple[bytes, bytes]:
    """RFC 8737 §3: a certificate for exactly ``name`` whose critical
    acmeIdentifier extension holds SHA-256(key authorization) as a DER
    OCTET STRING."""
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode()).digest()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER, b"\x04\x20" + digest), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class ChallengeFiles:
    """The answers to pending http-01 and tls-alpn-01 challenges, kept where
    the HTTP service and the TLS listeners of any process can read them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _http(self, token: str) -> Path | None:
        # RFC 8555 §8.3: the token is base64url; anything else names no file.
        ok = token and all(c.isalnum() or c in "-_" for c in token) and len(token) <= 256
        return self.root / "http-01" / token if ok else None

    def http_put(self, token: str, key_authorization: str) -> None:
        path = self._http(token)
        if path is None:
            raise AcmeError(f"the server's token {token!r} is not base64url")
        private_dir(path.parent)
        path.unlink(missing_ok=True)
        write_private(path, key_authorization.encode())

    def http_get(self, token: str) -> str | None:
        path = self._http(token)
        try:
            return path.read_text() if path else None
        except OSError:
            return None

    def http_remove(self, token: str) -> None:
        path = self._http(token)
        if path:
            path.unlink(missing_ok=True)

    def alpn_dir(self, name: str) -> Path:
        return self.root / "tls-alpn-01" / name.lower().rstrip(".")

    def alpn_put(self, name: str, key_authorization: str) -> None:
        cert_pem, key_pem = alpn_certificate(name, key_authorization)
        CertDir(self.root / "tls-alpn-01").install(cert_pem, key_pem, name.lower())

    def alpn_remove(self, name: str) -> None:
        CertDir(self.root / "tls-alpn-01").remove(name.lower())


@dataclass
class OrderState:
    """What `acme.json` keeps beside a certificate obtained by ACME."""

    names: list[str]
    challenge: str
    directory: str
    issued: float = 0.0
    failures: int = 0
    last_error: str = ""
    next_attempt: float = 0.0
    renew_at: float | None = None  # from ARI, when the server offers it
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, cert_dir: Path) -> OrderState | None:
        try:
            data = json.loads((cert_dir / STATE_FILE).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def write(self, cert_dir: Path) -> None:
        private_dir(cert_dir)
        tmp = cert_dir / f".{STATE_FILE}.new"
        tmp.unlink(missing_ok=True)
        write_private(tmp, json.dumps(asdict(self), indent=2).encode())
        os.replace(tmp, cert_dir / STATE_FILE)

    def status(self) -> str:
        if self.last_error:
            when = datetime.datetime.fromtimestamp(self.next_attempt, datetime.UTC)
            return (
                f"renewal failed {self.failures}x: {self.last_error}; "
                f"next try {when:%Y-%m-%d %H:%M} UTC"
            )
        return "obtained by ACME; renews by itself"


# DNS record changes go through the store: (origin, owner, value) -> None.
RecordChange = Callable[[str, str, str], Awaitable[None]]


class Acme:
    """Orders certificates for names and keeps them renewed.

    ``zones`` lists the origins this node serves (for dns-01);
    ``add_txt``/``remove_txt`` change a zone; ``served`` (optional) waits
    until the node's DNS answers the TXT record."""

    def __init__(
        self,
        config: AcmeConfig,
        tls_dir: Path,
        *,
        zones: Callable[[], Awaitable[list[str]]] | None = None,
        add_txt: RecordChange | None = None,
        remove_txt: RecordChange | None = None,
        served: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.tls_dir = tls_dir
        self.state_dir = tls_dir / "acme"
        self.certs = CertDir(tls_dir / "certs")
        self.challenges = ChallengeFiles(self.state_dir)
        self._zones = zones
        self._add_txt = add_txt
        self._remove_txt = remove_txt
        self._served = served
        self._client: client.ClientV2 | None = None
        self._key: jose.JWK | None = None
        self._lock = asyncio.Lock()

    # -- the account ---------------------------------------------------------

    def _account_key(self) -> jose.JWK:
        path = self.state_dir / "account.pem"
        private_dir(self.state_dir)
        if not path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            write_private(
                path,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise AcmeError(f"{path}: the ACME account key is not an EC key")
        return jose.JWKEC(key=loaded)

    def _connect(self) -> client.ClientV2:
        """The client with its account (registered the first time); in a thread."""
        key = self._account_key()
        verify: bool | str = self.config.ca_file or True
        net = _Network(
            key,
            alg=jose.ES256,
            # requests takes a CA bundle's path where the library says bool.
            verify_ssl=verify,  # type: ignore[arg-type]
            user_agent="mailstack",
            timeout=30,
        )
        directory = _retry(lambda: client.ClientV2.get_directory(self.config.directory_url(), net))
        acme = client.ClientV2(directory, net)
        contact = (f"mailto:{self.config.email}",) if self.config.email else ()
        new = messages.NewRegistration.from_data(terms_of_service_agreed=True)
        if contact:
            new = new.update(contact=contact)
        try:
            regr = _retry(lambda: acme.new_account(new))
        except errors.ConflictError as exc:
            # RFC 8555 §7.3.1: the key has an account already: use it.
            regr = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
            net.account = regr
            regr = _retry(lambda: acme.query_registration(regr))
        net.account = regr
        self._key = key
        return acme

    async def client(self) -> tuple[client.ClientV2, jose.JWK]:
        if self._client is None:
            self._client = await _call(self._connect, "cannot reach the ACME server")
        assert self._key is not None
        return self._client, self._key

    # -- orders --------------------------------------------------------------

    async def obtain(self, names: Sequence[str], challenge: Challenge | None = None) -> CertInfo:
        """Order a certificate for names now, prove them, keep it."""
        names = [n.lower().rstrip(".") for n in names]
        kind = challenge or self.config.challenge
        async with self._lock:
            started = time.monotonic()
            acme, key = await self.client()
            private_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            csr = crypto_util.make_csr(private_pem, names)
            order = await _call(lambda: _retry(lambda: acme.new_order(csr)), "the order failed")
            cleanups: list[Callable[[], Awaitable[None]]] = []
            try:
                answers = []
                for authz in order.authorizations:
                    if authz.body.status == messages.STATUS_VALID:
                        continue  # proven recently: the server keeps it
                    name = authz.body.identifier.value
                    challb = _pick(authz, kind)
                    cleanups.append(await self._prepare(kind, name, challb, key))
                    answers.append(challb)
                for challb in answers:
                    await _call(
                        _answer(acme, challb, challb.chall.response(key)),
                        "answering a challenge failed",
                    )
                remaining = self.config.timeout - (time.monotonic() - started)
                deadline = datetime.datetime.now() + datetime.timedelta(seconds=max(remaining, 5))
                done = await _call(
                    lambda: acme.poll_and_finalize(order, deadline), "the order was not validated"
                )
            finally:
                for cleanup in cleanups:
                    try:
                        await cleanup()
                    except Exception as exc:  # noqa: BLE001 (cleanup must not hide the outcome)
                        log.warning("acme: could not clean up a challenge: %s", exc)
            kept = self.certs.install(done.fullchain_pem.encode(), private_pem)
            OrderState(
                names=names,
                challenge=kind,
                directory=self.config.directory_url(),
                issued=time.time(),
            ).write(kept.cert_path.parent)
            log.info(
                "acme: certificate for %s obtained (%s), expires %s",
                ", ".join(names),
                kind,
                kept.not_after,
            )
            return kept

    async def _prepare(
        self, kind: str, name: str, challb: messages.ChallengeBody, key: jose.JWK
    ) -> Callable[[], Awaitable[None]]:
        """Publish the answer to one challenge; the function that withdraws it."""
        chall = challb.chall
        if kind == "dns-01":
            assert isinstance(chall, challenges.DNS01)
            owner = chall.validation_domain_name(name) + "."
            value = chall.validation(key)
            origin = await self._zone_for(owner)
            assert self._add_txt is not None and self._remove_txt is not None
            await self._add_txt(origin, owner, value)
            remove = self._remove_txt
            if self._served is not None:
                await self._served(owner, value)

            async def withdraw_txt() -> None:
                await remove(origin, owner, value)

            return withdraw_txt
        if kind == "http-01":
            assert isinstance(chall, challenges.HTTP01)
            token = chall.encode("token")
            self.challenges.http_put(token, chall.validation(key))

            async def withdraw_http() -> None:
                self.challenges.http_remove(token)

            return withdraw_http
        assert isinstance(chall, TLSALPN01)
        self.challenges.alpn_put(name, chall.key_authorization(key))

        async def withdraw_alpn() -> None:
            self.challenges.alpn_remove(name)

        return withdraw_alpn

    async def _zone_for(self, owner: str) -> str:
        if self._zones is None or self._add_txt is None:
            raise AcmeError("dns-01 needs the node's store (its zones)")
        origins = await self._zones()
        fits = [o for o in origins if _under(owner, o)]
        if not fits:
            raise AcmeError(
                f"dns-01: no zone served here holds {owner} (serve the domain's zone, "
                "or use --challenge http-01)"
            )
        return max(fits, key=len)

    async def revoke(self, name: str) -> None:
        """Revoke a certificate obtained here and stop serving it."""
        path = self.certs.root / name
        try:
            cert = x509.load_pem_x509_certificate((path / "cert.pem").read_bytes())
        except (OSError, ValueError):
            raise AcmeError(f"no certificate named {name!r}") from None
        acme, _ = await self.client()
        await _call(lambda: _retry(lambda: acme.revoke(cert, 0)), "revocation failed")
        self.certs.remove(name)
        log.info("acme: certificate %s revoked", name)

    # -- renewal -------------------------------------------------------------

    def managed(self) -> list[tuple[CertInfo, OrderState]]:
        out = []
        for cert in self.certs.list():
            state = OrderState.read(cert.cert_path.parent)
            if state is not None:
                out.append((cert, state))
        return out

    def due(self, cert: CertInfo, state: OrderState, now: float) -> bool:
        if state.next_attempt and now < state.next_attempt:
            return False
        if state.renew_at is not None and now >= state.renew_at:
            return True
        return (
            cert.days_left(datetime.datetime.fromtimestamp(now, datetime.UTC))
            <= self.config.renew_days
        )

    async def renew_due(self, now: float | None = None) -> list[str]:
        """Renew every certificate obtained by ACME that is due; the names of
        those renewed. A failure is recorded (and retried later), never raised."""
        now = time.time() if now is None else now
        renewed = []
        for cert, state in self.managed():
            await self._ask_ari(cert, state)
            if not self.due(cert, state, now):
                continue
            try:
                await self.obtain(state.names, state.challenge)  # type: ignore[arg-type]
                renewed.append(cert.name)
            except AcmeError as exc:
                state.failures += 1
                state.last_error = str(exc)
                wait = min(RETRY_FIRST * 2 ** (state.failures - 1), RETRY_MAX)
                state.next_attempt = now + wait
                state.write(cert.cert_path.parent)
                log.error(
                    "acme: renewing %s failed (%d times): %s; next try in %.0f s",
                    cert.name,
                    state.failures,
                    exc,
                    wait,
                )
        return renewed

    async def _ask_ari(self, cert: CertInfo, state: OrderState) -> None:
        """RFC 9773: where the server offers renewal information, its window
        decides; a failure to ask leaves the renew_days rule in force."""
        try:
            acme, _ = await self.client()
            pem = cert.cert_path.read_bytes()
            when, _next = await asyncio.to_thread(acme.renewal_time, pem)
        except (AcmeError, OSError, errors.Error, requests.RequestException):
            return
        if when is not None:
            state.renew_at = when.timestamp()
            state.write(cert.cert_path.parent)

    async def ensure(self, names: Sequence[str]) -> CertInfo | None:
        """Order a certificate for names unless a valid one from a CA covers
        them all (the node's start, with ``[acme] enabled``)."""
        for cert in self.certs.list():
            if not cert.self_signed and cert.days_left() > self.config.renew_days:
                if all(cert.covers(n) for n in names):
                    return None
        return await self.obtain(names)


def _under(owner: str, origin: str) -> bool:
    owner, origin = owner.lower().rstrip("."), origin.lower().rstrip(".")
    return owner == origin or owner.endswith("." + origin)


def _pick(authz: messages.AuthorizationResource, kind: str) -> messages.ChallengeBody:
    for challb in authz.body.challenges:
        if challb.chall.typ == kind:
            return challb  # type: ignore[no-any-return]
    offered = ", ".join(c.chall.typ for c in authz.body.challenges) or "none"
    raise AcmeError(
        f"{authz.body.identifier.value}: the server offers no {kind} (offers {offered})"
    )


def _answer(
    acme: client.ClientV2, challb: messages.ChallengeBody, response: Any
) -> Callable[[], Any]:
    return lambda: _retry(lambda: acme.answer_challenge(challb, response))


class _Network(client.ClientNetwork):
    """The library's network, retrying a ``badNonce`` (RFC 8555 §6.5) up to
    NONCE_TRIES times on every POST (the library itself retries once)."""

    def post(self, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(NONCE_TRIES):
            try:
                return super().post(*args, **kwargs)
            except messages.Error as exc:
                if exc.code != "badNonce" or attempt == NONCE_TRIES - 1:
                    raise
        raise AssertionError("unreachable")


def _retry(call: Callable[[], T]) -> T:
    """The call again after a ``badNonce`` (RFC 8555 §6.5), a few times."""
    for attempt in range(NONCE_TRIES):
        try:
            return call()
        except messages.Error as exc:
            if exc.code != "badNonce" or attempt == NONCE_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


async def _call(call: Callable[[], T], what: str) -> T:
    """Run a blocking ACME call in a thread; its failure as an AcmeError."""
    try:
        return await asyncio.to_thread(call)
    except AcmeError:
        raise
    except errors.ValidationError as exc:
        raise AcmeError(f"{what}: {_validation_detail(exc)}") from None
    except errors.TimeoutError:
        raise AcmeError(f"{what}: the server did not finish in time") from None
    except messages.Error as exc:
        raise AcmeError(f"{what}: {exc.typ or exc.code}: {exc.detail}") from None
    except requests.RequestException as exc:
        raise AcmeError(f"{what}: {type(exc).__name__}: {exc}") from None
    except (errors.Error, jose.errors.Error, ValueError, KeyError, TypeError) as exc:
        raise AcmeError(
            f"{what}: the server's answer makes no sense ({type(exc).__name__}: {exc})"
        ) from None


def _validation_detail(exc: errors.ValidationError) -> str:
    details = []
    for authzr in exc.failed_authzrs:
        for challb in authzr.body.challenges:
            if challb.error is not None:
                details.append(
                    f"{authzr.body.identifier.value}: {challb.error.detail or challb.error.typ}"
                )
    return "; ".join(details) or "a challenge failed"
