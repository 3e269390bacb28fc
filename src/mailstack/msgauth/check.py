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

from mailstack.msgauth import dkim, dmarc, results, spf
from mailstack.msgauth.dnsapi import AuthResolver

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
