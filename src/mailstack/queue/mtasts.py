"""MTA-STS for outbound mail (RFC 8461): find, fetch, cache and apply a
recipient domain's policy.

* The TXT record ``_mta-sts.DOMAIN`` (``v=STSv1; id=...``) says a policy
  exists and names its version. Exactly one such record must be there
  (§3.1); otherwise the domain counts as having no record.
* The policy comes from ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt``:
  the certificate is validated (WebPKI, or ``[queue] ca_file``), no
  redirects are followed, the body must be ``text/plain``, at most
  ``mta_sts_max_size`` octets, and fetched within ``mta_sts_timeout``
  seconds (§3.3). The host's addresses come from the node's resolver, and a
  private, loopback or link-local one is refused unless ``[queue]
  fetch_allow`` names its network (no SSRF).
* A policy is cached for its ``max_age`` under ``mta-sts/`` in the data
  directory and fetched again only when the record's id changes or the
  policy expires (§5.1). A failure to look up or fetch never replaces a
  policy in force: the cached one goes on applying until it expires.
* ``enforce``: only MX hosts the policy names are tried, with TLS and a
  certificate valid for the MX host; otherwise the message is deferred
  (4.7.5). ``testing``: delivery goes on as before, and what would have
  failed is reported by TLS-RPT (``tlsrpt.py``). ``none``: no policy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from mailstack.certs.mtasts import WELL_KNOWN
from mailstack.common import fetch
from mailstack.common.fetch import Refused, usable_addresses
from mailstack.store.private import create_private, private_dir

log = logging.getLogger("mailstack.queue")

MAX_AGE_LIMIT = 31557600  # §3.2: at most one year
_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")

# TLS-RPT result types (RFC 8460 §4.3) for what a policy lookup found.
FETCH_ERROR = "sts-policy-fetch-error"
POLICY_INVALID = "sts-policy-invalid"
WEBPKI_INVALID = "sts-webpki-invalid"


class PolicyError(Exception):
    """A policy that could not be had; ``result`` is its TLS-RPT result type."""

    def __init__(self, message: str, result: str = FETCH_ERROR) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True, slots=True)
class Policy:
    mode: str  # enforce, testing or none
    mx: tuple[str, ...]
    max_age: int
    text: str = ""

    def matches(self, host: str) -> bool:
        """§4.1: an MX name matches a pattern exactly, or ``*.`` stands for
        exactly one leftmost label."""
        host = host.lower().rstrip(".")
        for pattern in self.mx:
            if pattern.startswith("*."):
                if "." in host and host.split(".", 1)[1] == pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False

    def policy_strings(self) -> list[str]:
        """The policy's lines, as a TLS-RPT report quotes them (RFC 8460 §4.4)."""
        return [line for line in self.text.replace("\r\n", "\n").split("\n") if line]


def parse_record(texts: Sequence[str]) -> str | None:
    """The id of the one ``v=STSv1`` record among TXT texts, else None (§3.1)."""
    found = [t for t in texts if t.startswith("v=STSv1")]
    if len(found) != 1:
        return None
    fields: dict[str, str] = {}
    for part in found[0].split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            return None
        fields.setdefault(key.strip(), value.strip())
    if fields.get("v") != "STSv1" or not _ID.match(fields.get("id", "")):
        return None
    return fields["id"]


def parse_policy(text: str) -> Policy:
    """§3.2: ``key: value`` lines (CRLF or LF); version STSv1, a mode, mx
    patterns (at least one unless mode is none) and max_age; unknown keys
    are ignored."""
    fields: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise PolicyError(f"policy line without a colon: {line[:60]!r}", POLICY_INVALID)
        fields.setdefault(key.strip(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        raise PolicyError("policy version is not STSv1", POLICY_INVALID)
    mode = (fields.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none") or len(fields.get("mode", [])) != 1:
        raise PolicyError(f"policy mode {mode!r} is not enforce, testing or none", POLICY_INVALID)
    ages = fields.get("max_age") or [""]
    if len(ages) != 1 or not ages[0].isdigit() or len(ages[0]) > 10:
        raise PolicyError("policy max_age is not a number of seconds", POLICY_INVALID)
    max_age = min(int(ages[0]), MAX_AGE_LIMIT)
    mx = tuple(p.lower().rstrip(".") for p in fields.get("mx", []))
    if mode != "none" and not mx:
        raise PolicyError("policy names no mx", POLICY_INVALID)
    for pattern in mx:
        name = pattern[2:] if pattern.startswith("*.") else pattern
        if not name or "*" in name or " " in name:
            raise PolicyError(f"bad mx pattern {pattern!r}", POLICY_INVALID)
    return Policy(mode, mx, max_age, text)


@dataclass
class Cached:
    policy: Policy
    id: str
    fetched: float
    expires: float


class PolicyCache:
    """Policies by domain, one JSON file each under ``root`` (0600)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, domain: str) -> Path:
        return self.root / f"{domain.lower().rstrip('.')}.json"

    def get(self, domain: str) -> Cached | None:
        try:
            data = json.loads(self._path(domain).read_text())
            policy = Policy(**{**data["policy"], "mx": tuple(data["policy"]["mx"])})
            return Cached(policy, data["id"], data["fetched"], data["expires"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, domain: str, cached: Cached) -> None:
        private_dir(self.root)
        path = self._path(domain)
        tmp = path.with_name(f".{path.name}.new")
        tmp.unlink(missing_ok=True)
        fd = create_private(tmp, os.O_WRONLY | os.O_TRUNC | os.O_EXCL)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(cached), f)
        os.replace(tmp, path)


async def fetch_policy(
    domain: str,
    addresses: Callable[[str], Awaitable[list[str]]],
    *,
    allow: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
    ca_file: str = "",
    timeout: float = 60.0,
    max_size: int = 65536,
) -> Policy:
    """The policy at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (§3.3)."""
    host = f"mta-sts.{domain.lower().rstrip('.')}"
    try:
        usable = await asyncio.wait_for(usable_addresses(host, addresses, allow), timeout)
    except Refused as exc:
        raise PolicyError(str(exc)) from None
    except TimeoutError:
        raise PolicyError(f"{host}: address lookup timed out") from None
    try:
        async with fetch.session(usable, ca_file=ca_file, timeout=timeout) as session:
            url = f"https://{host}{WELL_KNOWN}"
            headers = {"Accept": "text/plain"}
            async with session.get(url, allow_redirects=False, headers=headers) as reply:
                if reply.status != 200:
                    raise PolicyError(f"{host} answered HTTP {reply.status}")
                if reply.content_type != "text/plain":
                    raise PolicyError(f"{host} served {reply.content_type}, not text/plain")
                body = await reply.content.read(max_size + 1)
                if len(body) > max_size:
                    raise PolicyError(f"{host}: the policy is over {max_size} octets")
    except aiohttp.ClientConnectorCertificateError as exc:
        why = f"{host}: certificate not valid ({exc.certificate_error})"
        raise PolicyError(why, WEBPKI_INVALID) from None
    except aiohttp.ClientSSLError as exc:
        raise PolicyError(f"{host}: TLS failed ({exc})", WEBPKI_INVALID) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise PolicyError(f"{host}: fetch failed ({type(exc).__name__})") from None
    try:
        return parse_policy(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise PolicyError(f"{host}: the policy is not UTF-8", POLICY_INVALID) from None


@dataclass(frozen=True, slots=True)
class Lookup:
    """What applies to a domain: its policy (None: no MTA-STS), whether it
    came from the cache, and the TLS-RPT result type of a failure on the way
    (a record without a fetchable policy, an invalid policy)."""

    policy: Policy | None
    failure: str | None = None
    detail: str = ""


class MtaSts:
    """The policy in force for each recipient domain."""

    def __init__(
        self,
        txt: Callable[[str], Awaitable[list[str]]],
        fetch: Callable[[str], Awaitable[Policy]],
        cache: PolicyCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._txt = txt
        self._fetch = fetch
        self.cache = cache
        self.clock = clock
        self._inflight: dict[str, asyncio.Future[Lookup]] = {}

    async def lookup(self, domain: str) -> Lookup:
        domain = domain.lower().rstrip(".")
        running = self._inflight.get(domain)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Lookup] = asyncio.get_running_loop().create_future()
        self._inflight[domain] = future
        try:
            result = await self._lookup(domain)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._inflight[domain]

    async def _lookup(self, domain: str) -> Lookup:
        now = self.clock()
        cached = self.cache.get(domain)
        if cached is not None and cached.expires <= now:
            cached = None
        try:
            record_id = parse_record(await self._txt(f"_mta-sts.{domain}"))
        except Exception as exc:  # noqa: BLE001 (a failed lookup never drops a policy)
            log.info("mta-sts: %s: TXT lookup failed (%s)", domain, type(exc).__name__)
            return Lookup(cached.policy if cached else None)
        if record_id is None:
            # §10.3: a policy in force outlives its record until max_age.
            return Lookup(cached.policy if cached else None)
        if cached is not None and cached.id == record_id:
            return Lookup(cached.policy)
        try:
            policy = await self._fetch(domain)
        except PolicyError as exc:
            log.warning("mta-sts: %s: %s", domain, exc)
            # §5.1: keep a policy in force rather than take a failure as none.
            return Lookup(cached.policy if cached else None, exc.result, str(exc))
        self.cache.put(domain, Cached(policy, record_id, now, now + policy.max_age))
        log.info(
            "mta-sts: %s: policy %s (mode %s, max_age %d)",
            domain,
            record_id,
            policy.mode,
            policy.max_age,
        )
        return Lookup(policy)


def sts_mx_check(policy: Policy | None, hosts: Sequence[Any]) -> tuple[list[Any], bool]:
    """The hosts to try under a policy, and whether TLS with a valid
    certificate is required (enforce). Under ``testing`` all hosts stay."""
    if policy is None or policy.mode != "enforce":
        return list(hosts), False
    return [h for h in hosts if policy.matches(h.name)], True


async def post_report(
    url: str,
    body: bytes,
    resolver: Any,
    allow: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
    ca_file: str = "",
    timeout: float = 60.0,
) -> None:
    """POST a gzipped TLS-RPT report to an https rua (RFC 8460 §5.4), with the
    same address rules as a policy fetch. Raises PolicyError on failure."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme != "https" or not host:
        raise PolicyError(f"{url}: not an https URL")
    try:
        usable = await asyncio.wait_for(usable_addresses(host, resolver.addresses, allow), timeout)
    except (Refused, TimeoutError) as exc:
        raise PolicyError(f"{url}: {exc or 'address lookup timed out'}") from None
    try:
        async with fetch.session(usable, ca_file=ca_file, timeout=timeout) as session:
            headers = {"Content-Type": "application/tlsrpt+gzip"}
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
                if not 200 <= r.status < 300:
                    raise PolicyError(f"{url} answered HTTP {r.status}")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise PolicyError(f"{url}: {type(exc).__name__}") from None
