"""`mailstack dns query|zone|record`: ask questions, manage the node's zones."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from mailstack.commands import config_path, load_config, node_dns_address, with_store
from mailstack.dns.config import DnsConfig, parse_server
from mailstack.dns.managed import to_zone
from mailstack.dns.resolution import Step
from mailstack.dns.resolver import Resolver
from mailstack.errors import ConfigError, MailstackError


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    dns_parser = subparsers.add_parser("dns", help="DNS: queries, zones, records")
    actions = dns_parser.add_subparsers(dest="dns_command", metavar="ACTION", required=True)

    p = actions.add_parser(
        "query", parents=[common], help="ask a question and print the answer like dig"
    )
    p.add_argument("name")
    p.add_argument("type", nargs="?", default="A")
    p.add_argument("--server", metavar="HOST:PORT", help="ask this server (default: the node's)")
    p.add_argument("--iterative", action="store_true", help="walk from the root ourselves")
    p.add_argument("--trace", action="store_true", help="show each step of the walk (iterative)")
    p.add_argument("--root-hints", metavar="FILE", help="named.root file for --iterative")
    p.add_argument("--port", type=int, help="port of the servers the walk asks (default 53)")
    p.add_argument("--tcp", action="store_true", help="ask over TCP")
    p.set_defaults(func=cmd_query)

    zone = actions.add_parser("zone", help="zones the node manages").add_subparsers(
        dest="zone_command", metavar="ACTION", required=True
    )
    p = zone.add_parser("add", parents=[common], help="create a zone (SOA and NS records)")
    p.add_argument("origin")
    p.add_argument("--ns", action="append", metavar="NAME", help="name server (repeatable)")
    p.add_argument("--hostmaster", metavar="ADDRESS", help="default: hostmaster@ORIGIN")
    p.add_argument("--ttl", type=int, default=3600)
    p.set_defaults(func=with_store(zone_add))
    p = zone.add_parser("list", parents=[common], help="list managed zones and serials")
    p.set_defaults(func=with_store(zone_list))
    p = zone.add_parser("show", parents=[common], help="print a zone as a master file")
    p.add_argument("origin")
    p.set_defaults(func=with_store(zone_show))
    p = zone.add_parser("remove", parents=[common], help="delete a zone and its records")
    p.add_argument("origin")
    p.set_defaults(func=with_store(zone_remove))

    record = actions.add_parser("record", help="records of managed zones").add_subparsers(
        dest="record_command", metavar="ACTION", required=True
    )
    for action, func, help_text in (
        ("add", record_add, "add NAME TYPE VALUE (bumps the serial)"),
        ("remove", record_remove, "remove NAME TYPE [VALUE] (all of the type without VALUE)"),
    ):
        p = record.add_parser(action, parents=[common], help=help_text)
        p.add_argument("name", help="absolute name, or relative to --zone")
        p.add_argument("type")
        p.add_argument("value", nargs="?" if action == "remove" else None)
        p.add_argument("--zone", help="the zone (default: the deepest managed zone of NAME)")
        if action == "add":
            p.add_argument("--ttl", type=int, help="seconds (default: the RRset's or the SOA's)")
        p.set_defaults(func=with_store(func))


# -- query ------------------------------------------------------------------------


def cmd_query(args: argparse.Namespace) -> int:
    try:
        qname = dns.name.from_text(args.name)
        qtype = dns.rdatatype.from_text(args.type)
    except (dns.exception.DNSException, ValueError) as exc:
        raise MailstackError(f"bad question: {exc}") from None
    config = _optional_config(args)
    if args.iterative or args.trace:
        resolver = _iterative_resolver(args, config)
        return asyncio.run(_query_iterative(resolver, qname, qtype, trace=args.trace))
    server = _server(args, config)
    return asyncio.run(_query_server(server, qname, qtype, tcp=args.tcp))


def _optional_config(args: argparse.Namespace) -> Any:
    if getattr(args, "config", None) or config_path(args).exists():
        return load_config(args)
    return None


def _server(args: argparse.Namespace, config: Any) -> tuple[str, int]:
    if args.server:
        return parse_server(args.server, "--server")
    address = node_dns_address(config) if config is not None else None
    if address is not None:
        return address
    raise ConfigError("no --server given and no node with a [listen] dns address")


def _iterative_resolver(args: argparse.Namespace, config: Any) -> Resolver:
    """The node's [dns.resolver], walking from the root (never forwarding:
    the walk is what `dns query --trace` shows), with the command's overrides."""
    settings = (DnsConfig() if config is None else config.dns).resolver
    settings = dataclasses.replace(settings, forwarders=(), port=args.port or settings.port)
    if args.root_hints:
        settings = dataclasses.replace(settings, root_hints=str(Path(args.root_hints).resolve()))
    return Resolver.from_settings(settings, config.data_dir if config is not None else Path.cwd())


async def _query_server(
    server: tuple[str, int], qname: dns.name.Name, qtype: dns.rdatatype.RdataType, *, tcp: bool
) -> int:
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)
    started = time.monotonic()
    try:
        if tcp:
            reply = await dns.asyncquery.tcp(query, server[0], port=server[1], timeout=5)
        else:
            reply, _ = await dns.asyncquery.udp_with_fallback(
                query, server[0], port=server[1], timeout=5
            )
    except (OSError, dns.exception.DNSException) as exc:
        print(f";; no answer from {server[0]}#{server[1]}: {type(exc).__name__}")
        return 9
    elapsed = time.monotonic() - started
    print(format_reply(reply))
    print(f";; Query time: {elapsed * 1000:.0f} msec")
    print(f";; SERVER: {server[0]}#{server[1]}")
    return 0


async def _query_iterative(
    resolver: Resolver, qname: dns.name.Name, qtype: dns.rdatatype.RdataType, *, trace: bool
) -> int:
    steps: list[Step] = []
    started = time.monotonic()
    result = await resolver.resolve(qname, qtype, trace=steps)
    elapsed = time.monotonic() - started
    if trace:
        for step in steps:
            print(format_step(step))
        print()
    response = dns.message.make_query(qname, qtype)
    response.flags = dns.flags.QR | dns.flags.RD | dns.flags.RA
    response.set_rcode(dns.rcode.Rcode(result.rcode))
    response.answer = result.answer
    response.authority = result.authority
    print(format_reply(response))
    print(f";; Resolution time: {elapsed * 1000:.0f} msec (iterative, {len(steps)} steps)")
    return 0 if result.rcode != dns.rcode.SERVFAIL else 9


def format_step(step: Step) -> str:
    """One walk step in the lectures' words: whom we asked, for what, and what came back."""
    indent = "  " * step.depth
    question = f"{step.qname} {dns.rdatatype.to_text(dns.rdatatype.RdataType(step.qtype))}"
    if step.from_cache:
        return f"{indent}cache: {question} → {step.outcome}"
    if step.server_name is None:
        return f"{indent}{question} → {step.outcome}"
    timing = f"  [{step.elapsed * 1000:.1f} ms]" if step.elapsed is not None else ""
    server = step.server_name.to_text().rstrip(".") or "."
    return f"{indent}asked {server} ({step.address}) for {question} → {step.outcome}{timing}"


def format_reply(reply: dns.message.Message) -> str:
    """A reply in dig's layout."""
    flags = dns.flags.to_text(reply.flags).lower()
    lines = [
        f";; ->>HEADER<<- opcode: {dns.opcode.to_text(reply.opcode())}, "
        f"status: {dns.rcode.to_text(reply.rcode())}, id: {reply.id}",
        f";; flags: {flags}; QUERY: {len(reply.question)}, ANSWER: "
        f"{sum(len(r) for r in reply.answer)}, AUTHORITY: "
        f"{sum(len(r) for r in reply.authority)}, ADDITIONAL: "
        f"{sum(len(r) for r in reply.additional)}",
        "",
        ";; QUESTION SECTION:",
    ]
    for question in reply.question:
        lines.append(
            f";{question.name}\t\t{dns.rdataclass.to_text(question.rdclass)}\t"
            f"{dns.rdatatype.to_text(question.rdtype)}"
        )
    for title, section in (
        ("ANSWER", reply.answer),
        ("AUTHORITY", reply.authority),
        ("ADDITIONAL", reply.additional),
    ):
        if section:
            lines += ["", f";; {title} SECTION:"]
            for rrset in section:
                lines += [line.replace(" ", "\t", 4) for line in rrset.to_text().splitlines()]
    lines.append("")
    return "\n".join(lines)


# -- zones and records ---------------------------------------------------------------


async def zone_add(store: Any, args: argparse.Namespace) -> int:
    origin = dns.name.from_text(args.origin)
    nameservers = args.ns or [f"ns1.{origin.to_text()}"]
    hostmaster = args.hostmaster or f"hostmaster@{origin.to_text().rstrip('.')}"
    zone = await store.zone_create(
        origin.to_text(), nameservers=nameservers, hostmaster=hostmaster, ttl=args.ttl
    )
    print(f"added zone {zone.origin} (serial {zone.serial})")
    return 0


async def zone_list(store: Any, args: argparse.Namespace) -> int:
    for origin, serial in await store.zone_list():
        print(f"{origin}\tserial {serial}")
    return 0


async def zone_show(store: Any, args: argparse.Namespace) -> int:
    managed = await store.zone_get(args.origin)
    print(to_zone(managed).to_text(), end="")
    return 0


async def zone_remove(store: Any, args: argparse.Namespace) -> int:
    await store.zone_remove(args.origin)
    print(f"removed zone {args.origin}")
    return 0


async def _zone_of(store: Any, args: argparse.Namespace) -> tuple[str, str]:
    """The zone and the name to use in it."""
    if args.zone:
        return args.zone, args.name
    name = dns.name.from_text(args.name)
    origins = sorted(
        (dns.name.from_text(origin) for origin, _ in await store.zone_list()),
        key=len,
        reverse=True,
    )
    for origin in origins:
        if name.is_subdomain(origin):
            return origin.to_text(), name.to_text()
    raise MailstackError(f"no managed zone contains {name} (use --zone or `dns zone add`)")


async def record_add(store: Any, args: argparse.Namespace) -> int:
    origin, name = await _zone_of(store, args)
    serial = await store.record_add(origin, name, args.type, args.value, args.ttl)
    print(f"added {name} {args.type.upper()} {args.value} to {origin} (serial {serial})")
    return 0


async def record_remove(store: Any, args: argparse.Namespace) -> int:
    origin, name = await _zone_of(store, args)
    serial = await store.record_remove(origin, name, args.type, args.value)
    print(f"removed {name} {args.type.upper()} from {origin} (serial {serial})")
    return 0
