"""`mailstack queue list|show|retry|hold|release|delete|bounce`: look at and
steer the outbound queue.

These work on the store directly, so they also work while the node runs: a
running node sees `retry` within about a second (the store's queue mark).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mailstack.commands import load_config, open_store
from mailstack.errors import MailstackError
from mailstack.queue.config import QueueConfig
from mailstack.store import QueueEntry

Action = Callable[[Any, QueueConfig, str, argparse.Namespace], Awaitable[int]]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    queue = subparsers.add_parser("queue", help="the outbound mail queue")
    actions = queue.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    p = actions.add_parser("list", parents=[common], help="list queued messages")
    p.set_defaults(func=_with_store(cmd_list))
    p = actions.add_parser("show", parents=[common], help="show one message's envelope and header")
    p.add_argument("id", type=int)
    p.set_defaults(func=_with_store(cmd_show))
    p = actions.add_parser("retry", parents=[common], help="make a message (or all) due now")
    p.add_argument("id", type=int, nargs="?")
    p.set_defaults(func=_with_store(cmd_retry))
    p = actions.add_parser(
        "hold", parents=[common], help="hold a message: not tried until released"
    )
    p.add_argument("id", type=int)
    p.set_defaults(func=_with_store(cmd_hold))
    p = actions.add_parser("release", parents=[common], help="release a held message (due now)")
    p.add_argument("id", type=int)
    p.set_defaults(func=_with_store(cmd_release))
    p = actions.add_parser("delete", parents=[common], help="drop a message, no bounce")
    p.add_argument("id", type=int)
    p.set_defaults(func=_with_store(cmd_delete))
    p = actions.add_parser("bounce", parents=[common], help="fail a message now, with a DSN")
    p.add_argument("id", type=int)
    p.set_defaults(func=_with_store(cmd_bounce))


def _with_store(action: Action) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        config = load_config(args)
        queue_config = config.queue
        hostname = queue_config.helo or config.hostname

        async def go() -> int:
            store = await open_store(config)
            try:
                return await action(store, queue_config, hostname, args)
            except MailstackError as exc:
                print(f"mailstack queue: {exc}")
                return 1
            finally:
                await store.close()

        return asyncio.run(go())

    return run


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _recipient_lines(entry: QueueEntry, now: float) -> list[str]:
    lines = []
    for r in entry.recipients:
        when = f", next in {_age(r.next_attempt - now)}" if r.state == "queued" else ""
        lines.append(f"    <{r.address}> {r.state}, {r.attempts} attempt(s){when}")
        if r.last_reply:
            lines.append(f"      {r.last_reply}")
    return lines


async def cmd_list(store: Any, config: QueueConfig, hostname: str, args: argparse.Namespace) -> int:
    now = time.time()
    entries = await store.queue_list()
    for entry in entries:
        print(
            f"{entry.id:>8}  {_age(now - entry.created):>4}  {entry.size:>8}  <{entry.mail_from}>"
        )
        print("\n".join(_recipient_lines(entry, now)))
    print(f"{len(entries)} message(s) in the queue")
    return 0


async def cmd_show(store: Any, config: QueueConfig, hostname: str, args: argparse.Namespace) -> int:
    now = time.time()
    entry = await store.queue_get(args.id)
    data = await store.queue_data(args.id)
    print(f"id:       {entry.id}")
    print(f"from:     <{entry.mail_from}>")
    print(f"queued:   {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(entry.created))}")
    print(f"expires:  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(entry.expires))}")
    print(f"size:     {entry.size}")
    extras = [f"{k}={v}" for k, v in (("RET", entry.ret), ("ENVID", entry.envid)) if v]
    if entry.smtputf8:
        extras.append("SMTPUTF8")
    if entry.body:
        extras.append(f"BODY={entry.body}")
    if extras:
        print(f"params:   {' '.join(extras)}")
    print("recipients:")
    print("\n".join(_recipient_lines(entry, now)))
    end = data.find(b"\r\n\r\n")
    print()
    print(data[: end if end >= 0 else len(data)].decode("utf-8", "replace"))
    return 0


def _admin(store: Any, args: argparse.Namespace) -> Any:
    """The admin operations (mailstack.admin.ops), which retry, delete and bounce."""
    from mailstack.admin.ops import Admin, cli_actor

    return Admin(store, load_config(args), cli_actor())


async def cmd_retry(
    store: Any, config: QueueConfig, hostname: str, args: argparse.Namespace
) -> int:
    count = await _admin(store, args).queue_retry(args.id)
    print(f"{count} recipient(s) due now")
    return 0


async def cmd_hold(
    store: Any, config: QueueConfig, hostname: str, args: argparse.Namespace
) -> int:
    count = await _admin(store, args).queue_hold(args.id, True)
    print(f"held {count} recipient(s) of {args.id}")
    return 0


async def cmd_release(
    store: Any, config: QueueConfig, hostname: str, args: argparse.Namespace
) -> int:
    count = await _admin(store, args).queue_hold(args.id, False)
    print(f"released {count} recipient(s) of {args.id}: due now")
    return 0


async def cmd_delete(
    store: Any, config: QueueConfig, hostname: str, args: argparse.Namespace
) -> int:
    await _admin(store, args).queue_delete(args.id)
    print(f"deleted {args.id}")
    return 0


async def cmd_bounce(
    store: Any, config: QueueConfig, hostname: str, args: argparse.Namespace
) -> int:
    bounced = await _admin(store, args).queue_bounce(args.id)
    print(f"bounced {bounced['bounced']} recipient(s) of {args.id}")
    for report_id in bounced["dsn"]:
        print(f"DSN to <{bounced['mailFrom']}> queued as {report_id}")
    return 0
