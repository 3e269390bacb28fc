"""Right after `mailstack domain add`, the node's DNS answers for the domain
(no SERVFAIL while the managed zones wait for their next poll), and `domain
check` on a default node asks the node's own DNS listener."""

from __future__ import annotations

import re
import subprocess
import sys

import dns.message
import dns.query
import dns.rcode

from support import start_serve


def mailstack(data, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailstack.cli", *args, "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60,
    )


def test_a_domain_answers_at_once_and_domain_check_asks_the_node(tmp_path):
    data = tmp_path / "data"
    assert mailstack(data, "init", "--hostname", "mx.crepes.fr").returncode == 0
    config = data / "mailstack.toml"
    # Every service on a free port; [dns] recursion stays the default (loopback).
    config.write_text(re.sub(r'"127\.0\.0\.1:\d+"', '"127.0.0.1:0"', config.read_text()))
    proc, ports = start_serve(data)
    try:
        for domain in ("crepes.fr", "hamburger.edu", "lecture.example"):
            added = mailstack(data, "domain", "add", domain)
            assert added.returncode == 0, added.stderr
            # At once, before the node's next look at the store's zones.
            query = dns.message.make_query(domain, "MX")
            reply = dns.query.udp(query, "127.0.0.1", port=ports["dns"], timeout=5)
            assert reply.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(reply.rcode())
            assert reply.answer and reply.answer[0][0].exchange.to_text() == "mx.crepes.fr."
        checked = mailstack(data, "domain", "check", "crepes.fr", "--address", "127.0.0.1")
        assert "no resolver configured" not in checked.stderr
        assert re.search(r"^ok .*crepes\.fr.*MX", checked.stdout, re.M | re.I), checked
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # A node that is not running: say so, not "no resolver configured".
    refused = mailstack(data, "domain", "check", "crepes.fr")
    assert refused.returncode == 1 and "does not answer" in refused.stderr
    assert "start `mailstack serve`" in refused.stderr
