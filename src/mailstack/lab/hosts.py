"""The lab's hosts as processes: one data directory and `mailstack.toml` per
host (the topology turned into configuration), one `mailstack serve` per host,
and the state file that `lab status` and `lab down` read.

Nothing in a server knows it runs in a lab: a host's config binds its
listeners to its own 127.0.0.x address, its zones are master files, its
resolver's root hints name only the lab's roots, and every server the lab's
resolvers and mail servers ask is at the standard port plus the lab's offset.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailstack.common.trace import Tracer
from mailstack.config import CONFIG_NAME
from mailstack.errors import MailstackError
from mailstack.lab.topology import DEFAULT_SOURCE, PROBE, Host, Topology
from mailstack.lab.view import ADDRESS, HTTP_PORT, LAB, MARKS_FILE, TRACE_FILE, UP, view_url

STATE_FILE = "lab.json"
# How long `lab up` waits for every host to answer, and `lab down` for each
# process to end after SIGTERM before it is killed.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# An ordinary `mailstack serve`, run by the interpreter running the lab.
SERVE = "import sys; from mailstack.cli import main; sys.exit(main())"


def lab_dir() -> Path:
    """$MAILSTACK_LAB, else ~/.local/share/mailstack/lab."""
    if env := os.environ.get("MAILSTACK_LAB"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "mailstack" / "lab"


def default_offset() -> int:
    """0 as root (the standard ports), else 10000."""
    return 0 if os.geteuid() == 0 else 10000


def tsig_secret(name: str) -> str:
    """A lab TSIG key's secret: derived from its name, so that teachers and
    scenarios know it without reading a host's files (a lab is not a secret)."""
    return base64.b64encode(hashlib.sha256(b"mailstack lab " + name.encode()).digest()).decode()


def _q(text: str) -> str:
    return json.dumps(text)


NAME_SERVERS = ("root", "tld", "authoritative", "resolver")


def host_config(topology: Topology, host: Host, data_dir: Path, offset: int) -> str:
    """The host's mailstack.toml."""
    listen = "\n".join(
        f"{name} = {_q(f'{host.address}:{port}')}" for name, port in host.services(offset).items()
    )
    # In a recursive lab every name server takes recursive queries from the
    # lab and passes them on down (`chain`); else only the local name server
    # recurses, for its clients, and the others only for themselves.
    chain = topology.resolution == "recursive" and bool(set(host.roles) & set(NAME_SERVERS))
    recursion = "127.0.0.0/8" if chain or "resolver" in host.roles else host.address + "/32"
    lines = [
        "# Written by `mailstack lab up` from the topology; regenerated at every start.",
        "[node]",
        f"hostname = {_q(host.name)}",
        f"data_dir = {_q(str(data_dir))}",
        "",
        "[listen]",
        listen,
        "",
        "[dns]",
        f"recursion = [{_q(recursion)}]",
    ]
    if host.update_key:
        lines += [
            f"allow_update = [{_q(host.update_key)}]",
            "",
            "[[dns.key]]",
            f"name = {_q(host.update_key)}",
            f"secret = {_q(tsig_secret(host.update_key))}",
        ]
    lines += [
        "",
        "[dns.resolver]",
        'root_hints = "root.hints"',
        f"port = {53 + offset}",
        # Its queries come from its own address, so the servers it asks (and
        # the live view) see who asks.
        f"source = {_q(host.address)}",
        # Lab servers answer at once; a hold-down would outlast a scenario.
        "failure_ttl = 1.0",
        f"chain = {'true' if chain else 'false'}",
        "",
        "[queue]",
        f"port = {25 + offset}",
        "chunking = false",
        "retry_first = 5.0",
        "poll = 1.0",
        "connect_timeout = 5.0",
        "",
        "[smtp]",
        f"message_auth = {_q(host.message_auth)}",
        "",
        "[submission]",
        "allow_plaintext_on_loopback = true",
        "",
        "[log]",
        'file = "mailstack.log"',
        "",
    ]
    return "\n".join(lines)


def write_host(topology: Topology, host: Host, data_dir: Path, offset: int) -> None:
    """Over a data directory `mailstack init` made: the host's config, root
    hints and zone files."""
    (data_dir / CONFIG_NAME).write_text(host_config(topology, host, data_dir, offset))
    (data_dir / "root.hints").write_text(topology.root_hints(f" (port {53 + offset})"))
    zones = data_dir / "zones"
    zones.mkdir(exist_ok=True)
    for zone in host.zones:
        name = "root" if zone == "." else zone
        (zones / f"{name}.zone").write_text(topology.zone_text(zone))


@dataclass(frozen=True, slots=True)
class Process:
    host: str
    pid: int
    data_dir: str


def _answers(address: str, port: int) -> bool:
    """Whether the listener accepts a connection (from the lab's own probing
    address, which the live view does not draw)."""
    try:
        socket.create_connection((address, port), timeout=0.5, source_address=(PROBE, 0)).close()
    except OSError:
        return False
    return True


def up(topology: Topology, root: Path, offset: int, *, view: bool = True) -> None:
    """Start every host built under ``root`` and, with ``view``, the live
    view's process (`mailstack lab view`); return once all answer."""
    env = os.environ | {"MAILSTACK_LOOPBACK_ONLY": "1"}
    processes: list[Process] = []
    for host in topology.hosts:
        if not host.runs:
            continue
        data_dir = root / "hosts" / host.name
        # Every host keeps its S:/C: dialogues in serve.out (the scenarios
        # show what the mail servers said to each other from there) and the
        # same events as JSON lines in trace.jsonl (what the live view draws).
        config = str(data_dir / CONFIG_NAME)
        command = [sys.executable, "-c", SERVE, "serve", "--trace", "--config", config]
        command += ["--trace-json", str(data_dir / TRACE_FILE)]
        with open(data_dir / "serve.out", "wb") as out:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        processes.append(Process(host.name, child.pid, str(data_dir)))
    waiting = {
        (h.name, h.address, port) for h in topology.hosts for port in h.services(offset).values()
    }
    if view:
        command = [sys.executable, "-c", SERVE, "lab", "view", "--lab-dir", str(root)]
        command += ["--port-offset", str(offset)]
        if topology.source != DEFAULT_SOURCE:
            command += ["--topology", topology.source]
        with open(root / "view.out", "wb") as out:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        processes.append(Process("view", child.pid, str(root)))
        waiting.add(("view", ADDRESS, HTTP_PORT + offset))
    _write_state(root, topology, offset, processes)
    deadline = time.monotonic() + START_TIMEOUT
    while waiting:
        waiting = {w for w in waiting if not _answers(w[1], w[2])}
        if not waiting:
            break
        dead = [p for p in processes if not _alive(p.pid)]
        if dead or time.monotonic() > deadline:
            down(root)
            who = dead[0].host if dead else sorted(waiting)[0][0]
            log = root / "view.out" if who == "view" else root / "hosts" / who / "serve.out"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise MailstackError(f"lab host {who} did not start:\n{tail}")
        time.sleep(0.1)
    # The mark the live view starts from (what came before was this probing).
    with open(root / MARKS_FILE, "a", encoding="utf-8") as marks:
        Tracer(json_out=marks, host=LAB).named(f"{UP} up").note("every host answers")


def _write_state(root: Path, topology: Topology, offset: int, processes: list[Process]) -> None:
    state = {
        "topology": topology.source,
        "offset": offset,
        "processes": [{"host": p.host, "pid": p.pid, "data_dir": p.data_dir} for p in processes],
        "status": status(topology, offset),
    }
    (root / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def status(topology: Topology, offset: int) -> dict[str, Any]:
    """`lab status --json`: the issue's interface for tests, scripts and teachers."""
    hosts = []
    for host in topology.hosts:
        hosts.append(
            {
                "name": host.name,
                "address": host.address,
                "roles": list(host.roles),
                "zones": list(host.zones),
                "domains": list(host.domains),
                "users": [{"address": u.address, "password": u.password} for u in host.users],
                "services": host.services(offset),
            }
        )
    return {"hosts": hosts, "view": view_url(offset)}


def read_state(root: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((root / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child of ours that ended but was not reaped yet is no longer running.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def running(root: Path) -> list[int]:
    state = read_state(root)
    if state is None:
        return []
    return [p["pid"] for p in state["processes"] if _alive(p["pid"])]


def down(root: Path) -> int:
    """Stop every host of the lab (SIGTERM, then SIGKILL); the number stopped."""
    state = read_state(root)
    if state is None:
        return 0
    pids = [p["pid"] for p in state["processes"] if _alive(p["pid"])]
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    (root / STATE_FILE).unlink(missing_ok=True)
    return len(pids)
