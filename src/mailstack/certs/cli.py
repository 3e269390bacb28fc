"""`mailstack cert list|import|remove|self-signed`: the node's certificates.

They act on the files directly, so they work while the node runs: its TLS
listeners serve a change from the next handshake on (``common/tls.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
from pathlib import Path
from typing import Any

from cryptography import x509

from mailstack.certs.acme import Acme, AcmeError, OrderState
from mailstack.certs.files import (
    CertInfo,
    all_certificates,
    cert_dir,
    info,
    replace_pair,
    self_signed_pem,
    tls_listeners,
)
from mailstack.certs.mtasts import (
    DEFAULT_MAX_AGE,
    MODES,
    REPORTS_LOCAL_PART,
    WELL_KNOWN,
    policy_text,
    reports_in,
    summarise,
    txt_records,
    write_policy,
)
from mailstack.certs.service import build_acme, default_names
from mailstack.commands import load_config, open_store, with_store
from mailstack.config import Config
from mailstack.errors import MailstackError, NotFound
from mailstack.msgauth.records import DEFAULT_TTL, quoted_txt
from mailstack.names import BadName, check_hostname


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    cert = subparsers.add_parser("cert", help="the node's TLS certificates")
    actions = cert.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", parents=[common], help="certificates, names, expiry, use")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("import", parents=[common], help="keep a certificate and its key")
    p.add_argument("cert", type=Path, help="PEM chain, leaf first")
    p.add_argument("key", type=Path, help="PEM private key")
    p.add_argument("--default", action="store_true", help="make it the default certificate")
    p.set_defaults(func=cmd_import)
    p = actions.add_parser("remove", parents=[common], help="stop serving a kept certificate")
    p.add_argument("name")
    p.set_defaults(func=cmd_remove)
    p = actions.add_parser(
        "self-signed",
        parents=[common],
        help="a self-signed certificate: for NAMES, else the default one for the host "
        "name and mail., autoconfig., mta-sts. of every domain",
    )
    p.add_argument("names", nargs="*", help="DNS names (the first names the certificate)")
    p.add_argument("--force", action="store_true", help="even over a CA-signed default")
    p.set_defaults(func=cmd_self_signed)
    p = actions.add_parser("request", parents=[common], help="order a certificate by ACME now")
    p.add_argument("names", nargs="*", help="DNS names (default: the host name and domains')")
    p.add_argument("--challenge", choices=["dns-01", "http-01", "tls-alpn-01"])
    p.set_defaults(func=cmd_request)
    p = actions.add_parser("renew", parents=[common], help="renew ACME certificates that are due")
    p.set_defaults(func=cmd_renew)
    p = actions.add_parser("revoke", parents=[common], help="revoke an ACME certificate")
    p.add_argument("name")
    p.set_defaults(func=cmd_revoke)

    p = subparsers.add_parser(
        "mta-sts", parents=[common], help="publish a domain's MTA-STS policy (RFC 8461)"
    )
    p.add_argument("domain")
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--max-age", type=int, help="seconds senders keep the policy")
    p.add_argument("--rua", help="where TLS-RPT reports go (default mailto:tlsrpt@DOMAIN)")
    p.set_defaults(func=with_store(cmd_mta_sts))
    p = subparsers.add_parser(
        "tls-reports", parents=[common], help="summarise the TLS-RPT reports received"
    )
    p.add_argument("--domain", help="only the reports for this domain")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=with_store(cmd_tls_reports))


def cmd_list(args: argparse.Namespace) -> int:
    config = load_config(args)
    certs = all_certificates(config)
    used = tls_listeners(config)
    now = datetime.datetime.now(datetime.UTC)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": c.name,
                        "names": list(c.names),
                        "issuer": c.issuer,
                        "not_after": c.not_after.isoformat(),
                        "days_left": round(c.days_left(now), 1),
                        "self_signed": c.self_signed,
                        "used_by": used,
                        "acme": _acme_json(c),
                    }
                    for c in certs
                ],
                indent=2,
            )
        )
        return 0
    if not certs:
        print("no certificates (mailstack cert self-signed makes one)")
        return 0
    for c in certs:
        state = "EXPIRED" if c.days_left(now) < 0 else f"{c.days_left(now):.0f} days left"
        issuer = "self-signed" if c.self_signed else c.issuer
        print(f"{c.name}: {', '.join(c.names)}")
        print(f"  issuer {issuer}; expires {c.not_after:%Y-%m-%d %H:%M} UTC ({state})")
        print(f"  used by {', '.join(used) or 'no TLS listener'} (chosen by SNI)")
        order = OrderState.read(c.cert_path.parent)
        if order is not None:
            print(f"  {order.status()}")
    return 0


def _acme_json(cert: CertInfo) -> dict[str, Any] | None:
    state = OrderState.read(cert.cert_path.parent)
    if state is None:
        return None
    return {
        "challenge": state.challenge,
        "failures": state.failures,
        "last_error": state.last_error,
        "status": state.status(),
    }


def _with_acme(args: argparse.Namespace, action: Any) -> int:
    """Run action(config, acme, store) against the configured node's store."""
    config = load_config(args)

    async def go() -> int:
        store = await open_store(config)
        try:
            return int(await action(config, build_acme(config, store), store))
        except AcmeError as exc:
            raise MailstackError(str(exc)) from None
        finally:
            await store.close()

    return asyncio.run(go())


def cmd_request(args: argparse.Namespace) -> int:
    async def request(config: Config, acme: Acme, store: Any) -> int:
        names = args.names or default_names(config, await store.domain_list())
        kept = await acme.obtain(names, args.challenge)
        print(f"kept {kept.name}: {', '.join(kept.names)} from {kept.issuer}")
        days = config.acme.renew_days
        print(f"expires {kept.not_after:%Y-%m-%d}; the node renews it {days} days before")
        return 0

    return _with_acme(args, request)


def cmd_renew(args: argparse.Namespace) -> int:
    async def renew(config: Config, acme: Acme, store: Any) -> int:
        renewed = await acme.renew_due()
        print(f"renewed: {', '.join(renewed)}" if renewed else "nothing due")
        failed = [c.name for c, s in acme.managed() if s.last_error]
        return 1 if failed else 0

    return _with_acme(args, renew)


def cmd_revoke(args: argparse.Namespace) -> int:
    async def revoke(config: Config, acme: Acme, store: Any) -> int:
        await acme.revoke(args.name)
        print(f"revoked {args.name}; no longer served")
        return 0

    return _with_acme(args, revoke)


def cmd_import(args: argparse.Namespace) -> int:
    config = load_config(args)
    try:
        cert_pem, key_pem = args.cert.read_bytes(), args.key.read_bytes()
    except OSError as exc:
        raise MailstackError(f"cannot read: {exc}") from None
    if args.default:
        replace_pair(config.cert_path, config.key_path, cert_pem, key_pem)
        kept = info("default", config.cert_path, config.key_path)
    else:
        kept = cert_dir(config).install(cert_pem, key_pem)
    print(f"kept {kept.name}: {', '.join(kept.names)} (expires {kept.not_after:%Y-%m-%d})")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    config = load_config(args)
    if args.name == "default":
        raise MailstackError(
            "the default certificate is replaced (cert import --default), not removed"
        )
    if not cert_dir(config).remove(args.name):
        raise MailstackError(f"no certificate named {args.name!r} (see mailstack cert list)")
    print(f"removed {args.name}")
    return 0


async def _domains(config: Config) -> list[str]:
    store = await open_store(config)
    try:
        return await store.domain_list()
    finally:
        await store.close()


def cmd_self_signed(args: argparse.Namespace) -> int:
    config = load_config(args)
    try:
        names = [check_hostname(n) if "." in n else n.lower() for n in args.names]
    except BadName as exc:
        raise MailstackError(str(exc)) from None
    if names:
        kept = cert_dir(config).install(*self_signed_pem(names))
        print(f"kept {kept.name}: a self-signed certificate for {', '.join(kept.names)}")
        return 0
    check_hostname(config.hostname)
    if config.cert_path.exists() and not args.force:
        try:
            cert = x509.load_pem_x509_certificate(config.cert_path.read_bytes())
        except ValueError:
            raise MailstackError(f"{config.cert_path} is no PEM certificate; use --force") from None
        if cert.issuer != cert.subject:
            raise MailstackError(
                f"{config.cert_path} is signed by {cert.issuer.rfc4514_string()}, not "
                "self-signed: keeping it (use --force to replace it)"
            )
    names = default_names(config, asyncio.run(_domains(config)))
    replace_pair(config.cert_path, config.key_path, *self_signed_pem(names))
    print(f"wrote a self-signed certificate for {', '.join(names)}: {config.cert_path}")
    print("a running node serves it from the next connection on;")
    print(f"clients trust it with --ca-file {config.cert_path}")
    return 0


async def publish_mta_sts(
    store: Any,
    config: Config,
    domain: str,
    mode: str,
    max_age: int | None = None,
    rua: str | None = None,
) -> list[str]:
    """Write the policy and (when the node serves the zone) its records; what
    was done, in lines for the user."""
    domain = domain.lower().rstrip(".")
    if not await store.is_local_domain(domain):
        raise MailstackError(f"{domain} is not a local domain")
    host = (config.smtp.hostname or config.hostname).rstrip(".")
    mx = [host]
    try:
        zone = await store.zone_get(domain + ".")
    except NotFound:
        zone = None
    if zone is not None:
        mx += [r.rdata.split()[1].rstrip(".") for r in zone.records if r.rdtype == "MX"]
    text = policy_text(mode, mx, max_age or DEFAULT_MAX_AGE[mode])
    path = write_policy(config.data_dir, domain, text)
    done = [f"policy ({mode}) written to {path}, served at https://mta-sts.{domain}{WELL_KNOWN}"]
    if zone is None:
        done.append("this node does not serve the zone: publish these records yourself:")
        for owner, value in txt_records(domain, text, rua).items():
            done.append(f"  {owner}.{domain}. TXT {quoted_txt(value)}")
        done.append(f"  mta-sts.{domain}. CNAME {host}.")
        return done
    origin = domain + "."
    for owner, value in txt_records(domain, text, rua).items():
        with contextlib.suppress(NotFound):
            await store.record_remove(origin, owner, "TXT")
        await store.record_add(origin, owner, "TXT", quoted_txt(value), DEFAULT_TTL)
    names = {(r.name, r.rdtype) for r in zone.records}
    if (f"mta-sts.{origin}", "CNAME") not in names and (f"mta-sts.{origin}", "A") not in names:
        await store.record_add(origin, "mta-sts", "CNAME", f"{host}.", DEFAULT_TTL)
    reports = f"{REPORTS_LOCAL_PART}@{domain}"
    if rua is None and not await store.resolve_recipient(reports):
        with contextlib.suppress(MailstackError):
            await store.alias_add(reports, f"postmaster@{domain}")
            done.append(f"{reports} -> postmaster@{domain} (TLS-RPT reports come here)")
    done.append(f"zone {domain}: _mta-sts, _smtp._tls and mta-sts records published")
    if not any(
        c.covers(f"mta-sts.{domain}") and not c.self_signed for c in all_certificates(config)
    ):
        done.append(
            f"senders need a valid certificate for mta-sts.{domain}: "
            f"mailstack cert request mta-sts.{domain}"
        )
    return done


async def cmd_mta_sts(store: Any, args: argparse.Namespace) -> int:
    config = load_config(args)
    for line in await publish_mta_sts(
        store, config, args.domain, args.mode, args.max_age, args.rua
    ):
        print(line)
    return 0


async def cmd_tls_reports(store: Any, args: argparse.Namespace) -> int:
    """Reports found in the mailboxes tlsrpt@DOMAIN reaches."""
    domains = [args.domain.lower()] if args.domain else await store.domain_list()
    found = []
    seen: set[int] = set()
    for domain in domains:
        for account in await store.resolve_recipient(f"{REPORTS_LOCAL_PART}@{domain}"):
            if account.id in seen:
                continue
            seen.add(account.id)
            for box in await store.mailbox_list(account.id):
                metas = await store.messages(box.id)
                raws = await store.messages_bytes(box.id, [m.uid for m in metas])
                for raw in raws.values():
                    found += reports_in(raw)
    if args.domain:
        found = [
            r for r in found
            if any(p.get("policy", {}).get("policy-domain") == args.domain for p in r.policies)
        ]  # fmt: skip
    # The same report mailed twice (a retry, two rua) is counted once.
    unique = {(r.organization, r.report_id or id(r)): r for r in found}
    found = sorted(unique.values(), key=lambda r: (r.start, r.organization))
    if args.json:
        print(json.dumps([r.__dict__ for r in found], indent=2))
        return 0
    if not found:
        print("no TLS-RPT reports received")
    for report in found:
        for line in summarise(report):
            print(line)
    return 0
