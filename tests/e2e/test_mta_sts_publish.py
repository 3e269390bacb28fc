"""The receiving side of MTA-STS and TLS-RPT, as an operator uses it:
`domain add --mta-sts`, `mta-sts`, the policy as the HTTPS service serves it,
and `tls-reports` reading back the reports senders mailed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mailstack.certs.mtasts import policy_id
from mailstack.certs.web import mta_sts_routes
from mailstack.commands import open_store
from mailstack.config import Config
from mailstack.mime import parse_for_store
from mailstack.queue.mtasts import parse_policy, parse_record
from mailstack.queue.tlsrpt import parse_rua, report_message
from mailstack.store import DeliveryTarget


def run(
    data: Path, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", *args, "--data-dir", str(data)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


async def zone_txt(data: Path, owner: str) -> list[str]:
    store = await open_store(Config.load(data / "mailstack.toml"))
    try:
        zone = await store.zone_get("crepes.fr.")
        return [r.rdata.strip('"') for r in zone.records if r.name == owner and r.rdtype == "TXT"]
    finally:
        await store.close()


def test_domain_add_publishes_a_policy_its_records_and_serves_it(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run(data, "init", "--hostname", "mail.crepes.fr")
    added = run(data, "domain", "add", "crepes.fr", "--mta-sts", "testing")
    assert "policy (testing) written" in added.stdout
    assert "mailstack cert request mta-sts.crepes.fr" in added.stdout  # only self-signed yet
    policy_file = data / "mta-sts" / "published" / "crepes.fr.txt"
    policy = parse_policy(policy_file.read_bytes().decode())
    assert policy.mode == "testing" and policy.matches("mail.crepes.fr")
    [sts] = asyncio.run(zone_txt(data, "_mta-sts.crepes.fr."))
    assert parse_record([sts]) == policy_id(policy_file.read_bytes().decode())
    [rpt] = asyncio.run(zone_txt(data, "_smtp._tls.crepes.fr."))
    assert parse_rua([rpt]) == ["mailto:tlsrpt@crepes.fr"]
    # The policy changes: so does the id, and one record stays.
    run(data, "mta-sts", "crepes.fr", "--mode", "enforce", "--max-age", "604800")
    [sts2] = asyncio.run(zone_txt(data, "_mta-sts.crepes.fr."))
    assert parse_record([sts2]) != parse_record([sts])
    assert parse_policy(policy_file.read_bytes().decode()).mode == "enforce"
    bad = run(data, "mta-sts", "elsewhere.example", "--mode", "enforce", check=False)
    assert bad.returncode == 1 and "not a local domain" in bad.stderr

    async def fetch() -> None:
        app = web.Application()
        app.add_routes(mta_sts_routes(data))
        async with TestClient(TestServer(app)) as client:
            ok = await client.get("/.well-known/mta-sts.txt", headers={"Host": "mta-sts.crepes.fr"})
            assert ok.status == 200 and ok.content_type == "text/plain"
            assert parse_policy(await ok.text()).mode == "enforce"
            other = await client.get(
                "/.well-known/mta-sts.txt", headers={"Host": "mta-sts.elsewhere.example"}
            )
            assert other.status == 404
            sneaky = await client.get(
                "/.well-known/mta-sts.txt", headers={"Host": "mta-sts.../../mailstack"}
            )
            assert sneaky.status == 404

    asyncio.run(fetch())


def test_tls_reports_summarises_what_senders_mailed(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run(data, "init", "--hostname", "mail.crepes.fr")
    run(data, "domain", "add", "crepes.fr", "--mta-sts", "enforce")
    # The domain's first user: postmaster@ (and so tlsrpt@) reach her.
    run(data, "user", "add", "alice@crepes.fr", "--password-stdin", stdin="hungry-alice\n")
    assert "no TLS-RPT reports" in run(data, "tls-reports").stdout
    report = {
        "organization-name": "poly.edu",
        "date-range": {
            "start-datetime": "2026-12-05T00:00:00Z",
            "end-datetime": "2026-12-05T23:59:59Z",
        },
        "contact-info": "postmaster@poly.edu",
        "report-id": "r1@poly.edu",
        "policies": [
            {
                "policy": {"policy-type": "sts", "policy-domain": "crepes.fr"},
                "summary": {
                    "total-successful-session-count": 41,
                    "total-failure-session-count": 2,
                },
                "failure-details": [
                    {
                        "result-type": "certificate-expired",
                        "receiving-mx-hostname": "mail.crepes.fr",
                        "failed-session-count": 2,
                    }
                ],
            }
        ],
    }
    raw = report_message(report, "crepes.fr", "poly.edu", "tlsrpt@crepes.fr")
    # A report part that is not gzip, and the same report mailed twice.
    broken = EmailMessage()
    broken["Subject"] = "Report Domain: crepes.fr Submitter: mallory.example"
    broken.set_content("see attached")
    broken.add_attachment(b"not gzip at all", maintype="application", subtype="tlsrpt+gzip")
    garbage = bytes(broken)

    async def deliver() -> None:
        store = await open_store(Config.load(data / "mailstack.toml"))
        try:
            [account] = await store.resolve_recipient("tlsrpt@crepes.fr")
            for message in (raw, garbage, raw):
                await store.deliver(
                    message, await parse_for_store(message), [DeliveryTarget(account.id)]
                )
        finally:
            await store.close()

    asyncio.run(deliver())
    text = run(data, "tls-reports").stdout
    assert "2026-12-05 from poly.edu (report r1@poly.edu)" in text
    assert "crepes.fr (sts): 41 sessions with TLS, 2 failed" in text
    assert "2 x certificate-expired at mail.crepes.fr" in text
    listed = json.loads(run(data, "tls-reports", "--json", "--domain", "crepes.fr").stdout)
    assert [r["report_id"] for r in listed] == ["r1@poly.edu"]
