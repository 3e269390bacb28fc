"""The MX's inbound checks: SPF, DKIM, DMARC, and what to do with the message.

``check_inbound()`` runs the three checks under one deadline and returns an
``InboundVerdict``: the results, the Authentication-Results field to
prepend, and the action the configured policy asks for. A check that runs
out of time or meets a DNS failure gives temperror; nothing here raises.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailstack.msgauth import dkim, dmarc, results, spf
from mailstack.msgauth.dnsapi import AuthResolver, ResolverAdapter

log = logging.getLogger("mailstack.msgauth")

# [smtp] message_auth: what the MX does with the results.
MODES = ("off", "record", "enforce")


@dataclass(frozen=True, slots=True)
class InboundVerdict:
    spf: spf.SpfResult
    spf_identity: str
    dkim: list[dkim.DkimResult] = field(default_factory=list)
    dmarc: dmarc.DmarcResult = field(default_factory=lambda: dmarc.DmarcResult("none"))
    header: bytes = b""
    action: str = "accept"  # accept, quarantine, reject

    def sender_verified(self, mail_from: str) -> bool:
        """Whether the envelope sender is proven, so that mail may be sent to
        it unasked (a "delivered" DSN, issue 15): SPF passed for MAIL FROM
        itself, or a DKIM signature passed whose domain is aligned (relaxed,
        RFC 7489 §3.1) with the MAIL FROM domain."""
        domain = mail_from.rpartition("@")[2]
        if not domain:
            return False
        if self.spf.result == "pass" and self.spf_identity.lower() == mail_from.lower():
            return True
        return any(
            r.result == "pass" and r.domain and dmarc.aligned(r.domain, domain, "r")
            for r in self.dkim
        )


async def check_inbound(
    message: bytes,
    *,
    client_ip: str,
    helo: str,
    mail_from: str,
    resolver: AuthResolver,
    authserv_id: str,
    enforce: bool = False,
    deadline: float = 20.0,
    dkim_limit: int = 5,
    sample: Callable[[], float] = random.random,
) -> InboundVerdict:
    """SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489) for one received message."""
    spf_result = spf.SpfResult("temperror", "", problem="checks timed out")
    identity = mail_from or f"postmaster@{helo}"
    dkim_results: list[dkim.DkimResult] = []
    dmarc_result = dmarc.DmarcResult("temperror", problem="checks timed out")

    async def run() -> None:
        nonlocal spf_result, identity, dkim_results, dmarc_result
        spf_task = asyncio.ensure_future(
            spf.check_mail(client_ip, mail_from, helo, resolver, receiver=authserv_id)
        )
        dkim_task = asyncio.ensure_future(dkim.verify(message, resolver, limit=dkim_limit))
        try:
            spf_result, identity = await spf_task
            dkim_results = await dkim_task
        finally:
            spf_task.cancel()
            dkim_task.cancel()
        dmarc_result = await dmarc.evaluate(
            message,
            spf_result=spf_result.result,
            spf_domain=spf_result.domain,
            dkim_results=dkim_results,
            resolver=resolver,
            sample=sample,
        )

    try:
        await asyncio.wait_for(run(), deadline)
    except TimeoutError:
        log.info("message authentication checks timed out after %.1fs", deadline)
    except Exception:
        # A bug must not cost the sender its message: what did not finish
        # stays temperror, and the log keeps the details.
        log.exception("message authentication checks failed")
    action = "accept"
    if enforce and dmarc_result.result == "fail":
        if dmarc_result.disposition == "reject":
            action = "reject"
        elif dmarc_result.disposition == "quarantine":
            action = "quarantine"
    field_bytes = results.header(
        authserv_id,
        spf=spf_result,
        spf_identity=identity,
        helo=helo,
        dkim=dkim_results,
        dmarc=dmarc_result,
    )
    return InboundVerdict(spf_result, identity, dkim_results, dmarc_result, field_bytes, action)


@dataclass(frozen=True, slots=True)
class Inbound:
    """What the MX does with one message: its bytes (our forged fields removed),
    the field to prepend, the action, and the verdict (None: not checked)."""

    message: bytes
    header: bytes = b""
    action: str = "accept"
    verdict: InboundVerdict | None = None

    def summary(self) -> str:
        if self.verdict is None:
            return "message authentication: not checked"
        v = self.verdict
        dkim_text = ",".join(r.result for r in v.dkim) or "none"
        return (
            f"message authentication: spf={v.spf.result} dkim={dkim_text} "
            f"dmarc={v.dmarc.result} action={self.action}"
        )


class InboundChecker:
    """The MX's side: ``[smtp] message_auth`` (off, record, enforce) over the node.

    Without a resolver of the node's choosing (``Node.resolver_configured``)
    nothing is checked and no field is added, but forged fields claiming our
    authserv-id still go.
    """

    def __init__(self, node: Any, *, mode: str, authserv_id: str) -> None:
        self.node = node
        self.mode = mode
        self.authserv_id = authserv_id
        self._adapter: ResolverAdapter | None = None
        self._looked_up = False

    def _resolver(self) -> ResolverAdapter | None:
        if not self._looked_up:
            self._looked_up = True
            if self.node.resolver_configured:
                timeout = self.node.limits.msgauth_dns_timeout
                self._adapter = ResolverAdapter(self.node.resolver, timeout=timeout)
        return self._adapter

    async def check(self, message: bytes, *, client_ip: str, helo: str, mail_from: str) -> Inbound:
        if self.mode == "off":
            return Inbound(message)
        # RFC 8601 §5: fields claiming our authserv-id come from a forger.
        message = results.strip_ours(message, self.authserv_id)
        resolver = self._resolver()
        if resolver is None:
            return Inbound(message)
        limits = self.node.limits
        verdict = await check_inbound(
            message,
            client_ip=client_ip,
            helo=helo,
            mail_from=mail_from,
            resolver=resolver,
            authserv_id=self.authserv_id,
            enforce=self.mode == "enforce",
            deadline=limits.msgauth_timeout,
            dkim_limit=limits.dkim_signatures,
        )
        return Inbound(message, verdict.header, verdict.action, verdict)
