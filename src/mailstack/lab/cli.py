"""`mailstack lab up|status|down|run`: start the lectures' world on loopback,
list its hosts, stop it, and play its scenarios (see docs/lab.md).

Making a host's data directory is what `mailstack init`, `domain add` and
`user add` do, so it lives here with the command line, which also hands the
scenarios the user agent's commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from mailstack.cli import init_node, main
from mailstack.commands import open_store
from mailstack.common.trace import Tracer
from mailstack.config import CONFIG_NAME, Config
from mailstack.errors import MailstackError
from mailstack.lab import hosts, sockets, topology, view
from mailstack.lab.scenarios import SCENARIOS, Lab, ScenarioFailed
from mailstack.msgauth import cli as msgauth_cli


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    lab_parser = subparsers.add_parser("lab", help="the lectures' Internet on loopback")
    # The lab's own common options; the socket example apps (lab/sockets.py)
    # add their commands to `actions` with this parent.
    lab_common = argparse.ArgumentParser(add_help=False)
    lab_common.add_argument(
        "--lab-dir",
        metavar="DIR",
        type=Path,
        help=f"the lab's state (default: $MAILSTACK_LAB or {hosts.lab_dir()})",
    )
    actions = lab_parser.add_subparsers(dest="lab_command", metavar="ACTION", required=True)

    p = actions.add_parser("up", parents=[lab_common], help="start every host of the topology")
    p.add_argument("--topology", metavar="FILE", type=Path, help="default: the lectures' world")
    p.add_argument(
        "--port-offset",
        type=int,
        default=None,
        metavar="N",
        help="added to every standard port (default: 0 as root, else 10000)",
    )
    p.add_argument(
        "--detach", action="store_true", help="return once every host answers (else run to Ctrl-C)"
    )
    p.set_defaults(func=cmd_up)

    p = actions.add_parser("status", parents=[lab_common], help="the hosts of the running lab")
    p.add_argument("--json", action="store_true", help="one JSON object, for programs")
    p.set_defaults(func=cmd_status)

    p = actions.add_parser("down", parents=[lab_common], help="stop every host of the lab")
    p.set_defaults(func=cmd_down)

    p = actions.add_parser(
        "view", parents=[lab_common], help="serve the live view (`lab up --detach` starts it)"
    )
    p.add_argument("--topology", metavar="FILE", type=Path, help="default: the lectures' world")
    p.add_argument("--port-offset", type=int, default=None, metavar="N", help="as for `lab up`")
    p.set_defaults(func=cmd_view)

    p = actions.add_parser("run", parents=[lab_common], help="play a scenario on the running lab")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.set_defaults(func=cmd_run)

    # The lectures' first programs: the uppercase UDP and TCP server and client.
    sockets.add_commands(actions, lab_common)


def _root(args: argparse.Namespace) -> Path:
    return Path(args.lab_dir) if args.lab_dir else hosts.lab_dir()


def _running_lab(args: argparse.Namespace) -> tuple[Path, topology.Topology, int]:
    root = _root(args)
    state = hosts.read_state(root)
    if state is None or not hosts.running(root):
        raise MailstackError(f"no lab is up in {root} (mailstack lab up --detach)")
    source = state["topology"]
    path = None if source == topology.DEFAULT_SOURCE else Path(source)
    return root, topology.load(path), int(state["offset"])


def _world(args: argparse.Namespace) -> tuple[topology.Topology, int]:
    world = topology.load(args.topology.resolve() if args.topology else None)
    offset = hosts.default_offset() if args.port_offset is None else args.port_offset
    if not 0 <= offset <= 65535 - 587:
        raise MailstackError(f"--port-offset {offset}: out of range")
    return world, offset


def cmd_up(args: argparse.Namespace) -> int:
    world, offset = _world(args)
    root = _root(args)
    started = time.monotonic()
    if hosts.running(root):
        raise MailstackError(f"a lab is already up in {root} (mailstack lab down)")
    build(world, root, offset)
    # Detached, the view is a process of its own; else it runs on this
    # process's loop until Ctrl-C.
    hosts.up(world, root, offset, view=args.detach)
    print(f"lab up in {time.monotonic() - started:.1f} s ({root})")
    _print_table(hosts.status(world, offset))
    if args.detach:
        print("stop it with: mailstack lab down")
        return 0
    print("stop with Ctrl-C")
    sys.stdout.flush()
    try:
        view.run(_view(world, root, offset))
    except OSError as exc:
        print(f"the live view did not start: {exc.strerror}", file=sys.stderr)
    finally:
        stopped = hosts.down(root)
        print(f"lab down: {stopped} host(s) stopped")
    return 0


def _view(world: topology.Topology, root: Path, offset: int) -> view.View:
    return view.View(
        world,
        root,
        offset,
        report=hosts.status(world, offset),
        scenarios=sorted(SCENARIOS),
        command=[sys.executable, "-c", hosts.SERVE],
    )


def cmd_view(args: argparse.Namespace) -> int:
    world, offset = _world(args)
    try:
        view.run(_view(world, _root(args), offset))
    except OSError as exc:
        raise MailstackError(f"the live view: {exc.strerror}") from None
    return 0


def build(world: topology.Topology, root: Path, offset: int) -> None:
    """Every host's data directory, fresh: `mailstack init`, then its config,
    zone files and root hints, then its mail domains and users as `domain
    add` and `user add` make them."""
    hosts_dir = root / "hosts"
    if hosts_dir.exists():
        shutil.rmtree(hosts_dir)
    (root / view.MARKS_FILE).unlink(missing_ok=True)
    for host in world.hosts:
        if not host.runs:
            continue
        data_dir = hosts_dir / host.name
        init_node(data_dir, host.name)
        hosts.write_host(world, host, data_dir, offset)
        if host.domains:
            asyncio.run(_mail_domains(host, data_dir / CONFIG_NAME))


async def _mail_domains(host: topology.Host, config_file: Path) -> None:
    config = Config.load(config_file)
    store = await open_store(config)
    try:
        for domain in host.domains:
            args = argparse.Namespace(
                config=str(config_file),
                selector="lab",
                address=[host.address],
                dmarc_policy=host.dmarc_policy,
                no_dns=False,
            )
            new, _ = await msgauth_cli.plan_domain(store, args, domain, None)
            await store.domain_create(new)
        for user in host.users:
            await store.account_add(user.address, user.password, postmaster=True)
    finally:
        await store.close()


def _print_table(report: dict[str, Any]) -> None:
    print(f"{'host':22} {'address':12} {'roles':26} services")
    for host in report["hosts"]:
        services = " ".join(f"{name}:{port}" for name, port in host["services"].items())
        print(f"{host['name']:22} {host['address']:12} {','.join(host['roles']):26} {services}")
    print(f"live view: {report['view']}")


def cmd_status(args: argparse.Namespace) -> int:
    root, world, offset = _running_lab(args)
    report = hosts.status(world, offset)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = hosts.down(_root(args))
    print(f"lab down: {stopped} host(s) stopped")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    root, world, offset = _running_lab(args)
    lab = Lab(world, root, offset, sys.stdout, mailstack=main)
    # The scenario's start and end, for the live view: trace events like
    # the hosts' own (common/trace.py), in the lab's marks.jsonl.
    with open(root / view.MARKS_FILE, "a", encoding="utf-8") as marks:
        trace = Tracer(json_out=marks, host=view.LAB).named(f"scenario {args.scenario}")
        trace.note("started")
        try:
            SCENARIOS[args.scenario](lab)
        except ScenarioFailed as exc:
            trace.note(f"FAILED: {exc}")
            print(f"\nscenario {args.scenario}: FAILED: {exc}")
            return 1
        trace.note("outcome holds")
    print(f"\nscenario {args.scenario}: outcome holds")
    return 0
