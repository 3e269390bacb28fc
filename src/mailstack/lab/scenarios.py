"""`mailstack lab run NAME`: the lectures' stories played on a running lab.

Each scenario prints its transcript (the DNS steps numbered as in the
lectures' figures, the S:/C: dialogues of SMTP (RFC 5321), POP3 (RFC 1939)
and IMAP (RFC 3501)), checks its outcome and raises `ScenarioFailed` with the
reason when the outcome does not hold. Clients are the user agent
(`mailstack send` / `mailstack read`), dnspython and smtplib, each speaking
from the address of the lab host it plays.
"""

from __future__ import annotations

import contextlib
import http.client
import imaplib
import io
import smtplib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdatatype

from mailstack.common.trace import SessionTrace
from mailstack.errors import MailstackError
from mailstack.lab.topology import NEGATIVE_TTL, TTL, Host, Topology
from mailstack.lab.view import traced
from mailstack.ua.discover import Endpoint
from mailstack.ua.wire import TracedSMTP, tls_context

# How long a scenario waits for a queued message to be delivered, and for
# the hosts' traces to show an exchange.
DELIVERY_TIMEOUT = 20.0
TRACE_WAIT = 5.0
# The TTL of www.cs.umass.edu in the default topology (the `caching` scenario).
SHORT_TTL = 5
# A DNS step's text in a transcript, at most.
STEP_TEXT = 110


class ScenarioFailed(MailstackError):
    """The scenario's outcome did not hold; the message says why."""


@dataclass
class Lab:
    """A running lab as a scenario sees it."""

    topology: Topology
    root: Path
    offset: int
    out: TextIO
    # Given by the command line: `mailstack ARGV` (for the user agent's
    # send and read).
    mailstack: Callable[[list[str]], int]

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def port(self, service: str) -> int:
        standard = {"dns": 53, "smtp": 25, "submission": 587, "pop3": 110, "imap": 143, "http": 80}
        return standard[service] + self.offset

    def host(self, name: str) -> Host:
        return self.topology.host(name)

    def mail_host(self, domain: str) -> Host:
        for host in self.topology.with_role("mail"):
            if domain in host.domains:
                return host
        raise ScenarioFailed(f"the topology has no mail host for {domain}")

    def password(self, address: str) -> str:
        for host in self.topology.hosts:
            for user in host.users:
                if user.address == address:
                    return user.password
        raise ScenarioFailed(f"the topology has no user {address}")

    def password_file(self, address: str) -> Path:
        path = self.root / "passwords" / address
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_text(self.password(address) + "\n")
        path.chmod(0o600)
        return path

    def serve_log(self, name: str) -> Path:
        return self.root / "hosts" / name / "serve.out"

    def ua(self, argv: list[str]) -> tuple[int, str]:
        """`mailstack ARGV` (the user agent) in this process; its exit status and
        its output and C:/S: trace."""
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            status = self.mailstack(argv)
        return status, buffer.getvalue()


def expect(condition: bool, reason: str) -> None:
    if not condition:
        raise ScenarioFailed(reason)


# -- DNS -------------------------------------------------------------------------------


def ask(
    lab: Lab, client: Host, server: Host, qname: str, rdtype: str, *, rd: bool
) -> dns.message.Message:
    """One query from ``client``'s address to ``server`` over UDP, printed like dig's header."""
    query = dns.message.make_query(qname, rdtype, use_edns=0, payload=1232)
    if not rd:
        query.flags &= ~dns.flags.RD
    reply = dns.query.udp(
        query, server.address, port=lab.port("dns"), timeout=5, source=client.address
    )
    return reply


def answer_lines(reply: dns.message.Message) -> list[str]:
    return [line for rrset in reply.answer for line in rrset.to_text().splitlines()]


def dns_steps(
    lab: Lab, since: float, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The DNS messages between the lab's hosts since ``since``, as their
    traces recorded them (the arrows of the live view), once ``done`` holds
    of them or after a few seconds."""
    deadline = time.monotonic() + TRACE_WAIT
    while True:
        arrows = traced(lab.topology, lab.root, since)
        steps = [arrow for arrow in arrows if arrow["protocol"].startswith("dns")]
        if done(steps) or time.monotonic() > deadline:
            return steps
        time.sleep(0.1)


def say_steps(lab: Lab, steps: list[dict[str, Any]]) -> None:
    """The steps numbered as in the lectures' figures (a long record cut
    short: the live view shows it whole)."""
    for number, step in enumerate(steps, 1):
        said = step["summary"]
        said = said if len(said) <= STEP_TEXT else said[: STEP_TEXT - 3] + "..."
        lab.say(f"  {number:2}. {step['from']} -> {step['to']}: {said}")


def asker(step: dict[str, Any]) -> str:
    """The host that asked the question of a DNS step (the server's peer)."""
    server = step["session"].split(" ", 1)[0]
    return str(step["to"] if step["from"] == server else step["from"])


def iterative(lab: Lab) -> None:
    """cis.poly.edu asks its local name server dns.poly.edu for
    gaia.cs.umass.edu; dns.poly.edu walks the hierarchy iteratively (root,
    edu, umass.edu, cs.umass.edu); the same question once more is answered
    from its cache."""
    client, local = lab.host("cis.poly.edu"), lab.host(lab.host("cis.poly.edu").resolver)
    qname = "gaia.cs.umass.edu"
    expect(
        lab.topology.resolution == "iterative",
        'this lab resolves recursively (resolution = "recursive"): play `recursive` here, '
        "or start the default topology for `iterative`",
    )
    lab.say(f"{client.name} ({client.address}) wants the address of {qname}.")
    lab.say(f"It asks its local name server {local.name} (recursion desired), which walks")
    lab.say("the hierarchy iteratively; the messages, as the servers' traces recorded them:")
    since = time.time()
    first = ask(lab, client, local, qname, "A", rd=True)
    steps = dns_steps(lab, since, lambda s: any(a["to"] == client.name for a in s))
    say_steps(lab, steps)
    asked = set(went_out(steps, local))
    expect(
        bool(asked),
        f"{local.name} answered from its cache: an earlier run left {qname} there for "
        f"{TTL} s (play iterative first after `lab up`, or wait)",
    )
    for level in ("root", "tld"):
        expect(
            any(h.name in asked for h in lab.topology.with_role(level)),
            f"the walk asked no {level} server",
        )
    expect(
        any(h.name in asked for h in lab.topology.servers["cs.umass.edu"]),
        "cs.umass.edu was not asked",
    )
    gaia = lab.host(qname)
    expect(
        any(gaia.address in line for line in answer_lines(first)),
        f"{qname} did not resolve to {gaia.address}",
    )
    time.sleep(1.1)
    since = time.time()
    again = ask(lab, client, local, qname, "A", rd=True)
    steps = dns_steps(lab, since, lambda s: any(a["to"] == client.name for a in s))
    ttl = again.answer[0].ttl if again.answer else 0
    first_ttl = first.answer[0].ttl
    lab.say()
    lab.say("Once more, a second later:")
    say_steps(lab, steps)
    lab.say(
        f"  the TTL went down from {first_ttl} to {ttl}: answered from {local.name}'s cache, "
        "no query left it"
    )
    expect(ttl < first_ttl, "the second answer did not come from the cache (its TTL did not fall)")
    expect(not went_out(steps, local), f"{local.name} asked another server the second time")


def recursive(lab: Lab) -> None:
    """cis.poly.edu asks dns.poly.edu for gaia.cs.umass.edu in a lab whose
    name servers recurse: each passes the question on one level down (root,
    edu, umass.edu, cs.umass.edu) and the answer comes back up the chain;
    once more, it comes from dns.poly.edu's cache."""
    client, local = lab.host("cis.poly.edu"), lab.host(lab.host("cis.poly.edu").resolver)
    qname = "gaia.cs.umass.edu"
    expect(
        lab.topology.resolution == "recursive",
        "this lab resolves iteratively: start it with a topology that says "
        'resolution = "recursive" (docs/lab.md, "The recursive chain")',
    )
    lab.say(f"{client.name} ({client.address}) wants the address of {qname}.")
    lab.say(f"It asks {local.name}; every server asked to recurse asks the next one down,")
    lab.say("and the answer travels back up the chain; as the servers' traces recorded them:")
    first, steps = lookup(lab, client, local, qname, "A")
    expect(
        bool(went_out(steps, local)),
        f"{local.name} answered from its cache: an earlier run left {qname} there for "
        f"{TTL} s (play recursive first after `lab up`, or wait)",
    )
    queries = [step for step in steps if step["direction"] == "C"]
    chain = [step["from"] for step in queries] + [queries[-1]["to"]] if queries else []
    lab.say(f"   the chain: {' -> '.join(chain)}")
    levels = [lab.topology.with_role(level) for level in ("root", "tld")]
    expect(
        len(chain) >= 5
        and chain[:2] == [client.name, local.name]
        and all(any(h.name in chain[2:] for h in hosts) for hosts in levels),
        "the question did not go down the hierarchy server by server",
    )
    expect(
        all(step["summary"].endswith("[rd]") for step in queries),
        "a server in the chain was not asked to recurse",
    )
    gaia = lab.host(qname)
    expect(
        any(gaia.address in line for line in answer_lines(first)),
        f"{qname} did not resolve to {gaia.address}",
    )
    time.sleep(1.1)
    lab.say()
    lab.say("Once more, a second later:")
    again, steps = lookup(lab, client, local, qname, "A")
    ttl = again.answer[0].ttl if again.answer else 0
    lab.say(f"   the TTL went down from {first.answer[0].ttl} to {ttl}: from {local.name}'s cache")
    expect(not went_out(steps, local), f"{local.name} passed the question on again")


def lookup(
    lab: Lab, client: Host, local: Host, qname: str, rdtype: str
) -> tuple[dns.message.Message, list[dict[str, Any]]]:
    """``client`` asks its local name server; the reply and the numbered
    DNS steps it took, printed."""
    since = time.time()
    reply = ask(lab, client, local, qname, rdtype, rd=True)
    steps = dns_steps(lab, since, lambda s: any(a["to"] == client.name for a in s))
    say_steps(lab, steps)
    return reply, steps


def went_out(steps: list[dict[str, Any]], local: Host) -> list[str]:
    """The servers ``local`` asked in these steps (its queries, not its replies)."""
    return [step["to"] for step in steps if step["from"] == local.name and step["direction"] == "C"]


def caching(lab: Lab) -> None:
    """A short TTL runs out: the answer is kept for its TTL, then the local
    name server asks the hierarchy again (RFC 1034 §4.3.1; the referrals it
    holds longer spare it the root). Negative caching (RFC 2308): a name that
    does not exist is remembered for the SOA minimum of its zone, then asked
    again."""
    client = lab.host("cis.poly.edu")
    local = lab.host(client.resolver)
    qname = "www.cs.umass.edu"
    lab.say(f"A. {qname}, an A record whose TTL is {SHORT_TTL} s")
    first, steps = lookup(lab, client, local, qname, "A")
    expect(
        any(rrset.ttl <= SHORT_TTL for rrset in first.answer),
        f"{qname}: no answer with a TTL of {SHORT_TTL} s or less (see the topology)",
    )
    time.sleep(1.1)
    lab.say("   again, a second later:")
    again, steps = lookup(lab, client, local, qname, "A")
    ttl = again.answer[0].ttl if again.answer else SHORT_TTL
    lab.say(f"   answered from {local.name}'s cache: the TTL is now {ttl}")
    expect(not went_out(steps, local), f"{local.name} asked the hierarchy within the TTL")
    time.sleep(SHORT_TTL + 0.5)
    lab.say(f"   after {SHORT_TTL} s the entry has run out:")
    _, steps = lookup(lab, client, local, qname, "A")
    asked = went_out(steps, local)
    expect(bool(asked), f"{local.name} answered from its cache after the TTL ran out")
    lab.say(f"   {local.name} asked {', '.join(asked)} again")
    roots = {host.name for host in lab.topology.with_role("root")}
    if lab.topology.resolution == "iterative" and not roots & set(asked):
        lab.say(
            f"   (it still holds the referrals to edu, umass.edu and cs.umass.edu, TTL {TTL} s:"
            " it skips the root and the TLD)"
        )

    qname = f"nosuchhost{int(time.time())}.cs.umass.edu"
    lab.say()
    lab.say(f"B. {qname}, a name that does not exist")
    first, steps = lookup(lab, client, local, qname, "A")
    expect(
        first.rcode() == dns.rcode.NXDOMAIN,
        f"{qname}: {dns.rcode.to_text(first.rcode())}, not NXDOMAIN",
    )
    lab.say(f"   NXDOMAIN; the SOA says: remember this for {NEGATIVE_TTL} s (RFC 2308 §5)")
    time.sleep(1.1)
    lab.say("   again, a second later:")
    second, steps = lookup(lab, client, local, qname, "A")
    soa_ttl = second.authority[0].ttl if second.authority else NEGATIVE_TTL
    lab.say(f"   NXDOMAIN from the cache (SOA TTL now {soa_ttl})")
    expect(
        second.rcode() == dns.rcode.NXDOMAIN and not went_out(steps, local),
        "the negative answer was not cached",
    )
    time.sleep(NEGATIVE_TTL + 0.5)
    lab.say(f"   after {NEGATIVE_TTL} s:")
    third, steps = lookup(lab, client, local, qname, "A")
    asked = went_out(steps, local)
    lab.say(f"   the entry has run out: {local.name} asked the hierarchy again")
    expect(bool(asked), "the negative answer outlived its TTL")


def registry_update(lab: Lab, tld: Host, zone: str, host: Host, *, add: bool) -> int:
    """An RFC 2136 UPDATE of ``zone`` at ``tld``, signed with the registry's
    TSIG key (RFC 8945): the delegation to ``host``'s zone and its glue,
    added or deleted. Returns the RCODE and prints the message."""
    import dns.tsigkeyring
    import dns.update

    from mailstack.lab.hosts import tsig_secret

    keyring = dns.tsigkeyring.from_text({tld.update_key: tsig_secret(tld.update_key)})
    update = dns.update.UpdateMessage(
        tld.zones[0] + ".",
        keyring=keyring,
        keyname=dns.name.from_text(tld.update_key),
        keyalgorithm="hmac-sha256",
    )
    child = host.domains[0] if host.domains else host.zones[0]
    if add:
        # Rdata objects, so that the printed UPDATE shows absolute names.
        update.add(child + ".", 300, dns.rdata.from_text("IN", "NS", host.name + "."))
        update.add(host.name + ".", 300, dns.rdata.from_text("IN", "A", host.address))
    else:
        update.delete(child + ".", "NS")
        update.delete(host.name + ".", "A")
    if add:
        lab.say(";; the UPDATE, as dig would print it:")
        lab.say(update.to_text(relativize=False))
    reply = dns.query.tcp(update, tld.address, port=lab.port("dns"), timeout=5)
    return int(reply.rcode())


def register(lab: Lab) -> None:
    """Network Utopia registers networkutopia.com: the registrar inserts its
    NS and glue A records into the com TLD servers with a TSIG-signed UPDATE;
    cis.poly.edu can then find it, and mail to it is delivered."""
    utopia = next(h for h in lab.topology.hosts if "networkutopia.com" in h.domains)
    tld = next(h for h in lab.topology.with_role("tld") if "com" in h.zones)
    client = lab.host("cis.poly.edu")
    local = lab.host(client.resolver)
    # The story starts unregistered, however often it is played.
    registry_update(lab, tld, "com", utopia, add=False)
    lab.say(f"1. {client.name} -> {local.name}: networkutopia.com MX?")
    before = ask(lab, client, local, "networkutopia.com", "MX", rd=True)
    lab.say(f"   {dns.rcode.to_text(before.rcode())}: com knows no networkutopia.com")
    expect(
        before.rcode() == dns.rcode.NXDOMAIN,
        "networkutopia.com resolved before it was registered: "
        f"{local.name} still caches an earlier registration (play this once per `lab up`)",
    )
    lab.say(f"2. the registrar -> {tld.name}: UPDATE com, signed with key {tld.update_key!r}")
    rcode = registry_update(lab, tld, "com", utopia, add=True)
    lab.say(f"   {tld.name}: {dns.rcode.to_text(dns.rcode.Rcode(rcode))}")
    expect(rcode == dns.rcode.NOERROR, "the com registry refused the UPDATE")
    lab.say(f"3. {local.name} remembers the NXDOMAIN for {NEGATIVE_TTL} s (RFC 2308); then:")
    time.sleep(NEGATIVE_TTL + 0.5)
    after = ask(lab, client, local, "networkutopia.com", "MX", rd=True)
    for line in answer_lines(after):
        lab.say(f"   {line}")
    expect(
        any(utopia.name in line for line in answer_lines(after)),
        "networkutopia.com MX does not resolve after the registration",
    )
    address = utopia.users[0].address
    lab.say(f"4. Alice writes to {address}:")
    count = mailbox_count(lab, address)
    send(lab, "alice@crepes.fr", address, "Welcome", "Welcome to the Internet, Network Utopia.")
    wait_delivered(lab, address, count)
    lab.say(f"   delivered to {address} on {utopia.name}")


# -- mail ------------------------------------------------------------------------------


class StrangerSMTP(TracedSMTP):
    """A traced SMTP client connecting from a lab host's own address."""

    source = ""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection(
            (self.endpoint.addresses[0], self.endpoint.port),
            timeout,
            source_address=(self.source, 0),
        )


def stranger_session(
    lab: Lab, stranger: Host, server: Host, sender: str, rcpt: str, body: str
) -> tuple[int, str]:
    """The stranger speaks SMTP to ``server``'s MX; returns the first refusal
    (code, text), or (250, ...) when the message was taken."""
    out = io.StringIO()
    StrangerSMTP.source = stranger.address
    endpoint = Endpoint(server.name, (server.address,), lab.port("smtp"), "none")
    client = StrangerSMTP(
        endpoint,
        helo=stranger.name,
        timeout=10,
        trace=SessionTrace(out, ""),
        context=tls_context(None, True),
    )
    result = (250, "")
    try:
        client.connect(server.address, lab.port("smtp"))
        client.ehlo(stranger.name)
        code, text = client.mail(sender)
        if code >= 400:
            result = (code, text.decode())
        else:
            code, text = client.rcpt(rcpt)
            if code >= 400:
                result = (code, text.decode())
            else:
                code, text = client.data(body.encode())
                result = (code, text.decode())
        client.quit()
    except smtplib.SMTPException as exc:
        result = (0, str(exc))
    finally:
        client.close()
    lab.say(out.getvalue().rstrip())
    return result


def send(lab: Lab, sender: str, rcpt: str, subject: str, body: str) -> str:
    """The user agent submits as ``sender`` to its own server (RFC 6409, AUTH)."""
    server = lab.mail_host(sender.rpartition("@")[2])
    status, text = lab.ua(
        [
            "send",
            "--server",
            f"{server.address}:{lab.port('submission')}",
            "--tls",
            "none",
            "--user",
            sender,
            "--password-file",
            str(lab.password_file(sender)),
            "--from",
            sender,
            "--to",
            rcpt,
            "--subject",
            subject,
            "--body",
            body,
            "--trace",
        ]
    )
    lab.say(text.rstrip())
    expect(status == 0, f"the submission of {sender} was refused")
    return text


def mailbox_count(lab: Lab, address: str) -> int:
    server = lab.mail_host(address.rpartition("@")[2])
    with imaplib.IMAP4(server.address, lab.port("imap"), timeout=5) as client:
        client.login(address, lab.password(address))
        _, data = client.status("INBOX", "(MESSAGES)")
        client.logout()
    text = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
    return int(text.rsplit("MESSAGES", 1)[1].strip(" ()"))


def wait_delivered(lab: Lab, address: str, before: int) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while mailbox_count(lab, address) <= before:
        expect(
            time.monotonic() < deadline, f"nothing reached {address} in {DELIVERY_TIMEOUT:.0f} s"
        )
        time.sleep(0.2)


def outbound_dialogue(path: Path, offset: int) -> list[str]:
    """The SMTP client sessions a mail host's trace recorded past ``offset``,
    once the last has closed."""
    deadline = time.monotonic() + 5
    while True:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        lines = [line for line in text.splitlines() if line.startswith("[smtp-out")]
        if (lines and lines[-1].endswith("-- closed")) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def alice_to_bob(lab: Lab) -> None:
    """Alice's user agent submits to her server, which resolves hamburger.edu
    MX iteratively and delivers with DATA; Bob reads with IMAP (the message
    stays) and with POP3 (download and delete)."""
    alice, bob = "alice@crepes.fr", "bob@hamburger.edu"
    hers, his = lab.mail_host("crepes.fr"), lab.mail_host("hamburger.edu")
    before = mailbox_count(lab, bob)
    log = lab.serve_log(hers.name)
    mark = log.stat().st_size
    since = time.time()
    lab.say(f"1. Alice's user agent -> {hers.name} (submission, port {lab.port('submission')})")
    send(lab, alice, bob, "Ketchup?", "Do you like ketchup?\nHow about pickles?")
    lab.say(
        f"2. the message waits in {hers.name}'s queue; "
        "the server looks for hamburger.edu's mail exchanger:"
    )
    wait_delivered(lab, bob, before)
    exchanges = dns_steps(lab, since, lambda s: True)
    steps = [step for step in exchanges if asker(step) == hers.name]
    say_steps(lab, steps)
    if not steps:
        lab.say(f"  (no query left {hers.name}: it had hamburger.edu's MX in its cache)")
    lab.say(f"3. {hers.name} -> {his.name} (SMTP, port {lab.port('smtp')}), from its trace:")
    smtp_lines = outbound_dialogue(log, mark)
    lab.say("\n".join(smtp_lines))
    expect(any("DATA" in line for line in smtp_lines), "the transfer did not use DATA")
    expect(any("354" in line for line in smtp_lines), "no 354 reply in the transfer")
    checks = [step for step in exchanges if asker(step) == his.name]
    if checks:
        lab.say(
            f"   {his.name} checks the message's SPF, DKIM and DMARC in crepes.fr's DNS "
            "(its Authentication-Results: field):"
        )
        say_steps(lab, checks)
    lab.say(f"4. Bob reads with IMAP from {his.name}: the message stays on the server")
    password = str(lab.password_file(bob))
    imap = f"{his.address}:{lab.port('imap')}"
    status, text = lab.ua(
        [
            "read",
            "--imap",
            imap,
            "--tls",
            "none",
            "--user",
            bob,
            "--password-file",
            password,
            "--trace",
        ]
    )
    lab.say(text.rstrip())
    expect(status == 0 and "Ketchup?" in text, "Bob's IMAP listing lacks the message")
    lab.say("5. Bob reads with POP3: download and delete")
    maildir = lab.root / "bob-maildir"
    status, text = lab.ua(
        [
            "read",
            "--pop3",
            f"{his.address}:{lab.port('pop3')}",
            "--tls",
            "none",
            "--user",
            bob,
            "--password-file",
            password,
            "--delete",
            "--maildir",
            str(maildir),
            "--trace",
        ]
    )
    lab.say(text.rstrip())
    expect(status == 0 and "Ketchup?" in text, "Bob's POP3 download lacks the message")
    left = mailbox_count(lab, bob)
    lab.say(f"   left on {his.name} after POP3: {left} message(s)")
    expect(left == 0, "POP3 download-and-delete left the message on the server")


def spoof(lab: Lab) -> None:
    """A stranger tells Bob's server it is president@crepes.fr: SPF fails,
    DMARC says reject, and Bob's server refuses."""
    stranger, his = lab.host("stranger.org"), lab.mail_host("hamburger.edu")
    lab.say(
        f"{stranger.name} ({stranger.address}) -> {his.name}, claiming to be president@crepes.fr:"
    )
    body = (
        "From: president@crepes.fr\r\nTo: bob@hamburger.edu\r\n"
        "Subject: Wire the money\r\n\r\nNow.\r\n"
    )
    code, text = stranger_session(
        lab, stranger, his, "president@crepes.fr", "bob@hamburger.edu", body
    )
    lab.say()
    lab.say("Why: crepes.fr publishes v=spf1 mx -all (only its MX may send as crepes.fr), so SPF")
    lab.say(
        f"fails for {stranger.address}; its DMARC record says p=reject; Bob's server enforces it."
    )
    expect(
        code == 550 and "5.7.1" in text, f"the spoofed message was not refused (got {code} {text})"
    )


def open_relay(lab: Lab) -> None:
    """A stranger asks Bob's server to relay to someschool.edu: refused with
    5.7.1. Alice, authenticated on her own server, sends there: delivered."""
    stranger, his = lab.host("stranger.org"), lab.mail_host("hamburger.edu")
    carol = "carol@someschool.edu"
    lab.say(f"1. {stranger.name} asks {his.name} to relay to {carol}:")
    code, text = stranger_session(
        lab, stranger, his, "spammer@stranger.org", carol, "Subject: hi\r\n\r\nhi\r\n"
    )
    expect(
        code == 550 and "5.7.1" in text, f"Bob's server relayed or refused wrongly: {code} {text}"
    )
    lab.say(f"   refused: {code} {text}")
    lab.say(f"2. Alice, authenticated on her own server, sends to {carol}:")
    before = mailbox_count(lab, carol)
    send(lab, "alice@crepes.fr", carol, "Lecture notes", "The notes are attached in spirit.")
    wait_delivered(lab, carol, before)
    lab.say(f"   delivered to {carol}'s mailbox on {lab.mail_host('someschool.edu').name}")


# -- HTTP ------------------------------------------------------------------------------

AUTODISCOVER = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
    'requestschema/2006"><Request><EMailAddress>alice@crepes.fr</EMailAddress>'
    "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/"
    "responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
)


def exchange(
    lab: Lab, client: Host, server: Host, method: str, host: str, path: str, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request from ``client``'s address, its head and the
    response's head printed as they went (C: and S:)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: mailstack-lab"]
    head.append("Accept: */*")
    if body:
        head += ["Content-Type: text/xml; charset=utf-8", f"Content-Length: {len(body)}"]
    head.append("Connection: close")
    for line in head:
        lab.say(f"   C: {line}")
    lab.say("   C:")
    with socket.create_connection(
        (server.address, lab.port("http")), timeout=10, source_address=(client.address, 0)
    ) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        reply = http.client.HTTPResponse(sock, method=method)
        reply.begin()
        content = reply.read()
    lab.say(f"   S: HTTP/1.1 {reply.status} {reply.reason}")
    for name, value in reply.getheaders():
        lab.say(f"   S: {name}: {value}")
    lab.say(f"   ({len(content)} octets of body)" if content else "   (no body)")
    return reply.status, {k.lower(): v for k, v in reply.getheaders()}, content


def http_methods(lab: Lab) -> None:
    """What GET, HEAD and POST do (RFC 9110 §9.3), against a real web server:
    the one on Alice's mail server, where mail clients fetch their settings.
    GET fetches the autoconfig document, HEAD the same head without the body,
    POST sends an Autodiscover request and gets an answer made for it."""
    client = lab.host("cis.poly.edu")
    local = lab.host(client.resolver)
    server = lab.mail_host("crepes.fr")
    name = "autoconfig.crepes.fr"
    lab.say(f"1. {client.name} looks up {name} (its local name server walks the hierarchy):")
    reply, _steps = lookup(lab, client, local, name, "A")
    found = [line.split()[-1] for line in answer_lines(reply) if " IN A " in line]
    expect(server.address in found, f"{name} does not lead to {server.name} ({found})")
    lab.say(f"   {name} is {server.name} ({server.address}): a CNAME, then its A record")
    path = "/mail/config-v1.1.xml?emailaddress=alice%40crepes.fr"
    lab.say("2. GET: the document, head and body")
    status, heads, body = exchange(lab, client, server, "GET", name, path)
    expect(status == 200 and b"<clientConfig" in body, f"GET answered {status}")
    expect(server.name.encode() in body, "the autoconfig document does not name the server")
    lab.say("3. HEAD: the same head, no body (a client checks before it fetches)")
    head_status, head_heads, head_body = exchange(lab, client, server, "HEAD", name, path)
    expect(head_status == 200 and head_body == b"", f"HEAD answered {head_status} with a body")
    expect(
        head_heads.get("content-type") == heads.get("content-type"),
        "HEAD's Content-Type differs from GET's",
    )
    lab.say("4. POST: a request with a body; the answer is made for it")
    status, heads, body = exchange(
        lab, client, server, "POST", name, "/autodiscover/autodiscover.xml", AUTODISCOVER.encode()
    )
    expect(status == 200 and f"<Server>{server.name}</Server>".encode() in body,
           f"POST answered {status}")  # fmt: skip
    lab.say()
    lab.say("GET and HEAD are safe (they change nothing on the server) and HEAD is GET without")
    lab.say("the body; POST hands the server data to act on (RFC 9110 §9.2.1, §9.3).")


SCENARIOS: dict[str, Callable[[Lab], None]] = {
    "alice-to-bob": alice_to_bob,
    "iterative": iterative,
    "recursive": recursive,
    "caching": caching,
    "register": register,
    "spoof": spoof,
    "open-relay": open_relay,
    "http": http_methods,
}
