"""The command line: init, serve, status, domain, user, alias, and each
package's own (dns, queue, and the user agent's send and read).

Every subcommand that acts on a node takes `--config FILE` or `--data-dir DIR`
(before or after its own arguments), defaulting to $MAILSTACK_CONFIG or the
default data directory. Names are checked (`mailstack.names`) before anything
is created, and `domain add` creates the domain, its DKIM keys, its zone
records and its postmaster alias in one store transaction: all or nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import importlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from mailstack import __version__
from mailstack.admin.ops import Admin, cli_actor
from mailstack.certs.cli import publish_mta_sts
from mailstack.commands import config_path, load_config, open_store, with_store
from mailstack.config import CONFIG_NAME, Config, default_data_dir, defaults_toml
from mailstack.errors import ConfigError, MailstackError
from mailstack.logs import setup as setup_logging
from mailstack.msgauth import cli as msgauth_cli
from mailstack.names import (
    BadName,
    check_account_address,
    check_hostname,
    check_password,
)
from mailstack.store.private import create_private, private_dir

# Packages that add subcommands: each has <pkg>/cli.py with register().
PACKAGE_CLIS = (
    "mailstack.certs.cli",
    "mailstack.dns.cli",
    "mailstack.http.cli",
    "mailstack.queue.cli",
    "mailstack.ua.cli",
    "mailstack.lab.cli",
    "mailstack.imap.cli",
    "mailstack.cluster.cli",
)


# -- init and serve ------------------------------------------------------------


# The name a first `serve` on a machine without a fully-qualified name takes:
# names under .localhost resolve to loopback (RFC 6761 §6.3), where the
# embedded defaults listen.
EMBEDDED_HOSTNAME = "mail.localhost"


def node_hostname(given: str | None, *, ask: bool = True) -> str:
    """The node's mail host name: ``--hostname``, else the machine's
    fully-qualified name, else asked on a terminal (when ``ask``). It names
    the MX, the SRV targets and the certificate, so it must be a name that
    resolves."""
    if given:
        return check_hostname(given)
    machine = socket.getfqdn()
    try:
        name = check_hostname(machine)
        if not (name.startswith("localhost") or name.endswith((".localdomain", ".local"))):
            return name
    except BadName:
        pass
    if ask and sys.stdin.isatty():
        return check_hostname(input("mail host name (such as mail.example.org): "))
    raise BadName(
        f"this machine's name {socket.gethostname()!r} (fully qualified: {machine!r}) is not "
        "a mail host name that resolves: "
        "give one, such as --hostname mail.example.org"
    )


def init_node(data_dir: Path, hostname: str, *, force: bool = False) -> Path:
    """Write DATA/mailstack.toml with every default, create the store and a
    self-signed certificate. Returns the config path."""
    data_dir = data_dir.expanduser().resolve()
    private_dir(data_dir)
    path = data_dir / CONFIG_NAME
    if path.exists() and not force:
        raise ConfigError(f"{path} exists (use --force to overwrite)")
    text = defaults_toml(data_dir, hostname)
    with os.fdopen(create_private(path), "w") as f:
        f.write(text)
    config = Config.load(path)
    if force or not config.cert_path.exists():
        write_self_signed(config)

    async def create_store() -> None:
        store = await open_store(config)
        await store.close()

    asyncio.run(create_store())
    return path


def write_self_signed(config: Config) -> None:
    from mailstack.common.tls import make_self_signed

    private_dir(config.cert_path.parent)
    make_self_signed(config.cert_path, config.key_path, config.hostname)


def cmd_init(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else default_data_dir()
    if (data_dir / CONFIG_NAME).exists() and not args.force:
        raise ConfigError(f"{data_dir / CONFIG_NAME} exists (use --force to overwrite)")
    path = init_node(data_dir, node_hostname(args.hostname), force=args.force)
    print(f"wrote {path} (host name {Config.load(path).hostname})")
    print("next: mailstack serve --data-dir", path.parent)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from mailstack.app import install_uvloop, run

    path = config_path(args)
    if not path.exists() and not getattr(args, "config", None):
        # The embedded defaults: first run creates the data directory, and
        # starts without a question even on a machine with no real name.
        try:
            hostname = node_hostname(None, ask=False)
        except BadName:
            hostname = EMBEDDED_HOSTNAME
            print(
                f"this machine has no fully-qualified name: serving as {hostname}, which "
                "resolves to loopback only (RFC 6761 §6.3), as do the embedded defaults' "
                "listeners; `mailstack init --hostname NAME --force` gives a real one"
            )
        init_node(path.parent, hostname)
        print(f"created {path.parent} (config: {path})")
    config = Config.load(path)
    setup_logging(config, verbose=args.verbose)

    def ready(node: Any) -> None:
        print(f"mailstack {__version__} on {config.hostname}, data in {config.data_dir}")
        for name, addresses in node.addresses().items():
            for host, port in addresses:
                print(f"  {name:12} {host}:{port}")
        print("next: mailstack domain add example.org; mailstack user add bob@example.org")
        print("stop with Ctrl-C or SIGTERM")
        sys.stdout.flush()

    install_uvloop()
    with contextlib.ExitStack() as stack:
        # Passed only when asked, so a `run` that takes no such file still fits.
        json_trace: dict[str, TextIO] = {}
        if args.trace_json == "-":
            json_trace["trace_json"] = sys.stdout
        elif args.trace_json is not None:
            try:
                file = stack.enter_context(open(args.trace_json, "a", encoding="utf-8"))
            except OSError as exc:
                message = f"mailstack serve: --trace-json: {exc.strerror}: {exc.filename}"
                raise SystemExit(message) from None
            json_trace["trace_json"] = file
        asyncio.run(run(config, trace=args.trace, ready=ready, **json_trace))
    return 0


# -- status ----------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    """What the node is doing: its process, its services' ports (and whether
    they answer), its queue and the last problems its log file recorded."""
    from mailstack.app import PID_FILE, PORTS_FILE
    from mailstack.logs import recent_problems

    config = load_config(args)
    data_dir = config.data_dir
    pid = _running_pid(data_dir / PID_FILE)
    try:
        ports: dict[str, int] = json.loads((data_dir / PORTS_FILE).read_text())
    except (OSError, ValueError):
        ports = {}
    services = []
    for name, (host, configured) in config.listen.items():
        port = ports.get(name, configured) if pid else configured
        answers = bool(pid) and _answers(host, port)
        services.append({"name": name, "address": f"{host}:{port}", "answers": answers})
    report = {
        "running": pid is not None,
        "pid": pid,
        "hostname": config.hostname,
        "data_dir": str(data_dir),
        "services": services,
        "queue": asyncio.run(_queue_summary(config)),
        "log": str(config.log_path) if config.log_path else None,
        "recent_problems": recent_problems(config.log_path) if config.log_path else [],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_status(report)
    # LSB's status codes: 0 running, 3 not running.
    return 0 if pid is not None else 3


def _running_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _answers(host: str, port: int) -> bool:
    """Whether something accepts a TCP connection there (DNS listens on TCP too)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1" if host != "::" else "::1"
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


async def _queue_summary(config: Config) -> dict[str, Any]:
    store = await open_store(config)
    try:
        entries = await store.queue_list()
    finally:
        await store.close()
    waiting = [r for e in entries for r in e.pending()]
    oldest = min((e.created for e in entries), default=None)
    next_due = min((r.next_attempt for r in waiting), default=None)
    return {
        "messages": len(entries),
        "recipients_waiting": len(waiting),
        "oldest_age": round(time.time() - oldest) if oldest is not None else None,
        "next_attempt_in": max(0, round(next_due - time.time())) if next_due else None,
    }


def _print_status(report: dict[str, Any]) -> None:
    if report["running"]:
        print(f"mailstack on {report['hostname']} is running (pid {report['pid']})")
    else:
        print(f"mailstack on {report['hostname']} is not running")
    print(f"data: {report['data_dir']}")
    for service in report["services"]:
        state = "answers" if service["answers"] else "not answering"
        print(f"  {service['name']:12} {service['address']:22} {state}")
    queue = report["queue"]
    line = (
        f"queue: {queue['messages']} message(s),"
        f" {queue['recipients_waiting']} recipient(s) waiting"
    )
    if queue["oldest_age"] is not None:
        line += f", oldest {queue['oldest_age']} s"
    print(line)
    if report["log"] is None:
        print("recent problems: not kept (set [log] file)")
    elif not report["recent_problems"]:
        print(f"recent problems: none in {report['log']}")
    else:
        print(f"recent problems ({report['log']}):")
        for problem in report["recent_problems"]:
            print(f"  {problem}")


# -- domains, users, aliases ---------------------------------------------------


def admin_ops(store: Any, args: argparse.Namespace) -> Admin:
    """The admin operations (mailstack.admin.ops) for this command's user."""
    return Admin(store, load_config(args), cli_actor())


async def domain_add(store: Any, args: argparse.Namespace) -> int:
    added = await admin_ops(store, args).domain_add(
        args.domain,
        postmaster=args.postmaster,
        force=args.force,
        selector=args.selector,
        address=args.address,
        dmarc_policy=args.dmarc_policy,
        no_dns=args.no_dns,
    )
    domain = added["domain"]
    print(f"added domain {domain}")
    for note in added["notes"]:
        print(note)
    if args.mta_sts:
        for line in await publish_mta_sts(store, load_config(args), domain, args.mta_sts):
            print(line)
    if args.postmaster:
        print(f"postmaster@{domain} -> {args.postmaster.strip().lower()}")
    else:
        print(f"postmaster@{domain}: the first user added to {domain} (RFC 5321 §4.5.1)")
    return 0


async def domain_remove(store: Any, args: argparse.Namespace) -> int:
    await admin_ops(store, args).domain_remove(args.domain)
    print(f"removed domain {args.domain}")
    return 0


async def domain_list(store: Any, args: argparse.Namespace) -> int:
    for name in await store.domain_list():
        print(name)
    return 0


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise MailstackError("no terminal to ask for the password: give it with --password-stdin")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise MailstackError("the passwords differ")
    return check_password(password)


async def user_add(store: Any, args: argparse.Namespace) -> int:
    address = check_account_address(args.address)
    ops = admin_ops(store, args)
    domain = address.rpartition("@")[2]
    if not await store.is_local_domain(domain):
        raise MailstackError(f"{domain} is not a local domain (mailstack domain add {domain})")
    added = await ops.account_add(address, read_password(args), quota=args.quota, admin=args.admin)
    role = " (admin)" if added["admin"] else ""
    print(f"added user {added['address']}{role}")
    for note in added["notes"]:
        print(note)
    return 0


async def user_remove(store: Any, args: argparse.Namespace) -> int:
    await admin_ops(store, args).account_remove(args.address)
    print(f"removed user {args.address}")
    return 0


async def user_list(store: Any, args: argparse.Namespace) -> int:
    for account in await store.account_list(args.domain):
        quota = f" quota={account.quota}" if account.quota else ""
        marks = (" admin" if account.admin else "") + (" disabled" if account.disabled else "")
        print(f"{account.address} used={account.used}{quota}{marks}")
    return 0


async def user_password(store: Any, args: argparse.Namespace) -> int:
    await admin_ops(store, args).set_password(args.address, read_password(args))
    print(f"changed the password of {args.address}")
    return 0


async def user_admin(store: Any, args: argparse.Namespace) -> int:
    account = await admin_ops(store, args).account_set(args.address, admin=not args.off)
    state = "has" if account["admin"] else "no longer has"
    print(f"{account['address']} {state} the admin role")
    return 0


async def user_disable(store: Any, args: argparse.Namespace) -> int:
    account = await admin_ops(store, args).account_set(args.address, disabled=not args.off)
    if account["disabled"]:
        print(f"disabled {account['address']}: it logs in nowhere, and still receives mail")
    else:
        print(f"enabled {account['address']}")
    return 0


async def user_enable(store: Any, args: argparse.Namespace) -> int:
    args.off = True
    return await user_disable(store, args)


async def user_quota(store: Any, args: argparse.Namespace) -> int:
    account = await admin_ops(store, args).account_set(args.address, quota=args.octets)
    print(f"quota of {account['address']}: {account['quota'] or 'unlimited'}")
    return 0


async def alias_add(store: Any, args: argparse.Namespace) -> int:
    alias = await admin_ops(store, args).alias_add(args.source, args.target)
    print(f"added alias {alias['source']} -> {alias['target']}")
    return 0


async def alias_remove(store: Any, args: argparse.Namespace) -> int:
    await admin_ops(store, args).alias_remove(args.source, args.target)
    print(f"removed alias {args.source}")
    return 0


async def alias_list(store: Any, args: argparse.Namespace) -> int:
    for alias in await store.alias_list():
        print(f"{alias.source} -> {alias.target}")
    return 0


# -- the parser ----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("node")
    where.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="the node's mailstack.toml (default: $MAILSTACK_CONFIG)",
    )
    where.add_argument(
        "--data-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help=f"the node's data directory (default: {default_data_dir()})",
    )

    parser = argparse.ArgumentParser(
        prog="mailstack", description="Internet mail in one program: SMTP, POP3, IMAP, DNS."
    )
    parser.add_argument("--version", action="version", version=f"mailstack {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", parents=[common], help="create a data directory and config")
    p.add_argument(
        "--hostname",
        help="the node's fully-qualified mail host name (default: the machine's, else asked)",
    )
    p.add_argument(
        "--force", action="store_true", help="overwrite an existing config and certificate"
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", parents=[common], help="run the node until SIGTERM/SIGINT")
    p.add_argument("--trace", action="store_true", help="print every session's S:/C: dialogue")
    p.add_argument(
        "--trace-json",
        metavar="FILE",
        help="append every session's exchanges to FILE as JSON lines ('-': stdout)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "status", parents=[common], help="whether the node runs: ports, queue, recent problems"
    )
    p.add_argument("--json", action="store_true", help="one JSON object, for programs")
    p.set_defaults(func=cmd_status)

    domain = sub.add_parser("domain", help="local mail domains").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = domain.add_parser(
        "add", parents=[common], help="add a local domain, its DKIM keys and DNS records"
    )
    p.add_argument("domain")
    msgauth_cli.add_arguments(p)
    p.add_argument(
        "--postmaster",
        metavar="ADDRESS",
        help="where postmaster@DOMAIN goes (default: the domain's first user)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="accept a single-label name or a public suffix (com, co.uk)",
    )
    p.add_argument(
        "--mta-sts",
        choices=["enforce", "testing"],
        help="also publish an MTA-STS policy (RFC 8461) and a TLS-RPT record (RFC 8460)",
    )
    p.set_defaults(func=with_store(domain_add))
    p = domain.add_parser("remove", parents=[common], help="remove a domain with no users")
    p.add_argument("domain")
    p.set_defaults(func=with_store(domain_remove))
    p = domain.add_parser("list", parents=[common], help="list local domains")
    p.set_defaults(func=with_store(domain_list))
    msgauth_cli.register_domain(domain, common)

    user = sub.add_parser("user", help="mail accounts").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = user.add_parser("add", parents=[common], help="add an account (asks for a password)")
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--quota", type=int, default=0, help="octets; 0 = unlimited")
    p.add_argument("--admin", action="store_true", help="give it the admin role (admin pages)")
    p.set_defaults(func=with_store(user_add))
    p = user.add_parser("remove", parents=[common], help="remove an account and its mail")
    p.add_argument("address")
    p.set_defaults(func=with_store(user_remove))
    p = user.add_parser("list", parents=[common], help="list accounts")
    p.add_argument("--domain")
    p.set_defaults(func=with_store(user_list))
    p = user.add_parser("passwd", parents=[common], help="change an account's password")
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=with_store(user_password))
    p = user.add_parser("admin", parents=[common], help="give an account the admin role")
    p.add_argument("address")
    p.add_argument("--off", action="store_true", help="take the admin role away")
    p.set_defaults(func=with_store(user_admin))
    p = user.add_parser(
        "disable", parents=[common], help="no logins for an account (it still receives mail)"
    )
    p.add_argument("address")
    p.add_argument("--off", action="store_true", help="enable it again")
    p.set_defaults(func=with_store(user_disable))
    p = user.add_parser("enable", parents=[common], help="let a disabled account log in again")
    p.add_argument("address")
    p.set_defaults(func=with_store(user_enable))
    p = user.add_parser("quota", parents=[common], help="set an account's quota")
    p.add_argument("address")
    p.add_argument("octets", type=int, help="octets; 0 = unlimited")
    p.set_defaults(func=with_store(user_quota))

    alias = sub.add_parser("alias", help="address aliases").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = alias.add_parser("add", parents=[common], help="add SOURCE -> TARGET (@domain: catch-all)")
    p.add_argument("source")
    p.add_argument("target")
    p.set_defaults(func=with_store(alias_add))
    p = alias.add_parser("remove", parents=[common], help="remove an alias")
    p.add_argument("source")
    p.add_argument("target", nargs="?")
    p.set_defaults(func=with_store(alias_remove))
    p = alias.add_parser("list", parents=[common], help="list aliases")
    p.set_defaults(func=with_store(alias_list))

    for module_name in PACKAGE_CLIS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()
        return status
    except MailstackError as exc:
        print(f"mailstack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `mailstack ... | head`: the reader went away; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
