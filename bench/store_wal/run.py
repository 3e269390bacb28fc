"""WAL bound under sustained load (issue 15 item 14): the store's write-ahead
log size over time while writers never pause and readers are always inside a
read transaction.

    python bench/store_wal/run.py [--minutes 10] [--bound-mb 64] [--writers 6]
                                  [--readers 8] [--message-kb 16]

Writers APPEND messages and set flags on them as fast as the store commits;
readers read the latest messages' bytes and the mailbox status in a loop, so
some read transaction is open at almost every instant (what kept the PASSIVE
checkpoints from ever starting the WAL over). Every 5 seconds it prints the
WAL's size; at the end the largest size seen against the bound, and the
database's size. Everything happens in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from mailstack.mime import PARSE_CODEC, parse_for_store  # noqa: E402
from mailstack.store.sqlite import SqliteStore  # noqa: E402


async def main(args: argparse.Namespace) -> int:
    bound = args.bound_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="mailstack-wal-") as tmp:
        path = Path(tmp) / "store.db"
        store = await SqliteStore.open(path, codec=PARSE_CODEC, wal_bound=bound)
        await store.domain_add("bench.test")
        account = await store.account_add("user@bench.test", "bench-password")
        inbox = await store.mailbox_get(account.id, "INBOX")
        assert inbox is not None
        body = b"Subject: load\r\n\r\n" + b"0123456789abcdef\r\n" * (args.message_kb * 57)
        parsed = await parse_for_store(body)
        uids = [await store.append(inbox.id, body, parsed)]
        stop = time.monotonic() + args.minutes * 60
        largest = 0
        appended = 0

        async def write() -> None:
            nonlocal appended
            while time.monotonic() < stop:
                uids.append(await store.append(inbox.id, body, parsed))
                appended += 1
                await store.store_flags(inbox.id, uids[-3:], ["\\Seen"], "add")
                if len(uids) > 1100:
                    # Keep the database small: the WAL is what is measured.
                    old, uids[:100] = uids[:100], []
                    await store.expunge(inbox.id, old, require_deleted=False)

        async def read() -> None:
            while time.monotonic() < stop:
                await store.messages_bytes(inbox.id, uids[-20:])
                await store.mailbox_status(inbox.id)

        async def sample() -> None:
            nonlocal largest
            started = time.monotonic()
            next_print = 0.0
            while time.monotonic() < stop:
                size = store.wal_size()
                largest = max(largest, size)
                at = time.monotonic() - started
                if at >= next_print:
                    print(f"{at:7.1f} s  WAL {size / 2**20:8.1f} MB  appended {appended}",
                          flush=True)
                    next_print += 5
                await asyncio.sleep(0.1)

        await asyncio.gather(
            sample(), *(write() for _ in range(args.writers)),
            *(read() for _ in range(args.readers)),
        )
        await store.close()
        database = path.stat().st_size
        print(f"largest WAL {largest / 2**20:.1f} MB (bound {args.bound_mb} MB); "
              f"database {database / 2**20:.1f} MB; {appended} messages appended")
        return 0 if largest < 2 * bound else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--bound-mb", type=int, default=64)
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--message-kb", type=int, default=16)
    sys.exit(asyncio.run(main(parser.parse_args())))
