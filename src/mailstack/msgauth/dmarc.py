"""DMARC (RFC 7489): policy discovery, identifier alignment, the disposition.

The organizational domain comes from the Public Suffix List as the
`publicsuffixlist` package ships it (RFC 7489 §3.2). ``evaluate()`` takes
the SPF and DKIM results already computed and the resolver for the policy
lookup; sampling (``pct``) takes a random source so tests fix it.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from mailstack.msgauth.dkim import DkimResult
from mailstack.msgauth.dnsapi import AuthResolver, DnsTempError

POLICIES = ("none", "quarantine", "reject")


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label (a suffix itself: itself)."""
    domain = domain.lower().rstrip(".")
    return _psl().privatesuffix(domain) or domain


def aligned(a: str, b: str, mode: str) -> bool:
    """§3.1: strict alignment is equality; relaxed, the same organizational domain."""
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    policy: str
    subdomain_policy: str
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100


@dataclass(frozen=True, slots=True)
class DmarcResult:
    result: str  # none, pass, fail, temperror, permerror (RFC 8601 §2.7.1, RFC 7489 §11.2)
    header_from: str = ""
    policy: str = "none"  # the policy that applies to this message's From domain
    disposition: str = "none"  # what the receiver should do: none, quarantine, reject
    problem: str = ""


def parse_record(text: str) -> DmarcRecord | None:
    """§6.3, §6.6.3 step 6: the record, or None when DMARC does not apply."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if not sep:
            if part.strip():
                return None
            continue
        tags.setdefault(name.strip().lower(), value.strip())
    if tags.get("v") != "DMARC1" or not text.lstrip().startswith("v"):
        return None
    policy = tags.get("p", "").lower()
    subdomain = tags.get("sp", policy).lower()
    if policy not in POLICIES or subdomain not in POLICIES:
        # Step 6: with a valid rua= act as p=none; without it no DMARC at all.
        if "rua" in tags and "mailto:" in tags["rua"].lower():
            policy, subdomain = "none", "none"
        else:
            return None
    adkim = tags.get("adkim", "r").lower()
    aspf = tags.get("aspf", "r").lower()
    try:
        pct = int(tags.get("pct", "100"))
    except ValueError:
        pct = 100
    return DmarcRecord(
        policy,
        subdomain,
        adkim if adkim in ("r", "s") else "r",
        aspf if aspf in ("r", "s") else "r",
        min(max(pct, 0), 100),
    )


def header_from_domain(message: bytes) -> str | None:
    """§6.6.1: the domain of the single RFC5322.From address (None: not exactly one)."""
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[: end + 2]
    parsed = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    values = parsed.get_all("From") or []
    if len(values) != 1:
        return None
    addresses = [a for _, a in email.utils.getaddresses([str(values[0])]) if a]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None
    domain = addresses[0].rpartition("@")[2].strip().lower().rstrip(".")
    return domain or None


async def _records(resolver: AuthResolver, domain: str) -> list[str]:
    texts = await resolver.txt(f"_dmarc.{domain}")
    return [t for t in texts if t.lstrip().startswith("v=DMARC1")]


async def discover(resolver: AuthResolver, domain: str) -> tuple[DmarcRecord | None, bool]:
    """§6.6.3: the record at the From domain, else at its organizational domain.

    Returns the record and whether it came from the organizational domain
    (then ``sp=`` applies to a subdomain). Only where there is no record at
    all does discovery go on to the organizational domain; several records
    end it with none (step 5), so duplicates never inherit the parent's policy.
    """
    records = await _records(resolver, domain)
    from_org = False
    if not records:
        org = organizational_domain(domain)
        if org == domain:
            return None, False
        records, from_org = await _records(resolver, org), True
    if len(records) != 1:
        return None, False
    record = parse_record(records[0])
    return (record, from_org) if record is not None else (None, False)


async def evaluate(
    message: bytes,
    *,
    spf_result: str,
    spf_domain: str,
    dkim_results: Sequence[DkimResult],
    resolver: AuthResolver,
    sample: Callable[[], float] = random.random,
) -> DmarcResult:
    """§6.6: the DMARC result and the disposition for one message."""
    from_domain = header_from_domain(message)
    if from_domain is None:
        return DmarcResult("permerror", problem="not exactly one From address")
    try:
        record, inherited = await discover(resolver, from_domain)
    except DnsTempError as exc:
        return DmarcResult("temperror", from_domain, problem=exc.problem)
    if record is None:
        return DmarcResult("none", from_domain)
    policy = record.subdomain_policy if inherited else record.policy
    # §3.1.2: SPF aligns when it passed for a domain aligned with From.
    spf_ok = spf_result == "pass" and aligned(spf_domain, from_domain, record.aspf)
    # §3.1.1: DKIM aligns when a passing signature's d= is aligned with From.
    dkim_ok = any(
        r.result == "pass" and aligned(r.domain, from_domain, record.adkim) for r in dkim_results
    )
    if spf_ok or dkim_ok:
        return DmarcResult("pass", from_domain, policy, "none")
    disposition = policy
    # §6.6.4: a message outside the pct sample gets the next policy down.
    if record.pct < 100 and sample() * 100 >= record.pct:
        disposition = {"reject": "quarantine", "quarantine": "none"}.get(policy, "none")
    return DmarcResult("fail", from_domain, policy, disposition)
