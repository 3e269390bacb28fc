"""The lab end to end: `mailstack lab up` starts the lectures' world (the
default topology) as real processes on 127.0.0.x, unprivileged with a port
offset; dig and swaks (clients we did not write) ask it; every scenario runs
through `mailstack lab run` and its transcript is checked; `lab down` leaves
nothing running or listening. One lab is shared by the module (CI time)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Away from the other tests' ports and from another lab on this machine.
OFFSET = random.Random().randrange(20000, 60000, 1000)
MAILSTACK = [sys.executable, "-c", "import sys; from mailstack.cli import main; sys.exit(main())"]


def lab(root: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"MAILSTACK_LAB": str(root)}
    return subprocess.run(
        [*MAILSTACK, "lab", *argv], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("lab")
    started = time.monotonic()
    up = lab(root, "up", "--detach", "--port-offset", str(OFFSET))
    elapsed = time.monotonic() - started
    assert up.returncode == 0, up.stderr + up.stdout
    try:
        status = lab(root, "status", "--json")
        assert status.returncode == 0, status.stderr
        yield {
            "root": root,
            "status": json.loads(status.stdout),
            "elapsed": elapsed,
            "up": up.stdout,
        }
    finally:
        lab(root, "down")


def host(world: dict[str, Any], name: str) -> dict[str, Any]:
    hosts = {h["name"]: h for h in world["status"]["hosts"]}
    return hosts[name]


def test_up_is_quick_and_prints_the_table(world: dict[str, Any]) -> None:
    # The figure docs/lab.md gives (timing is said, never asserted: the
    # machine is shared); `lab up` itself gives up after 30 s.
    print(f"lab up took {world['elapsed']:.1f} s")
    assert re.search(r"lab up in \d+\.\d s", world["up"])
    assert "mail.hamburger.edu" in world["up"] and f"smtp:{25 + OFFSET}" in world["up"]
    assert f"live view: http://127.0.0.1:{80 + OFFSET}/" in world["up"]


def test_status_json_is_the_documented_interface(world: dict[str, Any]) -> None:
    status = world["status"]
    assert set(status) == {"hosts", "view"}
    assert status["view"] == f"http://127.0.0.1:{80 + OFFSET}/"
    for entry in status["hosts"]:
        assert set(entry) == {"name", "address", "roles", "zones", "domains", "users", "services"}
        assert entry["address"].startswith("127.")
        assert set(entry["roles"]) <= {"root", "tld", "authoritative", "resolver", "mail", "client"}
    roots = [h for h in status["hosts"] if "root" in h["roles"]]
    assert len(roots) >= 2
    tlds = {z for h in status["hosts"] if "tld" in h["roles"] for z in h["zones"]}
    assert tlds == {"com", "edu", "fr", "org"}
    bob = host(world, "mail.hamburger.edu")
    assert bob["domains"] == ["hamburger.edu"]
    assert bob["users"][0]["address"] == "bob@hamburger.edu"
    assert bob["services"] == {
        "dns": 53 + OFFSET,
        "smtp": 25 + OFFSET,
        "submission": 587 + OFFSET,
        "pop3": 110 + OFFSET,
        "imap": 143 + OFFSET,
        "http": 80 + OFFSET,
    }
    assert host(world, "cis.poly.edu")["services"] == {}


def run(world: dict[str, Any], name: str) -> str:
    result = lab(world["root"], "run", name)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"scenario {name}: outcome holds" in result.stdout
    return result.stdout


def steps(out: str) -> list[str]:
    """A transcript's numbered DNS steps, "N. FROM -> TO: MESSAGE"."""
    return [line.strip() for line in out.splitlines() if re.match(r"\s+\d+\. \S+ -> ", line)]


def test_iterative(world: dict[str, Any]) -> None:
    # First of the lab's DNS tests: its walk needs dns.poly.edu's cache empty.
    out = run(world, "iterative")
    walk = steps(out)
    assert walk[0].startswith("1. cis.poly.edu -> dns.poly.edu: query")
    assert "gaia.cs.umass.edu. IN A [rd]" in walk[0]
    # The lectures' figure: root, TLD, authoritative, each a query and its reply.
    assert re.match(r"2\. dns\.poly\.edu -> [ab]\.root-servers\.net: query", walk[1])
    assert re.match(r"3\. [ab]\.root-servers\.net -> dns\.poly\.edu: NOERROR .*edu\. NS", walk[2])
    assert walk[3].startswith("4. dns.poly.edu -> ns.edu: query")
    assert walk[5].startswith("6. dns.poly.edu -> dns.umass.edu: query")
    assert walk[7].startswith("8. dns.poly.edu -> dns.cs.umass.edu: query")
    assert "gaia.cs.umass.edu. A 127.0.2.10" in walk[8]
    assert walk[9].startswith("10. dns.poly.edu -> cis.poly.edu: NOERROR")
    # Once more: two messages, no query left dns.poly.edu.
    assert [line.split(":")[0] for line in walk[10:]] == [
        "1. cis.poly.edu -> dns.poly.edu",
        "2. dns.poly.edu -> cis.poly.edu",
    ]
    assert "answered from dns.poly.edu's cache" in out


def dig(server: str, *query: str) -> str:
    return subprocess.run(
        ["dig", "+short", "-p", str(53 + OFFSET), f"@{server}", *query],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout


@pytest.mark.skipif(not shutil.which("dig"), reason="dig (Debian bind9-dnsutils) is not installed")
def test_the_lectures_names_resolve_through_the_local_name_server(world: dict[str, Any]) -> None:
    local = host(world, "dns.poly.edu")["address"]
    assert dig(local, "gaia.cs.umass.edu").split() == [host(world, "gaia.cs.umass.edu")["address"]]
    assert dig(local, "www.amazon.com").split() == ["shop.amazon.com.", "127.0.2.30"]
    assert dig(local, "hamburger.edu", "MX").split() == ["10", "mail.hamburger.edu."]
    assert "v=spf1" in dig(local, "crepes.fr", "TXT")
    assert "p=reject" in dig(local, "_dmarc.crepes.fr", "TXT")
    assert "DKIM1" in dig(local, "lab-ed25519._domainkey.crepes.fr", "TXT")
    # The root answers with a referral only: no recursion for strangers.
    root = host(world, "a.root-servers.net")["address"]
    referral = subprocess.run(
        ["dig", "-p", str(53 + OFFSET), f"@{root}", "gaia.cs.umass.edu"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    assert "edu.\t" in referral and "ns.edu." in referral and "ANSWER: 0" in referral


def test_caching(world: dict[str, Any]) -> None:
    out = run(world, "caching")
    positive, negative = out.split("\nB. ")
    rounds = positive.split("   again, a second later:")[1].split("after 5 s the entry has run out")
    # Within the TTL: two messages, from the cache; after it: dns.poly.edu
    # asks again, straight at cs.umass.edu (it still holds the referrals).
    assert [line.split(":")[0] for line in steps(rounds[0])] == [
        "1. cis.poly.edu -> dns.poly.edu",
        "2. dns.poly.edu -> cis.poly.edu",
    ]
    assert "the TTL is now 4" in rounds[0] or "the TTL is now 3" in rounds[0]
    after = steps(rounds[1])
    assert after[1].startswith("2. dns.poly.edu -> dns.cs.umass.edu: query")
    assert "www.cs.umass.edu. A 127.0.2.11" in after[2]
    assert "skips the root and the TLD" in rounds[1]
    # Negative caching: NXDOMAIN with the SOA, remembered, then asked again.
    assert "NXDOMAIN; the SOA says: remember this for 5 s" in negative
    assert "NXDOMAIN from the cache" in negative
    again, later = negative.split("after 5 s:")
    assert len(steps(again.split("a second later:")[1])) == 2
    assert any("dns.poly.edu -> dns.cs.umass.edu: query" in step for step in steps(later))
    assert "asked the hierarchy again" in later


def test_alice_to_bob(world: dict[str, Any]) -> None:
    out = run(world, "alice-to-bob")
    assert "C: AUTH PLAIN <credentials elided>" in out
    assert "queued as" in out
    walk = steps(out)
    assert any(re.match(r"\d+\. mail\.crepes\.fr -> ns\.edu: query", step) for step in walk)
    assert any("hamburger.edu. MX 10 mail.hamburger.edu." in step for step in walk)
    outbound = [line for line in out.splitlines() if line.startswith("[smtp-out")]
    assert any(line.endswith("C: DATA") for line in outbound)
    assert any("S: 354" in line for line in outbound)
    assert not any("BDAT" in line for line in outbound)
    assert "C: DELE 1" in out and "left on mail.hamburger.edu after POP3: 0" in out
    assert "EXAMINE" in out


def test_register(world: dict[str, Any]) -> None:
    out = run(world, "register")
    assert "NXDOMAIN: com knows no networkutopia.com" in out
    assert "opcode UPDATE" in out and "registrar. 0 ANY TSIG hmac-sha256." in out
    assert "networkutopia.com. 300 IN NS dns1.networkutopia.com." in out
    assert "MX 10 dns1.networkutopia.com." in out
    assert "delivered to info@networkutopia.com" in out


def test_spoof(world: dict[str, Any]) -> None:
    out = run(world, "spoof")
    assert "C: MAIL FROM:<president@crepes.fr>" in out
    assert "S: 550 5.7.1" in out and "DMARC" in out


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks is not installed")
def test_spoof_with_swaks_is_refused_too(world: dict[str, Any]) -> None:
    bob = host(world, "mail.hamburger.edu")
    result = subprocess.run(
        [
            "swaks",
            "--server",
            bob["address"],
            "--port",
            str(25 + OFFSET),
            "--local-interface",
            "127.0.4.1",
            "--from",
            "president@crepes.fr",
            "--to",
            "bob@hamburger.edu",
            "--header",
            "From: president@crepes.fr",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "550 5.7.1" in result.stdout


def test_open_relay(world: dict[str, Any]) -> None:
    out = run(world, "open-relay")
    assert "refused: 550 5.7.1" in out
    assert "delivered to carol@someschool.edu's mailbox" in out


def test_http(world: dict[str, Any]) -> None:
    out = run(world, "http")
    # The name is looked up through the hierarchy first, then each method's
    # request and response heads as they went.
    assert "autoconfig.crepes.fr is mail.crepes.fr (127.0.3.1)" in out
    assert "C: GET /mail/config-v1.1.xml?emailaddress=alice%40crepes.fr HTTP/1.1" in out
    assert "C: HEAD /mail/config-v1.1.xml?emailaddress=alice%40crepes.fr HTTP/1.1" in out
    assert "C: POST /autodiscover/autodiscover.xml HTTP/1.1" in out
    assert out.count("S: HTTP/1.1 200 OK") == 3
    head = out.split("C: HEAD ", 1)[1].split("4. POST", 1)[0]
    assert "(no body)" in head and "S: Content-Type: text/xml" in head


def test_scenario_without_a_lab_says_so(tmp_path: Path) -> None:
    result = lab(tmp_path, "run", "iterative")
    assert result.returncode == 1
    assert "no lab is up" in result.stderr and "Traceback" not in result.stderr


def test_bad_topology_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[host]]\nname = "x.example"\naddress = "192.0.2.1"\nroles = ["root"]\n')
    result = lab(tmp_path, "up", "--detach", "--topology", str(bad))
    assert result.returncode == 1
    assert "127.0.0.0/8" in result.stderr and "Traceback" not in result.stderr


# -- the live view -----------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def http(world: dict[str, Any], path: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(world["status"]["view"] + path.lstrip("/"), headers=headers)
    if path.startswith("/api/run/"):
        request.method = "POST"
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_view_serves_a_strict_page_and_only_its_own_page_runs_scenarios(
    world: dict[str, Any],
) -> None:
    with urllib.request.urlopen(world["status"]["view"], timeout=10) as response:
        csp = response.headers["Content-Security-Policy"]
        page = response.read().decode()
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert '<script type="module" src="/view.js">' in page and "<style" not in page
    # Another web site's form or script (no Origin, or its own) may not start
    # a scenario; a DNS-rebound name may not even read the page.
    assert http(world, "/api/run/spoof")[0] == 403
    assert http(world, "/api/run/spoof", Origin="http://evil.example")[0] == 403
    assert http(world, "/", Host=f"evil.example:{80 + OFFSET}")[0] == 421


@pytest.fixture
def browser(world: dict[str, Any]) -> Iterator[tuple[Any, list[str]]]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium (/usr/bin/chromium) is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        page = chromium.new_page(viewport={"width": 1500, "height": 950})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(world["status"]["view"])
        try:
            yield page, problems
        finally:
            chromium.close()


def test_live_view_draws_scenarios_as_they_run(
    world: dict[str, Any], browser: tuple[Any, list[str]]
) -> None:
    from playwright.sync_api import expect

    page, problems = browser
    expect(page.get_by_role("status")).to_have_text("live")
    for name in ("a.root-servers.net", "ns.edu", "dns.poly.edu", "mail.crepes.fr", "cis.poly.edu"):
        expect(page.locator("#topology .node", has_text=name)).to_have_count(1)
    # A scenario started from the page draws itself, its DNS steps numbered.
    page.get_by_role("button", name="run caching").click()
    expect(page.get_by_role("status")).to_have_text("caching: outcome holds", timeout=90_000)
    expect(page.locator("#transcript")).to_contain_text("scenario caching: outcome holds")
    first = page.get_by_role(
        "button",
        name=re.compile(r"^1\. cis\.poly\.edu to dns\.poly\.edu, dns.udp: query \d+ www\.cs\."),
    )
    expect(first.first).to_be_visible()
    walk = page.get_by_role(
        "button", name=re.compile(r"^\d+\. dns\.poly\.edu to dns\.cs\.umass\.edu, dns.udp: query")
    )
    expect(walk.first).to_be_visible()
    # Clicking an arrow shows the whole message, in dig's format.
    walk.first.click()
    expect(page.locator("#message")).to_contain_text("opcode QUERY")
    expect(page.locator("#message")).to_contain_text(";QUESTION")
    expect(page.locator("#message-head")).to_contain_text("dns.poly.edu → dns.cs.umass.edu")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lab-view-caching.png"))
    # One started from the command line draws itself too (on a cleared
    # diagram: the module played spoof already).
    page.get_by_role("button", name="Clear the diagram").click()
    expect(page.get_by_role("button", name=re.compile(r"dns.udp"))).to_have_count(0)
    result = lab(world["root"], "run", "spoof")
    assert result.returncode == 0, result.stdout[-2000:]
    expect(
        page.get_by_role(
            "button",
            name=re.compile(r"stranger\.org to mail\.hamburger\.edu, smtp: MAIL FROM:<president@"),
        )
    ).to_have_count(1)
    refusal = page.get_by_role(
        "button", name=re.compile(r"mail\.hamburger\.edu to stranger\.org, smtp: 550 5\.7\.1")
    )
    expect(refusal).to_have_count(1)
    refusal.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("550 5.7.1")
    page.screenshot(path=str(ARTIFACTS / "lab-view-spoof.png"))
    assert problems == []


def _listening(addresses: set[str]) -> list[str]:
    found = []
    for proto in ("tcp", "udp"):
        with open(f"/proc/net/{proto}") as f:
            for line in f.readlines()[1:]:
                local = line.split()[1]
                hex_address = local.split(":")[0]
                address = socket.inet_ntoa(bytes.fromhex(hex_address)[::-1])
                if address in addresses and (proto == "udp" or line.split()[3] == "0A"):
                    found.append(f"{proto} {address}")
    return found


def test_down_leaves_nothing_running_or_listening(world: dict[str, Any]) -> None:
    # Last in the module: it stops the shared lab.
    state = json.loads((world["root"] / "lab.json").read_text())
    pids = [p["pid"] for p in state["processes"]]
    addresses = {h["address"] for h in world["status"]["hosts"]}
    assert _listening(addresses)
    down = lab(world["root"], "down")
    assert down.returncode == 0 and f"{len(pids)} host(s) stopped" in down.stdout
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
    assert _listening(addresses) == []
    assert lab(world["root"], "status").returncode == 1
