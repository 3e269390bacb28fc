"""TLS-RPT for outbound mail (RFC 8460): count what happened to each
session, then send each day's report to the domains that ask for one.

The queue runner records every outbound session's TLS outcome per UTC day
and recipient domain: how many sessions succeeded, and for each failure its
result type (RFC 8460 §4.3: ``starttls-not-supported``,
``certificate-host-mismatch``, ``certificate-expired``,
``certificate-not-trusted``, ``validation-failure``, and the MTA-STS ones
``sts-policy-fetch-error``, ``sts-policy-invalid``, ``sts-webpki-invalid``),
the MX host and the addresses. Counts are kept under ``tls-rpt/`` in the data
directory, one JSON file a day, written at most every few seconds.

Once a day is over, a domain whose ``_smtp._tls`` TXT record
(``v=TLSRPTv1; rua=...``) names where to send gets the day's report: the
JSON of §4.4, gzipped, by mail (``mailto:``, a ``multipart/report;
report-type=tlsrpt`` message through the queue, §5.3) or by HTTPS POST
(``https:``, ``application/tlsrpt+gzip``, §5.4, with the fetch rules of
MTA-STS: no private addresses unless allowed).
"""

from __future__ import annotations

import datetime
import email.message
import email.policy
import email.utils
import gzip
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mailstack.store.private import create_private, private_dir

log = logging.getLogger("mailstack.queue")

FLUSH_SECONDS = 5.0
REPORT_TYPE = "application/tlsrpt+gzip"


def day_of(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%d")


def parse_rua(texts: Sequence[str]) -> list[str]:
    """The rua URIs of the one ``v=TLSRPTv1`` record among TXT texts (RFC
    8460 §3); [] when there is none, or more than one."""
    found = [t for t in texts if t.replace(" ", "").startswith("v=TLSRPTv1")]
    if len(found) != 1:
        return []
    for part in found[0].split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key.strip() == "rua":
            return [
                u.strip()
                for u in value.split(",")
                if u.strip().startswith(("mailto:", "https:"))
            ]
    return []


class TlsResults:
    """Per day and domain: the policy applied, successes and failures."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.clock = clock
        self._days: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._flushed = 0.0

    def _day(self, day: str) -> dict[str, Any]:
        if day not in self._days:
            try:
                self._days[day] = json.loads((self.root / f"{day}.json").read_text())
            except (OSError, ValueError):
                self._days[day] = {"domains": {}, "sent": False}
        return self._days[day]

    def _domain(self, domain: str, policy: dict[str, Any]) -> dict[str, Any]:
        day = day_of(self.clock())
        domains = self._day(day)["domains"]
        entry = domains.setdefault(
            domain.lower().rstrip("."), {"policy": policy, "success": 0, "failures": {}}
        )
        if policy.get("policy-type") == "sts":
            entry["policy"] = policy
        self._dirty.add(day)
        return entry

    def success(self, domain: str, policy: dict[str, Any]) -> None:
        self._domain(domain, policy)["success"] += 1
        self._maybe_flush()

    def failure(
        self,
        domain: str,
        policy: dict[str, Any],
        result: str,
        mx_host: str = "",
        address: str = "",
        sending: str = "",
    ) -> None:
        key = "|".join((result, mx_host, address, sending))
        failures = self._domain(domain, policy)["failures"]
        failures[key] = failures.get(key, 0) + 1
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if self.clock() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._flushed = self.clock()
        if not self._dirty:
            return
        private_dir(self.root)
        for day in sorted(self._dirty):
            path = self.root / f"{day}.json"
            tmp = path.with_name(f".{path.name}.new")
            tmp.unlink(missing_ok=True)
            with os.fdopen(create_private(tmp, os.O_WRONLY | os.O_TRUNC | os.O_EXCL), "w") as f:
                json.dump(self._days[day], f)
            os.replace(tmp, path)
        self._dirty.clear()

    def days_to_report(self) -> list[str]:
        """Days before today with counts not yet reported."""
        self.flush()
        today = day_of(self.clock())
        out: list[str] = []
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob("*.json")):
            day = path.stem
            if day < today and not self._day(day).get("sent"):
                out.append(day)
        return out

    def mark_sent(self, day: str) -> None:
        self._day(day)["sent"] = True
        self._dirty.add(day)
        self.flush()

    def report(self, day: str, domain: str, organization: str, contact: str) -> dict[str, Any]:
        """RFC 8460 §4.4: the day's report for one policy domain."""
        entry = self._day(day)["domains"][domain]
        details = []
        failed = 0
        for key, count in sorted(entry["failures"].items()):
            result, mx_host, address, sending = key.split("|")
            detail: dict[str, Any] = {"result-type": result, "failed-session-count": count}
            if sending:
                detail["sending-mta-ip"] = sending
            if mx_host:
                detail["receiving-mx-hostname"] = mx_host
            if address:
                detail["receiving-ip"] = address
            details.append(detail)
            failed += count
        report_id = f"{day}.{domain}.{uuid.uuid4().hex[:12]}@{organization}"
        return {
            "organization-name": organization,
            "date-range": {
                "start-datetime": f"{day}T00:00:00Z",
                "end-datetime": f"{day}T23:59:59Z",
            },
            "contact-info": contact,
            "report-id": report_id,
            "policies": [
                {
                    "policy": entry["policy"],
                    "summary": {
                        "total-successful-session-count": entry["success"],
                        "total-failure-session-count": failed,
                    },
                    "failure-details": details,
                }
            ],
        }

    def domains(self, day: str) -> list[str]:
        return sorted(self._day(day)["domains"])


def report_message(report: dict[str, Any], domain: str, submitter: str, to: str) -> bytes:
    """RFC 8460 §5.3: the report mailed, as multipart/report; report-type=tlsrpt."""
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"TLS reports <noreply-tlsrpt@{submitter}>"
    msg["To"] = to
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["Message-ID"] = email.utils.make_msgid(domain=submitter)
    report_id = report["report-id"]
    msg["Subject"] = f"Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>"
    msg["TLS-Report-Domain"] = domain
    msg["TLS-Report-Submitter"] = submitter
    msg.set_content(
        f"This is an aggregate TLS report from {submitter} for {domain} (RFC 8460).\n"
    )
    msg.add_attachment(
        gzip.compress(json.dumps(report).encode()),
        maintype="application",
        subtype="tlsrpt+gzip",
        filename=f"{submitter}!{domain}!{report['date-range']['start-datetime'][:10]}.json.gz",
    )
    msg.replace_header("Content-Type", 'multipart/report; report-type="tlsrpt"')
    # replace_header drops the boundary: give it back.
    msg.set_boundary(uuid.uuid4().hex)
    return bytes(msg)


@dataclass
class Senders:
    """How reports leave: mail(mail_from, to, data) queues a message;
    post(url, body) POSTs one (raising on failure); txt(name) looks up TXT."""

    mail: Callable[[str, str, bytes], Awaitable[None]]
    post: Callable[[str, bytes], Awaitable[None]]
    txt: Callable[[str], Awaitable[list[str]]]


async def send_reports(
    results: TlsResults, senders: Senders, organization: str, contact: str
) -> list[tuple[str, str, str]]:
    """Send every finished day's reports; (day, domain, rua) of each sent."""
    sent = []
    for day in results.days_to_report():
        for domain in results.domains(day):
            try:
                ruas = parse_rua(await senders.txt(f"_smtp._tls.{domain}"))
            except Exception as exc:  # noqa: BLE001 (a lookup failure skips the domain)
                log.info("tls-rpt: %s: TXT lookup failed (%s)", domain, type(exc).__name__)
                continue
            if not ruas:
                continue
            report = results.report(day, domain, organization, contact)
            for rua in ruas:
                try:
                    if rua.startswith("mailto:"):
                        to = unquote(urlsplit(rua).path).split("!")[0]
                        data = report_message(report, domain, organization, to)
                        await senders.mail(contact, to, data)
                    else:
                        await senders.post(rua, gzip.compress(json.dumps(report).encode()))
                    sent.append((day, domain, rua))
                    log.info("tls-rpt: %s report for %s sent to %s", day, domain, rua)
                except Exception as exc:  # noqa: BLE001 (one rua failing leaves the others)
                    log.warning("tls-rpt: %s report for %s to %s failed: %s", day, domain, rua, exc)
        results.mark_sent(day)
    return sent
