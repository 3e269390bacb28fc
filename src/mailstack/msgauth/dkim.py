"""DKIM signing and verification (RFC 6376, RFC 8463 Ed25519, RFC 8301) with dkimpy.

``sign(message, domain, store)`` gives the DKIM-Signature header fields to
prepend, one per active key of the domain (none: b"").
``verify(message, resolver)`` checks each DKIM-Signature (up to a limit):
the selector keys are fetched through our ``AuthResolver``, then dkimpy
checks the signature against them in a worker thread, so neither DNS nor
hashing a large body blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import dkim
import dkim.util

from mailstack.msgauth.dnsapi import AuthResolver, DnsTempError
from mailstack.msgauth.keys import signing_secret
from mailstack.store.keys import DkimKey

log = logging.getLogger("mailstack.msgauth")

# RFC 8301 §3.2: verifiers MUST NOT consider signatures with RSA keys below
# 1024 bits valid.
MIN_RSA_BITS = 1024
# relaxed/relaxed survives the whitespace changes relays make (RFC 6376 §3.4).
CANONICALIZE = (b"relaxed", b"relaxed")


@dataclass(frozen=True, slots=True)
class DkimResult:
    """One signature's outcome in RFC 8601 §2.7.1 terms."""

    result: str  # pass, fail, neutral, temperror, permerror
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    # The first characters of b=, to tell signatures apart (RFC 6008).
    b: str = ""
    problem: str = ""


def sign_with(message: bytes, keys: list[DkimKey]) -> bytes:
    """DKIM-Signature fields for ``message``, one per key (no I/O)."""
    headers = []
    for key in keys:
        # RFC 6376 §5.4.2: From is signed once more than it occurs, so
        # adding another From breaks the signature (dkimpy's "frozen" set).
        header = dkim.sign(
            message,
            key.selector.encode(),
            key.domain.encode(),
            signing_secret(key),
            canonicalize=CANONICALIZE,
            signature_algorithm=key.algorithm.encode(),
        )
        headers.append(header)
    return b"".join(headers)


async def sign(message: bytes, domain: str, store: Any) -> bytes:
    """The DKIM-Signature header fields to prepend to ``message`` sent from ``domain``."""
    keys = await store.dkim_active_keys(domain)
    if not keys:
        return b""
    return await asyncio.to_thread(sign_with, message, keys)


def _signatures(message: bytes) -> list[bytes]:
    headers, _ = dkim.rfc822_parse(message)
    return [value for name, value in headers if name.lower() == b"dkim-signature"]


def _tags(value: bytes) -> dict[bytes, bytes]:
    try:
        return dict(dkim.util.parse_tag_value(value))
    except dkim.util.InvalidTagValueList:
        return {}


def _text(value: bytes | None) -> str:
    return (value or b"").decode("ascii", "replace")


def _check_one(message: bytes, index: int, record: bytes) -> tuple[str, str]:
    """The RFC 8601 result of signature ``index`` against its key ``record``."""

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return record

    try:
        verifier = dkim.DKIM(message, minkey=MIN_RSA_BITS)
        if verifier.verify(idx=index, dnsfunc=dnsfunc):
            return "pass", ""
        return "fail", "signature did not verify"
    except dkim.ValidationError as exc:
        # A body hash mismatch, an expired signature: it does not verify.
        return "fail", str(exc)
    except dkim.KeyFormatError as exc:
        return "permerror", str(exc)
    except dkim.DKIMException as exc:
        # RFC 8601 §2.7.1 "neutral": the signature could not be processed.
        return "neutral", str(exc)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        # Hostile input can reach corners of dkimpy that raise plain errors
        # (bad base64, odd tag values); the signature is unprocessable.
        log.debug("DKIM verification error: %r", exc)
        return "neutral", "signature could not be processed"


async def verify(message: bytes, resolver: AuthResolver, *, limit: int = 5) -> list[DkimResult]:
    """Every DKIM-Signature's result, top to bottom (none at all: an empty list)."""
    try:
        values = _signatures(message)
    except (dkim.DKIMException, IndexError, ValueError):
        # dkimpy's header parser raises IndexError on a leading continuation line.
        return [DkimResult("permerror", problem="message headers cannot be parsed")]
    results = []
    for index, value in enumerate(values[:limit]):
        results.append(await _verify_one(message, index, value, resolver))
    return results


async def _verify_one(
    message: bytes, index: int, value: bytes, resolver: AuthResolver
) -> DkimResult:
    tags = _tags(value)
    domain, selector = _text(tags.get(b"d")), _text(tags.get(b"s"))
    algorithm, b = _text(tags.get(b"a")), _text(tags.get(b"b"))
    b = "".join(b.split())[:8]
    if not domain or not selector:
        return DkimResult("neutral", domain, selector, algorithm, b, "signature syntax")
    try:
        texts = await resolver.txt(f"{selector}._domainkey.{domain}")
    except DnsTempError as exc:
        return DkimResult("temperror", domain, selector, algorithm, b, str(exc))
    keys = [t for t in texts if "p=" in t]
    if not keys:
        # RFC 6376 §6.1.2: no key record is a PERMFAIL.
        return DkimResult("permerror", domain, selector, algorithm, b, "no key record")
    result, problem = await asyncio.to_thread(_check_one, message, index, keys[0].encode())
    return DkimResult(result, domain, selector, algorithm, b, problem)
