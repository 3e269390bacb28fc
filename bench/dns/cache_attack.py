"""The reply-cache exhaustion attack of issue 15, at full size: RSS of a
mailstack DNS server answering 10,000 TCP queries for a 53 KB TXT set, each
for a new name in random case with a random EDNS option.

    python bench/dns/cache_attack.py [--queries 10000]

Prints the server's RSS before and after and what its reply cache holds. Run
against an older tree with PYTHONPATH=OLD/src to compare (the test suite runs
a 2,000-query version: tests/e2e/test_dns_abuse.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import struct

# Run as a script, this is not under bench/__init__.py: the guard is set here.
os.environ["MAILSTACK_LOOPBACK_ONLY"] = "1"

import dns.edns  # noqa: E402
import dns.message  # noqa: E402

from mailstack.dns.server import serve_zones  # noqa: E402
from mailstack.dns.zone import Zone  # noqa: E402

# Ten records of 21 strings of 250 octets at every name: a 53 KB TXT set.
ZONE = "@ 60 SOA ns h 1 1 1 1 1\n@ 60 NS ns\nns 60 A 192.0.2.1\n" + "\n".join(
    "* 60 TXT " + " ".join(f'"{chr(97 + n)}{s:02d}{"x" * 247}"' for s in range(21))
    for n in range(10)
)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def main(queries: int) -> None:
    server = await serve_zones([Zone.from_text(ZONE, "big.test.")], "127.0.0.1")
    rng = random.Random(15)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.bound[0][1])
    gc.collect()
    before = rss_mb()
    for i in range(queries):
        name = "".join(rng.choice((c.upper(), c)) for c in f"n{i % 500}.big.test.")
        option = dns.edns.GenericOption(rng.randrange(65001, 65534), rng.randbytes(16))
        wire = dns.message.make_query(name, "TXT", use_edns=0, options=[option]).to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        await reader.readexactly(length)
    gc.collect()
    after = rss_mb()
    writer.close()
    replies = getattr(server.handler, "replies", None)
    held = f"{replies.size / 2**20:.1f} MB in {len(replies)} replies" if replies else "?"
    await server.stop()
    print(f"{queries} queries: RSS {before:.0f} -> {after:.0f} MB; reply cache {held}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().queries))
