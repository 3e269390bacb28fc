"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) for the domains this node
receives mail for: what `mailstack domain mta-sts` publishes, what the HTTPS
service serves, and what `mailstack tls-reports` reads back.

Publishing a policy for DOMAIN:

* the policy text, kept as ``mta-sts/published/DOMAIN.txt`` in the data
  directory and served at ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt``
  (``certs/web.py``; the certificate for ``mta-sts.DOMAIN`` is chosen by SNI);
* in the domain's zone, when this node serves it: ``_mta-sts`` TXT with an
  id that changes whenever the policy does (its hash), ``mta-sts`` as a
  CNAME of the node's host name, and ``_smtp._tls`` TXT asking for reports
  at ``tlsrpt@DOMAIN``, an alias of ``postmaster@DOMAIN`` so the node
  receives them itself.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

from mailstack.certs.files import write_private
from mailstack.store.private import private_dir

MODES = ("enforce", "testing", "none")
WELL_KNOWN = "/.well-known/mta-sts.txt"
DEFAULT_MAX_AGE = {"enforce": 604800, "testing": 86400, "none": 86400}
REPORTS_LOCAL_PART = "tlsrpt"


def policy_text(mode: str, mx: Iterable[str], max_age: int) -> str:
    """RFC 8461 §3.2, CRLF line ends."""
    lines = ["version: STSv1", f"mode: {mode}"]
    lines += [f"mx: {host.lower().rstrip('.')}" for host in dict.fromkeys(mx)]
    lines.append(f"max_age: {max_age}")
    return "\r\n".join(lines) + "\r\n"


def policy_id(text: str) -> str:
    """An id (1 to 32 alphanumerics) that changes with the policy."""
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def published_path(data_dir: Path, domain: str) -> Path:
    return data_dir / "mta-sts" / "published" / f"{domain.lower().rstrip('.')}.txt"


def write_policy(data_dir: Path, domain: str, text: str) -> Path:
    path = published_path(data_dir, domain)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    write_private(tmp, text.encode())
    os.replace(tmp, path)
    return path


def read_policy(data_dir: Path, host: str) -> str | None:
    """The policy for a request to ``mta-sts.DOMAIN`` (the Host header)."""
    host = host.split(":", 1)[0].lower().rstrip(".")
    if not host.startswith("mta-sts.") or "/" in host or host.count("..") or len(host) > 253:
        return None
    try:
        return published_path(data_dir, host[len("mta-sts.") :]).read_bytes().decode()
    except OSError:
        return None


def txt_records(domain: str, text: str, rua: str | None = None) -> dict[str, str]:
    """owner (relative to the zone) -> TXT value, the records to publish."""
    rua = rua or f"mailto:{REPORTS_LOCAL_PART}@{domain}"
    return {
        "_mta-sts": f"v=STSv1; id={policy_id(text)}",
        "_smtp._tls": f"v=TLSRPTv1; rua={rua}",
    }


@dataclass
class ReceivedReport:
    """One TLS-RPT report found in a mailbox."""

    organization: str
    start: str
    end: str
    report_id: str
    policies: list[dict[str, Any]]


def reports_in(raw: bytes) -> list[ReceivedReport]:
    """The TLS-RPT reports a message carries (RFC 8460 §5.3: gzipped or
    plain JSON parts); [] for any other message or a part that does not parse."""
    message = message_from_bytes(raw, policy=email_policy.default)
    out = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind not in ("application/tlsrpt+gzip", "application/tlsrpt+json"):
            continue
        try:
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            if kind.endswith("gzip"):
                payload = gzip.decompress(payload[: 16 * 1024 * 1024])
            data = json.loads(payload)
            out.append(
                ReceivedReport(
                    organization=str(data.get("organization-name", "?")),
                    start=str(data["date-range"]["start-datetime"]),
                    end=str(data["date-range"]["end-datetime"]),
                    report_id=str(data.get("report-id", "")),
                    policies=list(data.get("policies", [])),
                )
            )
        except (OSError, EOFError, ValueError, KeyError, TypeError):
            continue
    return out


def summarise(report: ReceivedReport) -> list[str]:
    """A report in a few plain lines."""
    lines = [f"{report.start[:10]} from {report.organization} (report {report.report_id})"]
    for entry in report.policies:
        policy = entry.get("policy", {})
        summary = entry.get("summary", {})
        ok = summary.get("total-successful-session-count", 0)
        failed = summary.get("total-failure-session-count", 0)
        lines.append(
            f"  {policy.get('policy-domain', '?')} ({policy.get('policy-type', '?')}): "
            f"{ok} sessions with TLS, {failed} failed"
        )
        for detail in entry.get("failure-details", []):
            where = detail.get("receiving-mx-hostname") or detail.get("receiving-ip") or ""
            lines.append(
                f"    {detail.get('failed-session-count', 0)} x {detail.get('result-type', '?')}"
                + (f" at {where}" if where else "")
            )
    return lines
