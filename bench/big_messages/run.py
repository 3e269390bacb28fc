"""What big messages cost the node's memory (issue 15 items 8 and 9): the
attacks of the issue, measured as the node's RSS from /proc.

    python bench/big_messages/run.py [--size-mb 45] [--smtp-sessions 10] [--readers 3]

A node (SMTP, IMAP, POP3 on 127.0.0.1, its own process and data directory)
gets a message of SIZE in the INBOX of READERS+1 accounts. Then, each from a
fresh baseline:

* SMTP: SMTP_SESSIONS sessions each send SIZE of DATA and never the final
  dot (their data is spooled to disk past [limits] smtp_spool_threshold);
* IMAP: READERS clients `FETCH 1:* (BODY[])` and read nothing;
* POP3: READERS clients `RETR 1` and read nothing;
* one SMTP message of SIZE accepted whole: the peak RSS while it is
  received and delivered (sampled every 20 ms).

Every client is a raw socket in this process; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

PASSWORD = "bench-password"


def big_message(size: int) -> bytes:
    head = b"From: alice@crepes.fr\r\nTo: user0@bench.test\r\nSubject: big\r\n\r\n"
    line = b"a line of a big message, long enough to look like base64 text...\r\n"
    return head + line * ((size - len(head)) // len(line))


def node_main(data_dir: Path, size: int, accounts: int) -> None:
    from mailstack.app import Node
    from mailstack.config import Config
    from mailstack.mime import parse_for_store
    from mailstack.store import DeliveryTarget

    config = Config.from_table(
        {"node": {"hostname": "bench.test"},
         "listen": {name: "127.0.0.1:0" for name in ("smtp", "imap", "pop3")}},
        data_dir,
    )

    async def main() -> None:
        node = Node(config)
        await node.start()
        store = node.store
        assert store is not None
        await store.domain_add("bench.test")
        ids = [(await store.account_add(f"user{n}@bench.test", PASSWORD)).id
               for n in range(accounts)]
        raw = big_message(size)
        await store.deliver(raw, await parse_for_store(raw), [DeliveryTarget(i) for i in ids])
        del raw
        print(json.dumps({name: node.port(name) for name in ("smtp", "imap", "pop3")}),
              flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await node.stop()

    asyncio.run(main())


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def settle(pid: int) -> int:
    await asyncio.sleep(1.0)
    return rss(pid)


async def stalled(port: int, commands: list[bytes]) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    for command in commands:
        writer.write(command)
        await writer.drain()
        await asyncio.sleep(0.1)
    return writer


async def unfinished_smtp(port: int, data: bytes) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"EHLO crepes.fr\r\nMAIL FROM:<alice@crepes.fr>\r\n"
                 b"RCPT TO:<user0@bench.test>\r\nDATA\r\n")
    for _ in range(4):
        while not (await reader.readline()).startswith((b"250 ", b"354 ")):
            pass
    view = memoryview(data)
    for start in range(0, len(view), 256 * 1024):
        writer.write(view[start : start + 256 * 1024])
        await writer.drain()
    return writer


def report(name: str, before: int, after: int) -> None:
    print(f"{name:58s} RSS {before / 2**20:7.1f} -> {after / 2**20:7.1f} MB"
          f"  (+{(after - before) / 2**20:.1f} MB)", flush=True)


async def attacks(pid: int, ports: dict[str, int], args: argparse.Namespace) -> None:
    size = args.size_mb * 2**20
    data = big_message(size)

    before = await settle(pid)
    writers = await asyncio.gather(*(unfinished_smtp(ports["smtp"], data)
                                     for _ in range(args.smtp_sessions)))
    report(f"SMTP: {args.smtp_sessions} sessions x {args.size_mb} MB without the final dot",
           before, await settle(pid))
    for writer in writers:
        writer.close()

    before = await settle(pid)
    login = f"a LOGIN user0@bench.test {PASSWORD}\r\n".encode()
    writers = [await stalled(ports["imap"], [login, b"b SELECT INBOX\r\n",
                                             b"c FETCH 1:* (BODY[])\r\n"])
               for _ in range(args.readers)]
    report(f"IMAP: {args.readers} readers of FETCH BODY[] that read nothing",
           before, await settle(pid))
    for writer in writers:
        writer.close()

    before = await settle(pid)
    writers = [await stalled(ports["pop3"], [f"USER user{n}@bench.test\r\n".encode(),
                                             f"PASS {PASSWORD}\r\n".encode(), b"RETR 1\r\n"])
               for n in range(args.readers)]
    report(f"POP3: {args.readers} readers of RETR that read nothing", before, await settle(pid))
    for writer in writers:
        writer.close()

    before = await settle(pid)
    peak = before
    done = threading.Event()

    def send() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=300) as client:
                client.sendmail("alice@crepes.fr", [f"user{args.readers}@bench.test"], data)
        finally:
            done.set()

    sender = threading.Thread(target=send)
    sender.start()
    while not done.is_set():
        peak = max(peak, rss(pid))
        await asyncio.sleep(0.02)
    sender.join()
    report(f"SMTP: one {args.size_mb} MB message accepted (peak)", before, peak)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--node":
        node_main(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=45)
    parser.add_argument("--smtp-sessions", type=int, default=10)
    parser.add_argument("--readers", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailstack-big-") as tmp:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--node", tmp, str(args.size_mb * 2**20),
             str(args.readers + 1)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("the node did not start")
            asyncio.run(attacks(proc.pid, json.loads(line), args))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
