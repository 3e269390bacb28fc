"""The command line: init, serve, domain, user, alias, and each package's own
(dns, queue, and the user agent's send and read).

Every subcommand that acts on a node takes `--config FILE` or `--data-dir DIR`
(before or after its own arguments), defaulting to $MAILSTACK_CONFIG or the
default data directory.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from mailstack import __version__
from mailstack.commands import config_path, open_store, with_store
from mailstack.config import CONFIG_NAME, Config, default_data_dir, defaults_toml
from mailstack.errors import ConfigError, MailstackError
from mailstack.msgauth import cli as msgauth_cli

# Packages that add subcommands: each has <pkg>/cli.py with register().
PACKAGE_CLIS = ("mailstack.dns.cli", "mailstack.queue.cli", "mailstack.ua.cli")


# -- init and serve ------------------------------------------------------------


def init_node(data_dir: Path, hostname: str | None = None, *, force: bool = False) -> Path:
    """Write DATA/mailstack.toml with every default, create the store and a
    self-signed certificate. Returns the config path."""
    from mailstack.common.tls import make_self_signed

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CONFIG_NAME
    if path.exists() and not force:
        raise ConfigError(f"{path} exists (use --force to overwrite)")
    text = defaults_toml(data_dir, hostname or Config.defaults(data_dir).hostname)
    path.write_text(text)
    config = Config.load(path)
    config.cert_path.parent.mkdir(parents=True, exist_ok=True)
    if not config.cert_path.exists():
        make_self_signed(config.cert_path, config.key_path, config.hostname)

    async def create_store() -> None:
        store = await open_store(config)
        await store.close()

    asyncio.run(create_store())
    return path


def cmd_init(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else default_data_dir()
    path = init_node(data_dir, args.hostname, force=args.force)
    print(f"wrote {path}")
    print("next: mailstack serve --data-dir", path.parent)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from mailstack.app import install_uvloop, run

    path = config_path(args)
    if not path.exists() and not getattr(args, "config", None):
        # The embedded defaults: first run creates the data directory.
        init_node(path.parent)
        print(f"created {path.parent} (config: {path})")
    config = Config.load(path)

    def ready(node: Any) -> None:
        print(f"mailstack {__version__} on {config.hostname}, data in {config.data_dir}")
        for name, addresses in node.addresses().items():
            for host, port in addresses:
                print(f"  {name:12} {host}:{port}")
        print("next: mailstack domain add example.org; mailstack user add bob@example.org")
        print("stop with Ctrl-C or SIGTERM")
        sys.stdout.flush()

    install_uvloop()
    asyncio.run(run(config, trace=args.trace, ready=ready))
    return 0


# -- domains, users, aliases ---------------------------------------------------


async def domain_add(store: Any, args: argparse.Namespace) -> int:
    from mailstack.msgauth.cli import domain_added

    await store.domain_add(args.domain)
    print(f"added domain {args.domain}")
    await domain_added(store, args)
    return 0


async def domain_remove(store: Any, args: argparse.Namespace) -> int:
    await store.domain_remove(args.domain)
    print(f"removed domain {args.domain}")
    return 0


async def domain_list(store: Any, args: argparse.Namespace) -> int:
    for name in await store.domain_list():
        print(name)
    return 0


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise MailstackError("the passwords differ")
    if not password:
        raise MailstackError("empty password")
    return password


async def user_add(store: Any, args: argparse.Namespace) -> int:
    account = await store.account_add(args.address, read_password(args), quota=args.quota)
    print(f"added user {account.address}")
    return 0


async def user_remove(store: Any, args: argparse.Namespace) -> int:
    await store.account_remove(args.address)
    print(f"removed user {args.address}")
    return 0


async def user_list(store: Any, args: argparse.Namespace) -> int:
    for account in await store.account_list(args.domain):
        quota = f" quota={account.quota}" if account.quota else ""
        print(f"{account.address} used={account.used}{quota}")
    return 0


async def user_password(store: Any, args: argparse.Namespace) -> int:
    await store.set_password(args.address, read_password(args))
    print(f"changed the password of {args.address}")
    return 0


async def alias_add(store: Any, args: argparse.Namespace) -> int:
    await store.alias_add(args.source, args.target)
    print(f"added alias {args.source} -> {args.target}")
    return 0


async def alias_remove(store: Any, args: argparse.Namespace) -> int:
    await store.alias_remove(args.source, args.target)
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
    p.add_argument("--hostname", help="the node's mail host name")
    p.add_argument("--force", action="store_true", help="overwrite an existing config")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", parents=[common], help="run the node until SIGTERM/SIGINT")
    p.add_argument("--trace", action="store_true", help="print every session's S:/C: dialogue")
    p.set_defaults(func=cmd_serve)

    domain = sub.add_parser("domain", help="local mail domains").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = domain.add_parser(
        "add", parents=[common], help="add a local domain, its DKIM keys and DNS records"
    )
    p.add_argument("domain")
    msgauth_cli.add_arguments(p)
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
