"""`mailstack send` and `mailstack read`: the user agent's commands.

Exit status of `send`: 0 when every recipient was accepted, 2 when some
were refused (each said on stderr with the server's reply), 1 on any other
error (one line on stderr). `read` exits 0, or 1 with one line.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import json
import poplib
import re
import smtplib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailstack.commands import config_path
from mailstack.common.trace import Tracer
from mailstack.config import Config
from mailstack.errors import ConfigError, MailstackError
from mailstack.queue.routing import RouteError
from mailstack.ua import imapread, pop3read, view
from mailstack.ua.accounts import Account, get_password, load_account
from mailstack.ua.compose import Composed, Draft, compose, read_file
from mailstack.ua.discover import (
    Endpoint,
    TlsMode,
    by_mx,
    by_srv,
    endpoint,
    parse_host_port,
    resolver_for,
)
from mailstack.ua.maildir import Maildir
from mailstack.ua.submit import Report, deliver_direct, submit
from mailstack.ua.wire import DEFAULT_TIMEOUT, TracedIMAP, TracedPOP3, failure, tls_context

PER_PAGE = 20


def _one_line(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """What the network libraries raise that no step turned into a sentence
    still ends as one line, never a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (OSError, EOFError, smtplib.SMTPException, imaplib.IMAP4.error,
                poplib.error_proto) as exc:  # fmt: skip
            raise MailstackError(f"{type(exc).__name__}: {exc}") from None

    return run


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument("--account", metavar="NAME", help="an account of accounts.toml")
    group.add_argument(
        "--tls",
        choices=("starttls", "implicit", "none"),
        help="default: implicit on ports 465/993/995, else starttls",
    )
    group.add_argument("--user", metavar="U", help="the login name")
    group.add_argument(
        "--password-file", metavar="F", help="else $MAILSTACK_PASSWORD, the account's, a prompt"
    )
    verify = group.add_mutually_exclusive_group()
    verify.add_argument("--ca-file", metavar="PEM", help="verify certificates against PEM")
    verify.add_argument("--insecure", action="store_true", help="do not verify certificates")
    group.add_argument(
        "--dns", metavar="HOST:PORT", help="DNS server for SRV/MX (default: the node's)"
    )
    group.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS")
    group.add_argument("--trace", action="store_true", help="print the C:/S: dialogue on stderr")

    p = subparsers.add_parser(
        "send", parents=[common, connection], help="compose a message and send it"
    )
    p.add_argument("--from", dest="sender", metavar="ADDRESS")
    p.add_argument("--to", action="append", default=[], metavar="ADDRESS")
    p.add_argument("--cc", action="append", default=[], metavar="ADDRESS")
    p.add_argument("--bcc", action="append", default=[], metavar="ADDRESS")
    p.add_argument("--reply-to", action="append", default=[], metavar="ADDRESS")
    p.add_argument("--subject", default="")
    body = p.add_mutually_exclusive_group()
    body.add_argument("--body", metavar="TEXT", help="the text (default: read stdin)")
    body.add_argument("--body-file", metavar="F", type=Path)
    p.add_argument("--html-file", metavar="F", type=Path, help="an HTML alternative")
    p.add_argument("--attach", action="append", default=[], type=Path, metavar="FILE")
    p.add_argument("--header", action="append", default=[], metavar="'Name: value'")
    p.add_argument("--server", metavar="HOST:PORT", help="submission server (default: SRV)")
    p.add_argument(
        "--direct", action="store_true", help="deliver to the recipients' MX (no submission)"
    )
    p.add_argument("--port", type=int, default=25, help="the MX's port for --direct (25)")
    p.add_argument("--dry-run", action="store_true", help="print the message, send nothing")
    p.set_defaults(func=_one_line(cmd_send))

    p = subparsers.add_parser(
        "read", parents=[common, connection], help="list and read mail over IMAP or POP3"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--imap", metavar="HOST:PORT")
    where.add_argument("--pop3", metavar="HOST:PORT")
    p.add_argument("--folder", default="INBOX", help="IMAP folder (default INBOX)")
    p.add_argument("--folders", action="store_true", help="list IMAP folders with counts")
    p.add_argument("--search", metavar="QUERY", help='e.g. "from:alice subject:ketchup unseen"')
    p.add_argument("--json", action="store_true", help="the list as JSON")
    p.add_argument("number", nargs="?", type=int, metavar="N", help="read message N")
    p.add_argument("--uid", help="read the message with this UID (Maildir key for POP3)")
    p.add_argument("--raw", action="store_true", help="print the message as stored")
    p.add_argument("--save-attachments", metavar="DIR", type=Path)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--delete", action="store_true", help="POP3: download and delete (default)")
    mode.add_argument("--keep", action="store_true", help="POP3: download and keep")
    p.add_argument("--maildir", metavar="DIR", type=Path, help="POP3: where downloads go")
    p.add_argument("--mark-read", action="store_true", help="mark the message read")
    p.add_argument("--page", type=int, default=1, help="page of the list (1: newest)")
    p.add_argument("--per-page", type=int, default=PER_PAGE, metavar="N")
    p.set_defaults(func=_one_line(cmd_read))


# -- shared ---------------------------------------------------------------------------


def node_dns(args: argparse.Namespace) -> tuple[str, int]:
    """The DNS listener of the node named by --config/--data-dir (or the default):
    the port it bound (ports.json), else the one its config names."""
    path = config_path(args)
    data_dir, host, port = path.parent, "127.0.0.1", 0
    if path.exists():
        config = Config.load(path)
        data_dir = config.data_dir
        if "dns" in config.listen:
            listen_host, port = config.listen["dns"]
            if listen_host not in ("", "0.0.0.0", "::"):
                host = listen_host
    try:
        port = int(json.loads((data_dir / "ports.json").read_text()).get("dns") or port)
    except (OSError, ValueError, AttributeError):
        pass
    if not port:
        raise ConfigError(f"no --dns given and no node DNS listener in {data_dir}")
    return host, port


def _dns_server(args: argparse.Namespace, account: Account | None) -> tuple[str, int]:
    given = args.dns or (account.dns if account else None)
    if given:
        return parse_host_port(given, "--dns", 53)
    return node_dns(args)


def _tls(args: argparse.Namespace, account: Account | None) -> TlsMode | None:
    value = args.tls or (account.tls if account else None)
    return value  # type: ignore[no-any-return]


def _context(args: argparse.Namespace, account: Account | None) -> Any:
    ca_file = args.ca_file or (account.ca_file if account else None)
    insecure = args.insecure or (account.insecure if account and not args.ca_file else False)
    return tls_context(Path(ca_file).expanduser() if ca_file else None, insecure)


def _password(args: argparse.Namespace, account: Account | None, user: str) -> str:
    return get_password(password_file=args.password_file, account=account, user=user)


def _tracer(args: argparse.Namespace) -> Tracer:
    return Tracer(enabled=args.trace, out=sys.stderr)


# -- send -------------------------------------------------------------------------------


def _read_text(path: Path, option: str) -> str:
    try:
        return read_file(path, option).decode("utf-8")
    except UnicodeDecodeError:
        raise MailstackError(f"{option} {path}: not UTF-8 text") from None


def _draft(args: argparse.Namespace, account: Account | None) -> Draft:
    html = _read_text(args.html_file, "--html-file") if args.html_file else None
    if args.body is not None:
        text = args.body
    elif args.body_file is not None:
        text = _read_text(args.body_file, "--body-file")
    elif html is not None and sys.stdin.isatty():
        text = ""  # the text alternative is made from the HTML
    else:
        text = sys.stdin.read()
    return Draft(
        sender=args.sender or (account.sender if account else None) or "",
        to=args.to,
        cc=args.cc,
        bcc=args.bcc,
        subject=args.subject,
        text=text,
        html=html,
        attachments=args.attach,
        reply_to=args.reply_to,
        headers=args.header,
    )


def _route_reply(exc: RouteError) -> str:
    outcome = exc.outcome
    if re.match(r"\d{3} ", outcome.reply):
        return outcome.reply
    code = 550 if outcome.kind == "permanent" else 451
    return f"{code} {outcome.status} {outcome.reply}"


async def _mx_routes(
    composed: Composed, args: argparse.Namespace, account: Account | None, tls: TlsMode
) -> dict[str, list[Endpoint] | str]:
    resolver = resolver_for(_dns_server(args, account))
    routes: dict[str, list[Endpoint] | str] = {}
    for recipient in composed.recipients:
        domain = recipient.rpartition("@")[2].lower()
        if domain in routes:
            continue
        try:
            routes[domain] = await by_mx(domain, resolver, args.port, tls)
        except RouteError as exc:
            routes[domain] = _route_reply(exc)
    return routes


def _report(report: Report) -> int:
    for refusal in report.refused:
        print(f"mailstack: {refusal.recipient}: refused: {refusal.reply}", file=sys.stderr)
    if report.accepted:
        print(f"accepted for {', '.join(report.accepted)}: {'; '.join(report.replies)}")
    if not report.refused:
        return 0
    return 2


def cmd_send(args: argparse.Namespace) -> int:
    account = load_account(args.account)
    composed = compose(_draft(args, account))
    if args.dry_run:
        print(
            f"envelope: MAIL FROM:<{composed.mail_from}> "
            + " ".join(f"RCPT TO:<{r}>" for r in composed.recipients),
            file=sys.stderr,
        )
        sys.stdout.write(composed.message.decode("ascii").replace("\r\n", "\n"))
        return 0
    context = _context(args, account)
    tracer = _tracer(args)
    helo = composed.mail_from.rpartition("@")[2]
    if args.direct:
        if not 0 < args.port < 65536:
            raise MailstackError(f"--port {args.port}: expected 1-65535")
        tls: TlsMode = _tls(args, account) or "opportunistic"
        routes = asyncio.run(_mx_routes(composed, args, account, tls))
        report = deliver_direct(
            composed, routes, context=context, helo=helo, timeout=args.timeout, tracer=tracer
        )
        return _report(report)
    server = args.server or (account.submission if account else None)
    if server:
        endpoints = [endpoint(server, "--server", _tls(args, account), 587)]
    else:
        resolver = resolver_for(_dns_server(args, account))
        endpoints = asyncio.run(by_srv("submission", helo, resolver))
        if args.tls:
            endpoints = [Endpoint(e.name, e.addresses, e.port, args.tls) for e in endpoints]
    user = args.user or (account.user if account else None) or composed.mail_from
    report = submit(
        composed,
        endpoints,
        user=user,
        password=_password(args, account, user),
        context=context,
        helo=helo,
        timeout=args.timeout,
        tracer=tracer,
    )
    return _report(report)


# -- read -------------------------------------------------------------------------------


def _reader_endpoint(
    args: argparse.Namespace, account: Account | None, user: str
) -> tuple[str, Endpoint]:
    tls = _tls(args, account)
    if args.imap:
        return "imap", endpoint(args.imap, "--imap", tls, 143)
    if args.pop3:
        return "pop3", endpoint(args.pop3, "--pop3", tls, 110)
    if account is not None and account.imap:
        return "imap", endpoint(account.imap, "imap", tls, 143)
    if account is not None and account.pop3:
        return "pop3", endpoint(account.pop3, "pop3", tls, 110)
    domain = user.rpartition("@")[2]
    if not domain:
        raise MailstackError("give --imap or --pop3 (or a user@domain to look up its SRV records)")
    resolver = resolver_for(_dns_server(args, account))
    found = asyncio.run(by_srv("imap", domain, resolver))[0]
    return "imap", found if tls is None else Endpoint(found.name, found.addresses, found.port, tls)


def _check_read_options(args: argparse.Namespace, protocol: str) -> None:
    if protocol == "imap":
        if args.delete or args.keep or args.maildir:
            raise MailstackError(
                "--delete, --keep and --maildir are POP3's (IMAP leaves mail on the server)"
            )
    else:
        if args.folders or args.search or args.folder != "INBOX":
            raise MailstackError(
                "--folders, --folder and --search are IMAP's (POP3 has one maildrop)"
            )
    if args.number is not None and args.uid is not None:
        raise MailstackError("give N or --uid, not both")
    if args.page < 1 or args.per_page < 1:
        raise MailstackError("--page and --per-page count from 1")


def cmd_read(args: argparse.Namespace) -> int:
    account = load_account(args.account)
    user = args.user or (account.user if account else None)
    if not user:
        raise MailstackError("--user is required")
    protocol, server = _reader_endpoint(args, account, user)
    _check_read_options(args, protocol)
    context = _context(args, account)
    secret = _password(args, account, user)
    trace = _tracer(args).session(protocol, str(server), outbound=True)
    try:
        if protocol == "imap":
            return _read_imap(args, server, user, secret, context, trace)
        return _read_pop3(args, account, server, user, secret, context, trace)
    finally:
        trace.close()


def _page(count: int, args: argparse.Namespace) -> tuple[int, int, int]:
    """First and last index (newest first) of the page, and the page count."""
    pages = max(1, -(-count // args.per_page))
    if args.page > pages and count:
        raise MailstackError(f"--page {args.page}: there are {pages} pages")
    start = (args.page - 1) * args.per_page
    return start, min(start + args.per_page, count), pages


def _print_list(rows: list[view.Summary], args: argparse.Namespace, total: int, pages: int) -> None:
    if args.json:
        sys.stdout.write(view.json_list(rows))
    else:
        sys.stdout.write(view.table(rows, total=total, page=args.page, pages=pages))


def _print_message(raw: bytes, args: argparse.Namespace) -> None:
    if args.raw:
        sys.stdout.flush()
        sys.stdout.buffer.write(raw)
    else:
        sys.stdout.write(view.show(raw))
    if args.save_attachments is not None:
        for path in view.save_attachments(raw, args.save_attachments):
            print(f"saved {path}")


def _read_imap(
    args: argparse.Namespace, server: Endpoint, user: str, secret: str, context: Any, trace: Any
) -> int:
    try:
        client = TracedIMAP(server, timeout=args.timeout, trace=trace, context=context)
    except Exception as exc:  # what imaplib raises on connect: OSError, ssl, its errors
        raise failure(server, exc) from None
    try:
        if server.tls == "starttls":
            if "STARTTLS" not in client.capabilities:
                raise MailstackError(
                    f"{server} does not offer STARTTLS (--tls none reads in clear)"
                )
            client.starttls()
        imapread.login(client, user, secret)
        if args.folders:
            folders = imapread.folders(client)
            if args.json:
                data = [
                    {"name": f.name, "messages": f.messages, "unseen": f.unseen} for f in folders
                ]
                print(json.dumps(data, ensure_ascii=False, indent=1))
            else:
                for folder in folders:
                    print(
                        f"{folder.name:30} {folder.messages:>7} messages {folder.unseen:>7} unseen"
                    )
            return 0
        chosen = args.number is not None or args.uid is not None
        imapread.select(client, args.folder, readonly=not (chosen and args.mark_read))
        if chosen:
            if args.uid is not None:
                if not args.uid.isdigit():
                    raise MailstackError(f"--uid {args.uid}: an IMAP UID is a number")
                uid = int(args.uid)
            else:
                uid = imapread.uid_of_number(client, args.number)
            _print_message(imapread.fetch_message(client, uid, mark_read=args.mark_read), args)
            return 0
        uids = imapread.search(client, args.search)[::-1]  # newest first
        start, end, pages = _page(len(uids), args)
        rows = imapread.summaries(client, uids[start:end])
        _print_list(rows, args, len(uids), pages)
        return 0
    except MailstackError:
        raise
    except Exception as exc:  # the connection broke: OSError, ssl, imaplib's errors
        raise failure(server, exc) from None
    finally:
        try:
            client.logout()
        except Exception:  # the session is over either way
            client.shutdown()


def _read_pop3(
    args: argparse.Namespace,
    account: Account | None,
    server: Endpoint,
    user: str,
    secret: str,
    context: Any,
    trace: Any,
) -> int:
    where = args.maildir or (
        Path(account.maildir).expanduser() if account and account.maildir else None
    )
    if where is None:
        raise MailstackError("POP3 downloads into a local Maildir: give --maildir DIR")
    maildir = Maildir(where)
    try:
        client = TracedPOP3(server, timeout=args.timeout, trace=trace, context=context)
    except Exception as exc:  # what poplib raises on connect: OSError, ssl, its errors
        raise failure(server, exc) from None
    try:
        if server.tls == "starttls":
            client.stls()
        pop3read.login(client, user, secret)
        done = pop3read.download(client, maildir, user, delete=not args.keep)
    except MailstackError:
        client.close()
        raise
    except Exception as exc:  # the connection broke: OSError, ssl, poplib's errors
        client.close()
        raise failure(server, exc) from None
    how = (
        f"deleted {done.deleted} from the server"
        if not args.keep
        else f"{done.left} kept on the server"
    )
    print(f"fetched {done.fetched} new messages into {where}; {how}", file=sys.stderr)
    messages = maildir.messages()
    if args.number is not None or args.uid is not None:
        if args.uid is not None:
            found = [m for m in messages if m.key == args.uid]
        else:
            found = messages[args.number - 1 : args.number] if args.number >= 1 else []
        if not found:
            raise MailstackError(f"no message {args.uid or args.number} in {where}")
        raw = found[0].path.read_bytes()
        if args.mark_read:
            maildir.mark_seen(found[0])
        _print_message(raw, args)
        return 0
    numbered = list(enumerate(messages, 1))[::-1]  # newest first
    start, end, pages = _page(len(numbered), args)
    rows = [
        view.summary(number, m.key, m.path.read_bytes(), _maildir_flags(m.flags))
        for number, m in numbered[start:end]
    ]
    _print_list(rows, args, len(numbered), pages)
    return 0


_MAILDIR_FLAGS = {
    "S": "\\Seen",
    "R": "\\Answered",
    "F": "\\Flagged",
    "T": "\\Deleted",
    "D": "\\Draft",
}


def _maildir_flags(info: str) -> list[str]:
    return [_MAILDIR_FLAGS[c] for c in info if c in _MAILDIR_FLAGS]
