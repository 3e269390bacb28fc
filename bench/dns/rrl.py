"""Reflection through our DNS server, bounded: what a spoofed victim receives.

One UDP socket on loopback plays the victim whose address an attacker
spoofs: it sends ``--rate`` queries a second for a 1.2 KB TXT set (the most a
UDP reply carries) for ``--seconds``, and counts what comes back: whole
replies, truncated (TC=1) replies, octets a second, and the amplification
(octets out per octet in). Run it against this tree, and against an older
one with PYTHONPATH=OLD/src to compare.

    python bench/dns/rrl.py [--rate 2000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

# Run as a script, this is not under bench/__init__.py: the guard is set here.
os.environ["MAILSTACK_LOOPBACK_ONLY"] = "1"

import dns.flags  # noqa: E402
import dns.message  # noqa: E402

from mailstack.dns.server import serve_zones  # noqa: E402
from mailstack.dns.zone import Zone  # noqa: E402

ZONE = "@ 60 SOA ns h 1 1 1 1 1\n@ 60 NS ns\nns 60 A 192.0.2.1\n" + "\n".join(
    f'amp 60 TXT "{chr(97 + n) * 200}"' for n in range(5)
)


async def attack(port: int, rate: int, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.setblocking(False)
    victim.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    await loop.sock_connect(victim, ("127.0.0.1", port))
    query = dns.message.make_query("amp.rrl.test.", "TXT", use_edns=0, payload=1232).to_wire()
    counts = {"sent": 0, "whole": 0, "truncated": 0, "octets": 0}

    async def receive() -> None:
        while True:
            reply = await loop.sock_recv(victim, 4096)
            counts["octets"] += len(reply)
            flags = int.from_bytes(reply[2:4], "big")
            counts["truncated" if flags & dns.flags.TC else "whole"] += 1

    receiver = asyncio.ensure_future(receive())
    batch = max(1, rate // 100)
    started = loop.time()
    while loop.time() - started < seconds:
        for _ in range(batch):
            await loop.sock_sendall(victim, query)
            counts["sent"] += 1
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)
    receiver.cancel()
    victim.close()
    elapsed = loop.time() - started
    return counts | {
        "seconds": elapsed,
        "octets_per_second": counts["octets"] / elapsed,
        "amplification": counts["octets"] / (counts["sent"] * len(query)),
    }


async def main(rate: int, seconds: float) -> None:
    server = await serve_zones([Zone.from_text(ZONE, "rrl.test.")], "127.0.0.1")
    try:
        result = await attack(server.bound[0][1], rate, seconds)
    finally:
        await server.stop()
    print(
        f"sent {result['sent']} queries in {result['seconds']:.1f} s; the victim got "
        f"{result['whole']} whole and {result['truncated']} truncated replies, "
        f"{result['octets_per_second'] / 1024:.1f} KB/s, "
        f"amplification {result['amplification']:.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    options = parser.parse_args()
    asyncio.run(main(options.rate, options.seconds))
