"""Are a mail domain's records published as they should be?

``check_published()`` asks DNS, through an ``AuthResolver``, for the MX,
SPF, DKIM and DMARC records ``records.mail_records()`` says the domain
needs, and reports each as ok, missing or different, with what to publish.
An MX whose host has no address is ``unresolved``: RFC 5321 §5.1 looks up
the exchange's A/AAAA, and mail to the domain would not arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailstack.msgauth import spf
from mailstack.msgauth.dmarc import parse_record
from mailstack.msgauth.dnsapi import AuthResolver, DnsTempError
from mailstack.store import ZoneRecord


@dataclass(frozen=True, slots=True)
class Finding:
    status: str  # ok, missing, different, unresolved, error
    record: ZoneRecord
    found: tuple[str, ...] = ()

    def to_text(self) -> str:
        line = f"{self.status:9} {self.record.name} {self.record.rdtype}"
        if self.status == "ok":
            return line
        found = "; ".join(self.found) or "nothing"
        publish = self.record.to_text()
        if self.status == "unresolved":
            host = self.record.rdata.split()[-1]
            publish = f"an A or AAAA record for {host} (the MX host)"
        return f"{line}\n          found: {found}\n          publish: {publish}"


def _txt_text(rdata: str) -> str:
    """The text of TXT rdata in presentation form ("a" "b" -> ab)."""
    parts = []
    for chunk in rdata.split('" "'):
        parts.append(chunk.strip('"').replace('\\"', '"').replace("\\\\", "\\"))
    return "".join(parts)


async def _check(resolver: AuthResolver, record: ZoneRecord, senders: list[str]) -> Finding:
    name = record.name.rstrip(".")
    if record.rdtype == "MX":
        pref, _, host = record.rdata.partition(" ")
        found_mx = await resolver.mx(name)
        shown = tuple(f"{p} {h}" for p, h in found_mx)
        ok = any(h.lower() == host.rstrip(".").lower() for _, h in found_mx)
        if not ok:
            return Finding("different" if found_mx else "missing", record, shown)
        exchange = host.rstrip(".")
        if not (await resolver.a(exchange) or await resolver.aaaa(exchange)):
            return Finding("unresolved", record, (f"{exchange} has no A or AAAA record",))
        return Finding("ok", record, shown)
    if record.rdtype in ("A", "AAAA"):
        found = await (resolver.a(name) if record.rdtype == "A" else resolver.aaaa(name))
        status = "ok" if record.rdata in found else ("different" if found else "missing")
        return Finding(status, record, tuple(found))
    if record.rdtype == "TXT":
        wanted = _txt_text(record.rdata)
        found_txt = await resolver.txt(name)
        kind = wanted.split(";")[0].split(" ")[0].lower()  # v=spf1, v=DKIM1, v=DMARC1
        same_kind = tuple(t for t in found_txt if t.lower().startswith(kind))
        if wanted in found_txt:
            return Finding("ok", record, same_kind)
        if not same_kind:
            return Finding("missing", record)
        if kind == "v=dmarc1" and len(same_kind) == 1 and parse_record(same_kind[0]):
            # The policy is the domain owner's choice: any one valid record will do.
            return Finding("ok", record, same_kind)
        if kind == "v=spf1" and senders:
            # A record of the owner's own is fine if it lets our host send.
            outcomes = [
                await spf.check_host(ip, name, f"postmaster@{name}", resolver) for ip in senders
            ]
            if all(outcome.result == "pass" for outcome in outcomes):
                return Finding("ok", record, same_kind)
        return Finding("different", record, same_kind)
    raise ValueError(record.rdtype)


async def check_published(resolver: AuthResolver, expected: Sequence[ZoneRecord]) -> list[Finding]:
    """One finding per MX, A/AAAA and TXT record of ``expected`` (SRV are not checked)."""
    findings = []
    # The addresses our mail leaves from: what the domain's SPF must allow.
    senders = [r.rdata for r in expected if r.rdtype in ("A", "AAAA")]
    for record in expected:
        if record.rdtype not in ("MX", "A", "AAAA", "TXT"):
            continue
        try:
            findings.append(await _check(resolver, record, senders))
        except DnsTempError as exc:
            findings.append(Finding("error", record, (str(exc),)))
    return findings
