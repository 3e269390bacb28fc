"""PushSubscription (RFC 8620 §7.2): StateChanges POSTed to a URL the
client gives, once it proves it reads what is sent there.

On create the server POSTs a PushVerification with a random code to the URL;
nothing else is sent until the client sets ``verificationCode`` to that
code. ``url`` and ``keys`` are write-only and immutable; with ``keys`` every
message is encrypted (RFC 8291, ``jmap.webpush``). ``expires`` is at most
``MAX_DAYS`` away (the server's choice, which /set reports). A subscription
is kept as a record of kind ``PushSubscription`` of the user's account;
``Pusher`` (one per node, while an HTTP listener runs) watches the accounts
that have one and sends the changes of the types each asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

import aiohttp

from mailstack.common.events import log_event
from mailstack.jmap import ids
from mailstack.jmap.core import CORE
from mailstack.jmap.method import (
    Args,
    Call,
    Method,
    MethodError,
    check_objects_in_get,
    check_objects_in_set,
)
from mailstack.jmap.states import StateWatch
from mailstack.jmap.webpush import (
    GuardedResolver,
    Refused,
    addresses,
    check_keys,
    check_url,
    client_context,
    encrypt,
)

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.store.contract.records import Record

log = logging.getLogger("mailstack.jmap")

KIND = "PushSubscription"
MAX_DAYS = 7
MAX_PER_USER = 50
# RFC 8030 §5.2: how long a push service may keep the message (seconds).
TTL = "86400"

PROPERTIES = ("id", "deviceClientId", "url", "keys", "verificationCode", "expires", "types")
WRITE_ONLY = frozenset({"url", "keys"})
# RFC 8620 §7.2: the properties a client may change.
MUTABLE = frozenset({"verificationCode", "expires", "types"})

_UTC_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


def _utc_date(value: Any) -> datetime.datetime:
    """A UTCDate (RFC 8620 §1.4); ValueError otherwise."""
    if not isinstance(value, str) or not _UTC_DATE.fullmatch(value):
        raise ValueError(value)
    return datetime.datetime.fromisoformat(value[:-1]).replace(tzinfo=datetime.UTC)


def _format(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _expires(value: Any) -> str:
    """The expiry we keep for a requested one: at most MAX_DAYS away;
    ValueError for a bad or past date."""
    limit = _now() + datetime.timedelta(days=MAX_DAYS)
    if value is None:
        return _format(limit)
    moment = _utc_date(value)
    if moment <= _now():
        raise ValueError("in the past")
    return _format(min(moment, limit))


def _types(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValueError("types")
    return list(dict.fromkeys(value))


def _view(record: Record) -> Args:
    data = json.loads(record.data)
    return {
        "id": ids.encode(ids.RECORD, record.id),
        "deviceClientId": data["deviceClientId"],
        "url": data["url"],
        "keys": data["keys"],
        "verificationCode": data["verificationCode"],
        "expires": data["expires"],
        "types": data["types"],
    }


def _no_account(args: Args, allowed: set[str]) -> None:
    """RFC 8620 §7.2.1/§7.2.2: these methods take no accountId (nor
    ifInState); an argument the method does not have is invalidArguments."""
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise MethodError("invalidArguments", "Unknown arguments.", arguments=unknown)


async def push_get(call: Call, args: Args) -> Args:
    _no_account(args, {"ids", "properties"})
    properties = args.get("properties")
    if properties is None:
        wanted = [p for p in PROPERTIES if p not in WRITE_ONLY]
    elif isinstance(properties, list) and all(isinstance(p, str) for p in properties):
        if set(properties) & WRITE_ONLY:
            # §7.2.1: asking for url or keys is forbidden.
            raise MethodError("forbidden", "url and keys are write-only.")
        unknown = sorted(set(properties) - set(PROPERTIES))
        if unknown:
            raise MethodError("invalidArguments", "Unknown properties.", arguments=["properties"])
        wanted = list(dict.fromkeys(["id", *properties]))
    else:
        raise MethodError("invalidArguments", arguments=["properties"])
    wanted_ids = args.get("ids")
    if wanted_ids is not None and not (
        isinstance(wanted_ids, list) and all(isinstance(i, str) for i in wanted_ids)
    ):
        raise MethodError("invalidArguments", arguments=["ids"])
    if wanted_ids is not None:
        check_objects_in_get(call, len(wanted_ids))
    store = call.node.store
    assert store is not None
    records = {
        ids.encode(ids.RECORD, r.id): r for r in await store.records(call.user.id, KIND)
    }
    chosen = list(records) if wanted_ids is None else list(dict.fromkeys(wanted_ids))
    found = [records[i] for i in chosen if i in records]
    return {
        "list": [{key: _view(r)[key] for key in wanted} for r in found],
        "notFound": [i for i in chosen if i not in records],
    }


async def push_set(call: Call, args: Args) -> Args:
    _no_account(args, {"create", "update", "destroy"})
    for name, kind in (("create", dict), ("update", dict), ("destroy", list)):
        if args.get(name) is not None and not isinstance(args[name], kind):
            raise MethodError("invalidArguments", arguments=[name])
    check_objects_in_set(call, args)
    node = call.node
    store = node.store
    assert store is not None
    out: Args = {
        "created": None, "updated": None, "destroyed": None,
        "notCreated": None, "notUpdated": None, "notDestroyed": None,
    }
    created: Args = {}
    not_created: Args = {}
    existing = len(await store.records(call.user.id, KIND))
    for creation_id, value in (args.get("create") or {}).items():
        try:
            data = await _new(node, value)
        except _Invalid as exc:
            not_created[creation_id] = exc.error()
            continue
        if existing >= MAX_PER_USER:
            not_created[creation_id] = {
                "type": "overQuota", "description": "Too many push subscriptions."
            }
            continue
        record = await store.record_create(call.user.id, KIND, json.dumps(data))
        existing += 1
        jmap_id = ids.encode(ids.RECORD, record.id)
        call.created_ids[creation_id] = jmap_id
        created[creation_id] = {"id": jmap_id, "expires": data["expires"]}
        _pusher(node).verify(call.user.id, record.id, data)
    updated: Args = {}
    not_updated: Args = {}
    for jmap_id, patch in (args.get("update") or {}).items():
        number = ids.decode(ids.RECORD, jmap_id)
        records = [] if number is None else await store.records(call.user.id, KIND, [number])
        if not records:
            not_updated[jmap_id] = {"type": "notFound"}
            continue
        data = json.loads(records[0].data)
        try:
            changed = _update(data, patch)
        except _Invalid as exc:
            not_updated[jmap_id] = exc.error()
            continue
        await store.record_update(call.user.id, KIND, records[0].id, json.dumps(data))
        updated[jmap_id] = changed or None
    destroyed: list[str] = []
    not_destroyed: Args = {}
    for jmap_id in args.get("destroy") or []:
        number = ids.decode(ids.RECORD, jmap_id)
        if number is not None and await store.record_destroy(call.user.id, KIND, number):
            destroyed.append(jmap_id)
        else:
            not_destroyed[str(jmap_id)] = {"type": "notFound"}
    if created or updated or destroyed:
        _pusher(node).watch(call.user.id)
    out.update(
        created=created or None, updated=updated or None, destroyed=destroyed or None,
        notCreated=not_created or None, notUpdated=not_updated or None,
        notDestroyed=not_destroyed or None,
    )
    return out


class _Invalid(Exception):
    def __init__(self, properties: list[str], description: str) -> None:
        super().__init__(description)
        self.properties = properties
        self.description = description

    def error(self) -> Args:
        return {
            "type": "invalidProperties",
            "properties": self.properties,
            "description": self.description,
        }


async def _new(node: Node, value: Any) -> Args:
    if not isinstance(value, dict):
        raise _Invalid([], "A PushSubscription is an object.")
    unknown = sorted(set(value) - set(PROPERTIES))
    if unknown or "id" in value:
        raise _Invalid(unknown or ["id"], "Unknown or server-set properties.")
    device = value.get("deviceClientId")
    if not isinstance(device, str) or not device or len(device) > 255:
        raise _Invalid(["deviceClientId"], "deviceClientId must be a string.")
    if value.get("verificationCode") is not None:
        # §7.2: it MUST be null or left out when creating.
        raise _Invalid(["verificationCode"], "verificationCode must be null at creation.")
    url = value.get("url")
    if not isinstance(url, str) or len(url) > 2048:
        raise _Invalid(["url"], "url must be an https URL.")
    try:
        host, _ = check_url(url)
        await addresses(node, host)
    except Refused as exc:
        raise _Invalid(["url"], f"Refused: {exc}.") from None
    keys = value.get("keys")
    if keys is not None:
        try:
            check_keys(keys)
        except ValueError:
            raise _Invalid(["keys"], "keys need p256dh (P-256) and auth (16 octets).") from None
    try:
        expires = _expires(value.get("expires"))
    except ValueError:
        raise _Invalid(["expires"], "expires must be a UTCDate in the future.") from None
    try:
        types = _types(value.get("types"))
    except ValueError:
        raise _Invalid(["types"], "types must be null or a list of type names.") from None
    return {
        "deviceClientId": device,
        "url": url,
        "keys": keys,
        "verificationCode": None,
        "code": secrets.token_urlsafe(24),
        "expires": expires,
        "types": types,
    }


def _update(data: Args, patch: Any) -> Args:
    """Apply a patch to a stored subscription; what the server changed from
    what was asked (``expires`` when shortened)."""
    if not isinstance(patch, dict):
        raise _Invalid([], "A patch is an object.")
    wrong = sorted(key for key in patch if key not in MUTABLE)
    if wrong:
        # §7.2: url, keys and deviceClientId are immutable.
        raise _Invalid(wrong, "Only verificationCode, expires and types may change.")
    changed: Args = {}
    if "verificationCode" in patch:
        code = patch["verificationCode"]
        if not isinstance(code, str) or not secrets.compare_digest(code, data["code"]):
            raise _Invalid(["verificationCode"], "This is not the code sent to the url.")
        data["verificationCode"] = code
    if "expires" in patch:
        try:
            data["expires"] = _expires(patch["expires"])
        except ValueError:
            raise _Invalid(["expires"], "expires must be a UTCDate in the future.") from None
        if data["expires"] != patch["expires"]:
            changed["expires"] = data["expires"]
    if "types" in patch:
        try:
            data["types"] = _types(patch["types"])
        except ValueError:
            raise _Invalid(["types"], "types must be null or a list of type names.") from None
    return changed


METHODS: dict[str, Method] = {
    "PushSubscription/get": Method(CORE, push_get),
    "PushSubscription/set": Method(CORE, push_set),
}


# --- delivery -----------------------------------------------------------


def _pusher(node: Node) -> Pusher:
    shared = node.jmap_shared
    if shared.pusher is None:
        # Methods may run without an HTTP listener (tests, a future CLI):
        # the node then gets a pusher on first use.
        shared.pusher = Pusher(node)
    pusher: Pusher = shared.pusher
    return pusher


class Pusher:
    """The node's push to PushSubscription URLs."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._watches: dict[int, asyncio.Task[None]] = {}
        self._sends: set[asyncio.Task[None]] = set()
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        store = self.node.store
        assert store is not None
        for account in await store.account_list():
            if await store.records(account.id, KIND):
                self.watch(account.id)

    async def stop(self) -> None:
        tasks = [*self._watches.values(), *self._sends]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._watches.clear()
        self._sends.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None

    def client(self) -> aiohttp.ClientSession:
        if self._client is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.node), ssl=client_context(), limit_per_host=4
            )
            timeout = aiohttp.ClientTimeout(total=self.node.config.jmap.push_timeout)
            self._client = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._client

    def watch(self, account: int) -> None:
        """Send the account's changes to its verified subscriptions."""
        task = self._watches.get(account)
        if task is None or task.done():
            self._watches[account] = asyncio.create_task(self._watch(account))

    def verify(self, account: int, record_id: int, data: Args) -> None:
        """POST the PushVerification of a new subscription (§7.2.2)."""
        message = {
            "@type": "PushVerification",
            "pushSubscriptionId": ids.encode(ids.RECORD, record_id),
            "verificationCode": data["code"],
        }
        self._spawn(self.send(data, message))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _watch(self, account: int) -> None:
        store = self.node.store
        assert store is not None
        watch = StateWatch(self.node, [account], None)
        await watch.start()
        try:
            while await store.records(account, KIND):
                change = await watch.next(60.0)
                if change is None:
                    continue
                states = change["changed"].get(ids.encode(ids.ACCOUNT, account), {})
                for record in await store.records(account, KIND):
                    data = json.loads(record.data)
                    self._deliver(data, account, states)
        finally:
            watch.close()
            self._watches.pop(account, None)

    def _deliver(self, data: Args, account: int, states: dict[str, str]) -> None:
        if data["verificationCode"] != data["code"]:
            return  # §7.2: not verified, nothing is sent
        if _utc_date(data["expires"]) <= _now():
            return
        types = data["types"]
        chosen = {k: v for k, v in states.items() if types is None or k in types}
        if chosen:
            message = {
                "@type": "StateChange",
                "changed": {ids.encode(ids.ACCOUNT, account): chosen},
            }
            self._spawn(self.send(data, message))

    async def send(self, data: Args, message: Args) -> None:
        body = json.dumps(message, separators=(",", ":")).encode()
        headers = {"TTL": TTL, "Urgency": "normal"}
        if data["keys"] is not None:
            public, auth = check_keys(data["keys"])
            body = encrypt(body, public, auth)
            headers |= {"Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream"}
        else:
            headers["Content-Type"] = "application/json"
        fields = {"type": message["@type"], "url": data["url"][:200]}
        try:
            host, _ = check_url(data["url"])
            await addresses(self.node, host)
            async with self.client().post(
                data["url"], data=body, headers=headers, allow_redirects=False
            ) as response:
                fields["status"] = response.status
        except (Refused, aiohttp.ClientError, OSError, TimeoutError) as exc:
            fields["error"] = type(exc).__name__
            log_event(log, logging.INFO, "push failed", fields)
            return
        log_event(log, logging.INFO, "push sent", fields)
