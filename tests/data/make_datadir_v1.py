"""Make tests/data/datadir-v1: a data directory written by mailstack before
the store had schema versions (commit 7a6f3b9, the "v1" layout), and
manifest.json, what that code read back from it.

Run once, with that commit checked out:
    python tests/data/make_datadir_v1.py tests/data/datadir-v1
The migration test (tests/unit/store/test_migrations.py) opens a copy with
today's store and checks that everything in the manifest reads back.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import sqlite3
import sys
from pathlib import Path

from argon2 import PasswordHasher

from mailstack.msgauth.keys import generate_ed25519, generate_rsa
from mailstack.store.base import DeliveryTarget
from mailstack.store.queue import NewEntry, NewRecipient, RecipientUpdate
from mailstack.store.sqlite import SqliteStore

HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORDS = {"alice@example.org": "crepes", "bob@example.org": "hamburger",
             "carol@example.net": "ketchup"}

PLAIN = b"From: Dave <dave@umass.edu>\r\nTo: alice@example.org\r\nSubject: lunch\r\n" \
    b"Date: Mon, 2 Mar 2026 12:00:00 +0000\r\nMessage-ID: <1@umass.edu>\r\n\r\nPizza?\r\n"
MULTIPART = (
    b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
    b"--XX\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n"
)
# Large enough that its parse is kept compressed and was parsed in a thread.
LARGE = b"From: carol@example.net\r\nSubject: report\r\n\r\n" + b"".join(
    b"line %05d of the quarterly report on crepes and hamburgers\r\n" % n for n in range(1200)
)


async def populate(store: SqliteStore) -> None:
    for domain in ("example.org", "example.net"):
        await store.domain_add(domain)
    alice = await store.account_add("alice@example.org", PASSWORDS["alice@example.org"])
    bob = await store.account_add("bob@example.org", PASSWORDS["bob@example.org"], 1_000_000)
    carol = await store.account_add("carol@example.net", PASSWORDS["carol@example.net"])
    await store.alias_add("postmaster@example.org", "alice@example.org")
    await store.alias_add("team@example.org", "alice@example.org")
    await store.alias_add("team@example.org", "bob@example.org")
    await store.alias_add("@example.net", "carol@example.net")

    work = await store.mailbox_create(alice.id, "Work")
    await store.mailbox_create(alice.id, "Work/2026")
    await store.subscribe(alice.id, "Work")
    await store.unsubscribe(alice.id, "Junk")

    # One blob shared by two recipients, each with its own trace prefix.
    await store.deliver(PLAIN, [
        DeliveryTarget(alice.id, "INBOX", b"Delivered-To: alice@example.org\r\n"),
        DeliveryTarget(bob.id, "INBOX", b"Delivered-To: bob@example.org\r\n"),
    ])
    await store.deliver(MULTIPART, [DeliveryTarget(alice.id, "INBOX", b"", frozenset({"$Label1"}))])
    await store.deliver(LARGE, [DeliveryTarget(carol.id)])
    when = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
    first = await store.append(work.id, PLAIN, ["\\Flagged", "$Work"], when)
    second = await store.append(work.id, MULTIPART, ["\\Seen"], when)
    await store.append(work.id, LARGE, [], when)
    await store.store_flags(work.id, [second], ["\\Deleted"], "add")
    await store.expunge(work.id)  # UID `second` is remembered as expunged
    await store.store_flags(work.id, [first], ["\\Answered"], "add")
    inbox = await store.mailbox_get(alice.id, "INBOX")
    assert inbox is not None
    await store.store_flags(inbox.id, [1], ["\\Seen"], "add")
    await store.claim_recent(inbox.id)

    entry = await store.queue_add(NewEntry(
        mail_from="alice@example.org",
        recipients=[NewRecipient("dave@umass.edu", "SUCCESS,FAILURE", "rfc822;dave@umass.edu"),
                    NewRecipient("erin@poly.edu")],
        data=PLAIN, now=1_772_000_000.0, expires=1_772_432_000.0, envid="env-1", ret="HDRS",
        smtputf8=False, body="8BITMIME",
    ))
    queued = await store.queue_get(entry)
    await store.queue_update(entry, [RecipientUpdate(
        queued.recipients[1].id, "queued", 1_772_000_600.0, "451 4.7.1 try later",
        delay_notified=True)])

    await store.zone_create("example.org", nameservers=["ns1.example.org."],
                            hostmaster="hostmaster@example.org")
    await store.record_add("example.org", "@", "MX", "10 mx.example.org.")
    await store.record_add("example.org", "mx", "A", "127.0.0.10")
    await store.record_add("example.org", "@", "TXT", '"v=spf1 mx -all"', 300)
    await store.record_remove("example.org", "mx", "A", "127.0.0.10")
    await store.record_add("example.org", "mx", "A", "127.0.0.11")

    await store.dkim_key_add(generate_rsa("example.org", "old-rsa", 1024))
    await store.dkim_rotate("example.org", [generate_rsa("example.org", "new-rsa", 1024),
                                            generate_ed25519("example.org", "new-ed25519")])


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def manifest(store: SqliteStore) -> dict[str, object]:
    """Everything the contract reads back, as plain JSON values."""
    accounts = await store.account_list()
    out: dict[str, object] = {
        "domains": await store.domain_list(),
        "accounts": [[a.address, a.quota, a.used] for a in accounts],
        "passwords": PASSWORDS,
        "aliases": [[a.source, a.target] for a in await store.alias_list()],
        "resolve": {
            address: [a.address for a in await store.resolve_recipient(address)]
            for address in ("team@example.org", "alice+tag@example.org", "zed@example.net",
                            "postmaster@example.org")
        },
    }
    mailboxes = []
    for account in accounts:
        for box in await store.mailbox_list(account.id):
            status = await store.mailbox_status(box.id)
            metas = await store.messages(box.id)
            uids = [m.uid for m in metas]
            raw = await store.messages_bytes(box.id, uids)
            parsed = await store.messages_parsed(box.id, uids)
            changed, vanished = await store.changes_since(box.id, 0)
            sync = await store.mailbox_sync(box.id, 0)
            assert sync is not None
            mailboxes.append({
                "account": account.address, "name": box.name, "uidvalidity": box.uidvalidity,
                "uidnext": box.uidnext, "highest_modseq": box.highest_modseq,
                "special_use": box.special_use, "subscribed": box.subscribed,
                "status": [status.messages, status.unseen, status.deleted, status.size],
                "recent_uid": sync.recent_uid, "vanished": vanished,
                "messages": [{
                    "uid": m.uid, "flags": sorted(m.flags),
                    "internaldate": m.internaldate.isoformat(), "size": m.size,
                    "modseq": m.modseq, "sha256": digest(raw[m.uid]),
                    "parsed_size": parsed[m.uid].size,
                    "subject": parsed[m.uid].envelope.subject,
                    "header_text": parsed[m.uid].header_text(),
                    "text_sha256": digest(parsed[m.uid].text.encode()),
                    "parts": len(parsed[m.uid].root.children),
                    "body": [parsed[m.uid].root.body_start, parsed[m.uid].root.body_end],
                } for m in metas],
            })
    out["mailboxes"] = mailboxes
    out["queue"] = [{
        "mail_from": e.mail_from, "created": e.created, "expires": e.expires, "envid": e.envid,
        "ret": e.ret, "smtputf8": e.smtputf8, "body": e.body, "size": e.size,
        "sha256": digest(await store.queue_data(e.id)),
        "recipients": [[r.address, r.state, r.attempts, r.next_attempt, r.last_reply, r.notify,
                        r.orcpt, r.delay_notified] for r in e.recipients],
    } for e in await store.queue_list()]
    zones = []
    for origin, serial in await store.zone_list():
        zone = await store.zone_get(origin)
        zones.append({
            "origin": origin, "serial": serial,
            "records": [r.to_text() for r in zone.records],
            "journal": [[j.old_serial, j.new_serial, [r.to_text() for r in j.deleted],
                         [r.to_text() for r in j.added]] for j in await store.zone_journal(origin)],
        })
    out["zones"] = zones
    out["dkim"] = [[k.domain, k.selector, k.algorithm, digest(k.private_key), k.public_key,
                    k.created, k.active] for k in await store.dkim_keys()]
    return out


async def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=False)
    path = target / "mailstack.db"
    store = await SqliteStore.open(path, password_hasher=HASHER)
    try:
        await populate(store)
        found = await manifest(store)
    finally:
        await store.close()
    # One file to commit: the WAL moved into the database and emptied.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.close()
    for leftover in target.iterdir():
        if leftover.name != "mailstack.db":
            leftover.unlink()
    (target / "manifest.json").write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
