"""The admin operations: what the command line (`mailstack user|alias|domain
|queue ...`) and the admin JSON endpoints (``mailstack.admin.web``) both do,
written once here over the store contract.

An `Admin` acts for one *actor*: an admin's address over HTTP, ``cli:USER``
on the command line (the unix user). Every operation that changes something
logs one line ``admin action actor=... action=... target=...`` on the
``mailstack.admin`` logger (the node's log), never a password. Operations
return plain data (dicts and lists that JSON can carry) and raise
`MailstackError` (NotFound, AlreadyExists, BadName ...) with a message fit
for the user.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailstack.certs.files import all_certificates, tls_listeners
from mailstack.common.events import log_event
from mailstack.delivery.status import Outcome
from mailstack.errors import MailstackError, NotFound
from mailstack.msgauth import keys, plan, records
from mailstack.names import check_account_address, check_domain, check_password
from mailstack.queue.dsn import report_entry
from mailstack.queue.policy import decide
from mailstack.store import HELD, QUEUED, Account, QueueEntry

if TYPE_CHECKING:
    from mailstack.config import Config

__all__ = ["Admin", "cli_actor", "log_lines"]

log = logging.getLogger("mailstack.admin")

# How much of a log file's end is read for its recent lines.
LOG_SCAN = 1 << 20


def cli_actor() -> str:
    """Who acts on the command line: ``cli:`` and the unix user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}"


def account_json(account: Account) -> dict[str, Any]:
    return {
        "address": account.address,
        "quota": account.quota,
        "used": account.used,
        "admin": account.admin,
        "disabled": account.disabled,
    }


def entry_json(entry: QueueEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "mailFrom": entry.mail_from,
        "created": entry.created,
        "expires": entry.expires,
        "size": entry.size,
        "recipients": [
            {
                "address": r.address,
                "state": r.state,
                "attempts": r.attempts,
                "nextAttempt": r.next_attempt,
                "lastReply": r.last_reply,
            }
            for r in entry.recipients
        ],
    }


def log_lines(path: Path | None, count: int, contains: str | None = None) -> list[str]:
    """The last ``count`` lines of the log file (those holding ``contains``
    when given), from its last LOG_SCAN octets; none without a file."""
    if path is None:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - LOG_SCAN))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    found: deque[str] = deque(maxlen=count)
    for line in tail:
        if contains is None or contains in line:
            found.append(line)
    return list(found)


class Admin:
    """The admin operations on one node's store and config, for one actor.

    ``resolver`` gives the resolver of the live DNS check (the node's own:
    see `domain_check`); it is asked only when a check is made."""

    def __init__(
        self,
        store: Any,
        config: Config,
        actor: str,
        *,
        resolver: Callable[[], Any] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.actor = actor
        self._resolver = resolver

    def _done(self, action: str, target: str, **details: object) -> None:
        fields: dict[str, object] = {"actor": self.actor, "action": action, "target": target}
        log_event(log, logging.INFO, "admin action", fields | details)

    def _args(self, **options: Any) -> argparse.Namespace:
        """Options of `domain add` for the msgauth planning functions."""
        return argparse.Namespace(**options)

    # -- domains ---------------------------------------------------------

    async def domain_list(self) -> list[str]:
        return list(await self.store.domain_list())

    async def _local_domain(self, name: str) -> str:
        domain = name.strip().lower().rstrip(".")
        if not await self.store.is_local_domain(domain):
            raise NotFound(f"{domain} is not a local domain")
        return domain

    async def domain_add(
        self,
        name: str,
        *,
        postmaster: str | None = None,
        force: bool = False,
        **options: Any,
    ) -> dict[str, Any]:
        """Create the domain, its DKIM keys, its records in the zones the node
        serves and its postmaster alias (one transaction). ``options`` are
        those of `domain add` (selector, address, dmarc_policy, no_dns)."""
        domain = check_domain(name, force=force)
        if await self.store.is_local_domain(domain):
            raise MailstackError(f"domain {domain} exists")
        if postmaster:
            postmaster = check_account_address(postmaster)
            if not await self.store.resolve_recipient(postmaster):
                raise MailstackError(
                    f"postmaster {postmaster}: no such local account or alias (add it first)"
                )
        new, notes = await plan.plan_domain(
            self.store, self.config, domain, postmaster or None, self._args(**options)
        )
        await self.store.domain_create(new)
        self._done("domain-add", domain)
        return {"domain": domain, "notes": notes, "records": await self.domain_records(domain)}

    async def domain_records(self, name: str) -> list[str]:
        """The records the world should see for the domain, in zone-file syntax."""
        domain = await self._local_domain(name)
        wanted = await plan.mail_records(self.store, self.config, domain, self._args())
        return [record.to_text() for record in wanted]

    async def domain_check(self, name: str) -> list[dict[str, Any]]:
        """What the node's resolver finds of each record the domain should
        publish: ok, missing, different, unresolved or error."""
        from mailstack.msgauth.dnsapi import ResolverAdapter
        from mailstack.msgauth.doctor import check_published

        domain = await self._local_domain(name)
        if self._resolver is None:
            raise MailstackError("no resolver to check with")
        wanted = await plan.mail_records(self.store, self.config, domain, self._args())
        findings = await check_published(ResolverAdapter(self._resolver(), timeout=10.0), wanted)
        return [
            {
                "status": f.status,
                "name": f.record.name,
                "type": f.record.rdtype,
                "expected": f.record.rdata,
                "found": list(f.found),
                "text": f.to_text(),
            }
            for f in findings
        ]

    async def domain_remove(self, name: str) -> None:
        domain = name.strip().lower().rstrip(".")
        await self.store.domain_remove(domain)
        self._done("domain-remove", domain)

    # -- accounts --------------------------------------------------------

    async def account_list(self, domain: str | None = None) -> list[dict[str, Any]]:
        return [account_json(a) for a in await self.store.account_list(domain)]

    async def account_get(self, address: str) -> dict[str, Any]:
        account = await self.store.account_get(address)
        if account is None:
            raise NotFound(f"no account {address}")
        return account_json(account)

    async def account_add(
        self, address: str, password: str, *, quota: int = 0, admin: bool = False
    ) -> dict[str, Any]:
        """A new account (postmaster@ its domain goes to it when nothing
        else takes it); ``notes`` say so."""
        address = check_account_address(address)
        domain = address.rpartition("@")[2]
        if not await self.store.is_local_domain(domain):
            raise NotFound(f"{domain} is not a local domain (mailstack domain add {domain})")
        if quota < 0:
            raise MailstackError("a quota is 0 (unlimited) or more octets")
        check_password(password)
        had_postmaster = bool(await self.store.resolve_recipient(f"postmaster@{domain}"))
        account = await self.store.account_add(address, password, quota=quota, postmaster=True)
        if admin:
            account = await self.store.account_set(address, admin=True)
        notes = []
        if not had_postmaster and not address.startswith("postmaster@"):
            notes.append(f"postmaster@{domain} -> {account.address} (the domain's first user)")
        self._done("account-add", account.address, admin=admin or None)
        return account_json(account) | {"notes": notes}

    async def account_remove(self, address: str) -> None:
        await self.store.account_remove(address)
        self._done("account-remove", address.strip().lower())

    async def set_password(self, address: str, password: str) -> None:
        check_password(password)
        await self.store.set_password(address, password)
        self._done("account-password", address.strip().lower())

    async def account_set(
        self,
        address: str,
        *,
        quota: int | None = None,
        admin: bool | None = None,
        disabled: bool | None = None,
    ) -> dict[str, Any]:
        """Change an account's quota, admin role or disabled state."""
        if quota is not None and quota < 0:
            raise MailstackError("a quota is 0 (unlimited) or more octets")
        account = await self.store.account_set(
            address, quota=quota, admin=admin, disabled=disabled
        )
        changes = {"quota": quota, "admin": admin, "disabled": disabled}
        shown = " ".join(f"{k}={v}" for k, v in changes.items() if v is not None)
        self._done("account-set", account.address, changes=shown or None)
        return account_json(account)

    # -- aliases ---------------------------------------------------------

    async def alias_list(self) -> list[dict[str, str]]:
        return [{"source": a.source, "target": a.target} for a in await self.store.alias_list()]

    async def alias_add(self, source: str, target: str) -> dict[str, str]:
        """SOURCE -> TARGET; a source ``@domain`` is the domain's catch-all."""
        if source.startswith("@"):
            source = "@" + check_domain(source[1:], force=True)
        else:
            source = check_account_address(source)
        target = check_account_address(target)
        await self.store.alias_add(source, target)
        self._done("alias-add", source, to=target)
        return {"source": source, "target": target}

    async def alias_remove(self, source: str, target: str | None = None) -> None:
        await self.store.alias_remove(source, target)
        self._done("alias-remove", source.strip().lower(), to=target)

    # -- DKIM ------------------------------------------------------------

    async def dkim_list(self, domain: str | None = None) -> list[dict[str, Any]]:
        return [
            {
                "domain": k.domain,
                "selector": k.selector,
                "algorithm": k.algorithm,
                "active": k.active,
            }
            for k in await self.store.dkim_keys(domain)
        ]

    async def dkim_rotate(self, name: str, selector: str | None = None) -> dict[str, Any]:
        """New keys sign from now on; they are published in the zone when the
        node serves it (the old selectors stay published until removed)."""
        domain = await self._local_domain(name)
        fresh = await keys.rotate(self.store, domain, selector)
        wanted = [
            r
            for r in await plan.mail_records(self.store, self.config, domain, self._args())
            if any(r.name.startswith(f"{k.selector}._domainkey.") for k in fresh)
        ]
        serial = None
        if await plan.serves_zone(self.store, domain):
            host = plan.mail_host(self.config)
            _, serial = await records.publish(self.store, domain, wanted, nameserver=host)
        self._done("dkim-rotate", domain, selectors=",".join(k.selector for k in fresh))
        return {
            "keys": [{"selector": k.selector, "algorithm": k.algorithm} for k in fresh],
            "records": [r.to_text() for r in wanted],
            "serial": serial,
        }

    # -- the queue -------------------------------------------------------

    async def queue_list(self) -> list[dict[str, Any]]:
        return [entry_json(e) for e in await self.store.queue_list()]

    async def queue_show(self, entry_id: int) -> dict[str, Any]:
        """The entry and its message's header section."""
        entry = await self.store.queue_get(entry_id)
        data = await self.store.queue_data(entry_id)
        end = data.find(b"\r\n\r\n")
        header = data[: end if end >= 0 else len(data)].decode("utf-8", "replace")
        return entry_json(entry) | {"header": header}

    async def queue_retry(self, entry_id: int | None = None) -> int:
        """Make an entry's waiting recipients (or every entry's) due now."""
        count = int(await self.store.queue_retry(time.time(), entry_id))
        self._done("queue-retry", "all" if entry_id is None else str(entry_id))
        return count

    async def queue_hold(self, entry_id: int, held: bool = True) -> int:
        """Hold an entry's waiting recipients (never due until released), or
        release them (due now); how many changed."""
        count = int(await self.store.queue_hold(entry_id, held, time.time()))
        self._done("queue-hold" if held else "queue-release", str(entry_id))
        return count

    async def queue_delete(self, entry_id: int) -> None:
        await self.store.queue_remove(entry_id)
        self._done("queue-delete", str(entry_id))

    async def queue_bounce(self, entry_id: int) -> dict[str, Any]:
        """Fail an entry's waiting recipients now, with a DSN to the sender."""
        queue = self.config.queue
        hostname = queue.helo or self.config.hostname
        entry = await self.store.queue_get(entry_id)
        data = await self.store.queue_data(entry_id)
        now = time.time()
        outcome = Outcome.permanent("5.0.0", "returned to the sender by the postmaster")
        updates, reports = [], []
        for rcpt in entry.recipients:
            if rcpt.state not in (QUEUED, HELD):
                continue
            update, report = decide(entry, rcpt, outcome, now, queue)
            updates.append(update)
            if report is not None:
                reports.append(report)
        dsns = []
        if reports:
            dsns.append(
                report_entry(
                    entry, data, reports, reporting_mta=hostname, now=now,
                    expires=now + queue.give_up,
                )
            )
        report_ids = await self.store.queue_update(entry.id, updates, dsns)
        self._done("queue-bounce", str(entry_id))
        return {"bounced": len(updates), "dsn": list(report_ids), "mailFrom": entry.mail_from}

    # -- logs and certificates ------------------------------------------

    def recent_log(self, count: int = 100) -> dict[str, Any]:
        path = self.config.log_path
        return {"file": str(path) if path else None, "lines": log_lines(path, count)}

    def failed_logins(self, count: int = 100) -> dict[str, Any]:
        """The authenticator's ``login failed`` lines (common/auth.py)."""
        path = self.config.log_path
        lines = log_lines(path, count, "login failed")
        return {"file": str(path) if path else None, "lines": lines}

    def certificates(self) -> list[dict[str, Any]]:
        """The node's certificates and their expiry, as `mailstack cert list --json`."""
        now = datetime.datetime.now(datetime.UTC)
        used = tls_listeners(self.config)
        return [
            {
                "name": c.name,
                "names": list(c.names),
                "issuer": c.issuer,
                "notAfter": c.not_after.isoformat(),
                "daysLeft": round(c.days_left(now), 1),
                "selfSigned": c.self_signed,
                "usedBy": used,
            }
            for c in all_certificates(self.config)
        ]

