"""The admin operations (mailstack.admin.ops) on a real SQLite store: what
they change, what they refuse, and the one log line per action with its
actor and never a password."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from mailstack.admin.ops import Admin, cli_actor, log_lines
from mailstack.errors import AlreadyExists, MailstackError, NotFound
from mailstack.store import NewEntry, NewRecipient

from support import make_config

SECRET = "correct horse battery"


@pytest.fixture
def config(tmp_path: Path):
    return make_config(tmp_path / "node", ("smtp",), "mx.test", "127.0.0.1", {
        "log": {"file": "node.log"},
    })


@pytest.fixture
def admin(store, config) -> Admin:
    return Admin(store, config, "root@example.org")


def actions(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mailstack.admin"]


async def test_domain_add_returns_records_and_is_logged(admin, store, caplog) -> None:
    caplog.set_level(logging.INFO, logger="mailstack.admin")
    added = await admin.domain_add("Crepes.Test", no_dns=True)
    assert added["domain"] == "crepes.test"
    assert any(r.startswith("crepes.test.") and " MX " in r for r in added["records"])
    assert any("_dmarc.crepes.test." in r for r in added["records"])
    assert [k["active"] for k in await admin.dkim_list("crepes.test")] == [True, True]
    with pytest.raises(MailstackError):
        await admin.domain_add("crepes.test")
    with pytest.raises(MailstackError):
        await admin.domain_add("com")
    with pytest.raises(MailstackError):
        await admin.domain_add("other.test", postmaster="nobody@crepes.test")
    assert actions(caplog) == [
        "admin action actor=root@example.org action=domain-add target=crepes.test"
    ]
    await admin.domain_remove("crepes.test")
    assert await admin.domain_list() == []
    with pytest.raises(NotFound):
        await admin.domain_records("crepes.test")


async def test_accounts_roles_quota_and_passwords(admin, store, caplog) -> None:
    caplog.set_level(logging.INFO, logger="mailstack.admin")
    await store.domain_add("example.org")
    added = await admin.account_add("Carol@example.org", SECRET, quota=100, admin=True)
    assert added["address"] == "carol@example.org" and added["admin"] and added["quota"] == 100
    assert added["notes"] == [
        "postmaster@example.org -> carol@example.org (the domain's first user)"
    ]
    with pytest.raises(AlreadyExists):
        await admin.account_add("carol@example.org", SECRET)
    with pytest.raises(MailstackError):
        await admin.account_add("dan@example.org", "short")
    with pytest.raises(NotFound):
        await admin.account_add("dan@elsewhere.test", SECRET)
    with pytest.raises(MailstackError):
        await admin.account_set("carol@example.org", quota=-5)
    changed = await admin.account_set("carol@example.org", disabled=True, admin=False)
    assert changed["disabled"] and not changed["admin"] and changed["quota"] == 100
    await admin.set_password("carol@example.org", "another long secret")
    assert await store.authenticate("carol@example.org", "another long secret")
    with pytest.raises(NotFound):
        await admin.set_password("nobody@example.org", "another long secret")
    assert [a["address"] for a in await admin.account_list("example.org")] == [
        "carol@example.org"
    ]
    lines = actions(caplog)
    assert lines[0] == (
        "admin action actor=root@example.org action=account-add target=carol@example.org admin=True"
    )
    assert 'changes="admin=False disabled=True"' in lines[1]
    assert lines[2].endswith("action=account-password target=carol@example.org")
    assert not any(SECRET in line or "another long secret" in line for line in lines)


async def test_aliases(admin, store) -> None:
    await store.domain_add("example.org")
    await admin.account_add("carol@example.org", SECRET)
    assert await admin.alias_add("Sales@example.org", "carol@example.org") == {
        "source": "sales@example.org", "target": "carol@example.org",
    }
    assert (await admin.alias_add("@example.org", "carol@example.org"))["source"] == "@example.org"
    with pytest.raises(MailstackError):
        await admin.alias_add("not an address", "carol@example.org")
    sources = {a["source"] for a in await admin.alias_list()}
    assert {"sales@example.org", "@example.org"} <= sources
    await admin.alias_remove("sales@example.org")
    assert "sales@example.org" not in {a["source"] for a in await admin.alias_list()}


async def test_the_queue_bounce_sends_one_dsn(admin, store) -> None:
    now = time.time()
    entry_id = await store.queue_add(NewEntry(
        "bob@example.org", (NewRecipient("x@far.test"),),
        b"From: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n", now, now + 3600,
    ))
    shown = await admin.queue_show(entry_id)
    assert shown["header"] == "From: bob@example.org\r\nSubject: hi"
    assert await admin.queue_retry(entry_id) == 1
    assert await admin.queue_hold(entry_id) == 1
    assert await store.queue_due(now + 7200) == []
    # A held message can be bounced too.
    bounced = await admin.queue_bounce(entry_id)
    assert bounced["bounced"] == 1 and len(bounced["dsn"]) == 1
    (dsn,) = [e for e in await admin.queue_list() if e["id"] == bounced["dsn"][0]]
    assert [r["address"] for r in dsn["recipients"]] == ["bob@example.org"]
    await admin.queue_delete(dsn["id"])
    with pytest.raises(NotFound):
        await admin.queue_show(dsn["id"])


def test_log_lines_and_failed_logins(admin, config) -> None:
    path = config.log_path
    assert admin.recent_log()["lines"] == []  # no file yet
    lines = [f"2026-12-07 INFO mailstack.smtp: line {n}" for n in range(5)]
    failed = "2026-12-07 INFO mailstack.auth: login failed protocol=imap user=x reason=credentials"
    lines.insert(2, failed)
    path.write_text("\n".join(lines) + "\n")
    assert admin.recent_log(3)["lines"] == lines[-3:]
    assert admin.failed_logins()["lines"] == [lines[2]]
    assert log_lines(None, 10) == []


def test_certificates_and_the_cli_actor(admin) -> None:
    (default,) = admin.certificates()
    assert default["name"] == "default" and "mx.test" in default["names"]
    assert default["selfSigned"] and default["daysLeft"] > 0 and default["usedBy"] == ["smtp"]
    assert cli_actor().startswith("cli:") and len(cli_actor()) > 4
