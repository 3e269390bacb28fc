"""DNS benchmark: queries per second measured by dnsperf, in one run.

Authoritative: mailstack, Knot DNS and Twisted Names serve the same
1,000-record zone on loopback, each pinned to one core, dnsperf on the other.
Resolver: mailstack's and Unbound's cache hits, both forwarding to that Knot
so that every packet stays on loopback.

    python bench/dns/run.py [--seconds 10] [--clients 8]

Needs the Debian packages dnsperf, knot, unbound and Twisted from PyPI; a
peer that is missing is skipped and said so. Targets (issue 3): authoritative
>= 1.5x Twisted Names and >= 0.3x Knot; resolver cache hits >= 0.25x Unbound.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# Run as a script, this is not under bench/__init__.py: the guard is set here.
os.environ["MAILSTACK_LOOPBACK_ONLY"] = "1"

HERE = Path(__file__).resolve().parent
ORIGIN = "bench.test."
HOST = "127.0.0.1"
SERVER_CPU = "0"
CLIENT_CPU = "1"


def make_zone(directory: Path) -> tuple[Path, Path]:
    """A 1,000-record zone and a query mix over it (5% NXDOMAIN)."""
    lines = [
        f"$ORIGIN {ORIGIN}",
        "$TTL 3600",
        "@ SOA ns hostmaster 1 3600 600 86400 300",
        "@ NS ns",
        "ns A 127.0.0.1",
        "@ MX 10 mail",
        "mail A 192.0.2.25",
    ]
    queries = []
    for i in range(995):
        kind = i % 10
        if kind < 6:
            lines.append(f"host{i} A 10.{i // 250}.{i % 250}.1")
            queries.append(f"host{i}.{ORIGIN} A")
        elif kind < 8:
            lines.append(f"host{i} AAAA 2001:db8::{i:x}")
            queries.append(f"host{i}.{ORIGIN} AAAA")
        elif kind == 8:
            lines.append(f'host{i} TXT "v=spf1 ip4:192.0.2.{i % 250} -all"')
            queries.append(f"host{i}.{ORIGIN} TXT")
        else:
            lines.append(f"host{i} MX 10 mail")
            queries.append(f"host{i}.{ORIGIN} MX")
    queries += [f"missing{i}.{ORIGIN} A" for i in range(len(queries) // 19)]
    assert len(lines) - 2 == 1000
    zone = directory / "bench.test.zone"
    zone.write_text("\n".join(lines) + "\n")
    query_file = directory / "queries.txt"
    query_file.write_text("\n".join(queries) + "\n")
    return zone, query_file


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((HOST, 0))
        port = udp.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind((HOST, port))
    return int(port)


def wait_answering(port: int, name: str = ORIGIN, timeout: float = 15.0) -> bool:
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            dns.query.udp(dns.message.make_query(name, "SOA"), HOST, port=port, timeout=0.5)
            return True
        time.sleep(0.2)
    return False


@contextlib.contextmanager
def running(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *argv], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def dnsperf(port: int, queries: Path, seconds: float, clients: int) -> float:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            CLIENT_CPU,
            "dnsperf",
            "-s",
            HOST,
            "-p",
            str(port),
            "-d",
            str(queries),
            "-l",
            str(seconds),
            "-c",
            str(clients),
            "-T",
            "1",
            "-q",
            "200",
            "-t",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    match = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    if match is None:
        raise RuntimeError(f"dnsperf failed:\n{out}")
    if lost and int(lost.group(1)):
        print(f"    (dnsperf lost {lost.group(1)} queries)")
    return float(match.group(1))


def knot_config(directory: Path, zone: Path, port: int) -> Path:
    conf = directory / "knot.conf"
    conf.write_text(
        f"server:\n    listen: {HOST}@{port}\n    rundir: {directory}\n"
        "    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n"
        f"database:\n    storage: {directory}/knotdb\n"
        "log:\n  - target: stderr\n    any: warning\n"
        f"zone:\n  - domain: {ORIGIN}\n    file: {zone}\n    journal-content: none\n"
    )
    return conf


def unbound_config(directory: Path, port: int, upstream: int) -> Path:
    conf = directory / "unbound.conf"
    conf.write_text(
        "server:\n"
        f"    interface: {HOST}\n    port: {port}\n    num-threads: 1\n"
        '    do-daemonize: no\n    chroot: ""\n    username: ""\n'
        f'    directory: "{directory}"\n    pidfile: "{directory}/unbound.pid"\n'
        '    use-syslog: no\n    logfile: ""\n    verbosity: 0\n'
        "    access-control: 127.0.0.0/8 allow\n    do-not-query-localhost: no\n"
        '    module-config: "iterator"\n    qname-minimisation: no\n'
        "    msg-cache-size: 64m\n    rrset-cache-size: 128m\n"
        'forward-zone:\n    name: "."\n'
        f"    forward-addr: {HOST}@{upstream}\n"
    )
    return conf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("dnsperf") is None:
        print("dnsperf is not installed (apt-get install dnsperf)")
        return 1
    results: dict[str, float] = {}
    serve = [sys.executable, str(HERE / "serve.py")]
    with tempfile.TemporaryDirectory(prefix="mailstack-bench-dns-") as tmp:
        directory = Path(tmp)
        zone, queries = make_zone(directory)
        print(
            f"zone: 1000 records; {len(queries.read_text().splitlines())} distinct queries; "
            f"{args.seconds:g} s per server; server on CPU {SERVER_CPU}, dnsperf on {CLIENT_CPU}"
        )

        def measure(label: str, port: int, name: str = ORIGIN) -> None:
            if not wait_answering(port, name):
                print(f"  {label:28} did not start; skipped")
                return
            dnsperf(port, queries, min(2.0, args.seconds), args.clients)  # warm up
            results[label] = dnsperf(port, queries, args.seconds, args.clients)
            print(f"  {label:28} {results[label]:>10,.0f} q/s")

        print("authoritative:")
        port = free_port()
        with running([*serve, "auth", str(zone), HOST, str(port)], directory / "mailstack.log"):
            measure("mailstack", port)
        knot_port = free_port()
        knot = None
        if shutil.which("knotd"):
            conf = knot_config(directory, zone, knot_port)
            knot = subprocess.Popen(
                ["taskset", "-c", SERVER_CPU, "knotd", "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=open(directory / "knot.log", "w"),
            )
            measure("Knot DNS", knot_port)
        else:
            print("  Knot DNS not installed (apt-get install knot); skipped")
        try:
            if shutil.which("twistd"):
                port = free_port()
                argv = [
                    "twistd",
                    "-n",
                    "--pidfile",
                    str(directory / "twistd.pid"),
                    "dns",
                    "--bindzone",
                    str(zone),
                    "-p",
                    str(port),
                    "-i",
                    HOST,
                ]
                with running(argv, directory / "twistd.log"):
                    measure("Twisted Names", port)
            else:
                print("  Twisted Names not installed (pip install twisted); skipped")

            print("resolver cache hits (both forward to the Knot above):")
            if knot is None:
                print("  needs Knot as the upstream; skipped")
            else:
                port = free_port()
                upstream = f"{HOST}:{knot_port}"
                with running(
                    [*serve, "resolver", upstream, HOST, str(port)], directory / "resolver.log"
                ):
                    measure("mailstack resolver", port)
                if shutil.which("unbound"):
                    port = free_port()
                    conf = unbound_config(directory, port, knot_port)
                    with running(["unbound", "-d", "-c", str(conf)], directory / "unbound.log"):
                        measure("Unbound", port)
                else:
                    print("  Unbound not installed (apt-get install unbound); skipped")
        finally:
            if knot is not None:
                knot.terminate()
                knot.wait(10)

    print("ratios and targets:")
    ok = True
    for ours, peer, target in (
        ("mailstack", "Twisted Names", 1.5),
        ("mailstack", "Knot DNS", 0.3),
        ("mailstack resolver", "Unbound", 0.25),
    ):
        if ours in results and peer in results:
            ratio = results[ours] / results[peer]
            met = ratio >= target
            ok = ok and met
            print(
                f"  {ours} / {peer}: {ratio:.2f}x (target >= {target}x) "
                f"{'met' if met else 'NOT met'}"
            )
    return 0 if ok else 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
