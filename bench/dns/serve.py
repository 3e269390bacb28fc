"""A mailstack DNS server for the benchmark: authoritative for a zone file, or a
forwarding resolver whose cache answers the repeated questions.

    python bench/dns/serve.py auth ZONEFILE HOST PORT
    python bench/dns/serve.py resolver UPSTREAM_HOST:PORT HOST PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from mailstack.dns.catalog import Catalog
from mailstack.dns.proto import QueryHandler
from mailstack.dns.resolver import Resolver
from mailstack.dns.server import DnsServer
from mailstack.dns.zone import Zone
from mailstack.limits import Limits

# Run as a script, this is not under bench/__init__.py: the guard is set here.
os.environ["MAILSTACK_LOOPBACK_ONLY"] = "1"


async def main(mode: str, source: str, host: str, port: int) -> None:
    catalog = Catalog()
    # Response rate limiting would stop a load generator on one address.
    limits = Limits().replace(dns_udp_rate=0, dns_rrl_rate=0)
    if mode == "auth":
        catalog.publish(Zone.from_file(Path(source)))
        server = DnsServer(catalog, QueryHandler(catalog.authority), limits=limits)
    else:
        upstream_host, _, upstream_port = source.rpartition(":")
        resolver = Resolver(forwarders=[(upstream_host, int(upstream_port))])
        handler = QueryHandler(catalog.authority, may_recurse=lambda client: True)
        server = DnsServer(catalog, handler, limits=limits, recursive=resolver.resolve_message)
    await server.start(host, port)
    print(f"ready {server.bound[0][0]}:{server.bound[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
