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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Away from the other tests' ports and from another lab on this machine.
OFFSET = random.Random().randrange(20000, 60000, 1000)
MAILSTACK = [sys.executable, "-c", "import sys; from mailstack.cli import main; sys.exit(main())"]
START_LIMIT = 10.0


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
    print(f"lab up took {world['elapsed']:.1f} s")
    assert world["elapsed"] < START_LIMIT
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
    }
    assert host(world, "cis.poly.edu")["services"] == {}


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


def run(world: dict[str, Any], name: str) -> str:
    result = lab(world["root"], "run", name)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"scenario {name}: outcome holds" in result.stdout
    return result.stdout


def steps(out: str) -> list[str]:
    """A transcript's numbered DNS steps, "N. FROM -> TO: MESSAGE"."""
    return [line.strip() for line in out.splitlines() if re.match(r"\s+\d+\. \S+ -> ", line)]


def test_iterative(world: dict[str, Any]) -> None:
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


def test_caching(world: dict[str, Any]) -> None:
    out = run(world, "caching")
    assert "NXDOMAIN from the cache" in out and "asked the hierarchy again" in out


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
